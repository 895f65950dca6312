"""A taxonomy whose lookups remember their answers, for one import.

A list of thousands of rows spells the same few dozen labels and venues over and over; each
lookup normalises the label with regular expressions. Remembering the answers keeps an
import's cost per row flat and small. The cache wraps the real `Taxonomy` (same interface)
and lives as long as one import, so it never outlives a change to the taxonomy files.
"""

from __future__ import annotations

from typing import Any

from ..taxonomy import Axis, Taxonomy, Venues


class _CachedAxis:
    def __init__(self, axis: Axis) -> None:
        self._axis = axis
        self._resolved: dict[str, str | None] = {}
        self._suggested: dict[str, str | None] = {}

    def resolve(self, label: str) -> str | None:
        if label not in self._resolved:
            self._resolved[label] = self._axis.resolve(label)
        return self._resolved[label]

    def suggest(self, value: str) -> str | None:
        if value not in self._suggested:
            self._suggested[value] = self._axis.suggest(value)
        return self._suggested[value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._axis, name)


class _CachedVenues:
    def __init__(self, venues: Venues) -> None:
        self._venues = venues
        self._resolved: dict[str, str | None] = {}
        self._suggested: dict[str, str | None] = {}
        self.by_name = venues.by_name

    def resolve(self, label: str) -> str | None:
        if label not in self._resolved:
            self._resolved[label] = self._venues.resolve(label)
        return self._resolved[label]

    def suggest(self, label: str) -> str | None:
        if label not in self._suggested:
            self._suggested[label] = self._venues.suggest(label)
        return self._suggested[label]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venues, name)


class CachedTaxonomy:
    """Same lookups as `Taxonomy`; pass the real one to pydantic validation."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.real = taxonomy
        self.axes = {name: _CachedAxis(axis) for name, axis in taxonomy.axes.items()}
        self.venues = _CachedVenues(taxonomy.venues)
        self._labels: dict[tuple[str, str], tuple[list[str], list[str]]] = {}

    def __getitem__(self, axis: str) -> _CachedAxis:
        return self.axes[axis]

    def resolve_labels(self, axis: str, text: str) -> tuple[list[str], list[str]]:
        key = (axis, text)
        if key not in self._labels:
            self._labels[key] = self.real.resolve_labels(axis, text)
        ids, unknown = self._labels[key]
        return list(ids), list(unknown)

    def goal_of(self, sub_goal: str) -> str | None:
        return self.real.goal_of(sub_goal)
