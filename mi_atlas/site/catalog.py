"""What the site knows about the index: papers per taxonomy node, counts, matrices, recency.

A `Catalog` is built once per site build from the validated papers and the taxonomy; every
page renderer reads from it, so counts on the home page, the node pages and the matrices
always agree. A goal's papers are those tagged with the goal itself or any of its sub-goals.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..schema import Paper
from ..taxonomy import AXES, Node, Taxonomy

AXIS_LABELS = {
    "objects": "Object",
    "locate": "Locate method",
    "steer": "Steer method",
    "goals": "Goal",
}


def newest_first(papers: Iterable[Paper]) -> list[Paper]:
    """Year descending, then title: the default order of every paper list on the site."""
    return sorted(papers, key=lambda p: (-p.year, p.title.casefold(), p.id))


def added_date(paper: Paper) -> dt.date:
    """When the entry joined the index; entries without `added` count from 1 January of their year."""
    return paper.added or dt.date(paper.year, 1, 1)


@dataclass
class Catalog:
    taxonomy: Taxonomy
    papers: list[Paper]
    files: dict[str, Path] = field(default_factory=dict)
    by_node: dict[tuple[str, str], list[Paper]] = field(default_factory=dict)
    _ids: dict[tuple[str, str], set[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, papers: Iterable[Paper], taxonomy: Taxonomy, files: dict[str, Path]) -> Catalog:
        ordered = newest_first(papers)
        by_node: dict[tuple[str, str], list[Paper]] = defaultdict(list)
        for paper in ordered:
            for axis in AXES:
                seen: set[str] = set()
                for tag in getattr(paper, axis):
                    # A sub-goal's paper also belongs to its goal (once, however many siblings).
                    for node_id in (tag, taxonomy[axis].parent.get(tag)):
                        if node_id and node_id not in seen:
                            seen.add(node_id)
                            by_node[(axis, node_id)].append(paper)
        return cls(taxonomy, ordered, dict(files), dict(by_node))

    def nodes(self, axis: str) -> list[Node]:
        return list(self.taxonomy[axis].nodes.values())

    def papers_of(self, axis: str, node_id: str) -> list[Paper]:
        return self.by_node.get((axis, node_id), [])

    def count(self, axis: str, node_id: str) -> int:
        return len(self.papers_of(axis, node_id))

    def papers_of_both(self, axis: str, node_id: str, other: str, other_id: str) -> list[Paper]:
        """Papers of one node that are also papers of another (on another axis): what the
        explorer lists for `?axis=node_id&other=other_id`, newest first."""
        key = (other, other_id)
        if key not in self._ids:  # a matrix asks for each column once per row
            self._ids[key] = {id(paper) for paper in self.papers_of(other, other_id)}
        wanted = self._ids[key]
        return [paper for paper in self.papers_of(axis, node_id) if id(paper) in wanted]

    def count_both(self, axis: str, node_id: str, other: str, other_id: str) -> int:
        return len(self.papers_of_both(axis, node_id, other, other_id))

    def tagged(self, axis: str) -> int:
        """How many papers carry at least one tag on `axis`."""
        return sum(1 for paper in self.papers if getattr(paper, axis))

    def recent(self, limit: int, papers: Iterable[Paper] | None = None) -> list[Paper]:
        """The most recently added papers (by `added`, newest first)."""
        pool = self.papers if papers is None else papers
        return sorted(pool, key=lambda p: (added_date(p), p.year, p.id), reverse=True)[:limit]

    @property
    def venues(self) -> list[str]:
        return sorted({p.venue for p in self.papers if p.venue}, key=str.casefold)

    @property
    def years(self) -> tuple[int, int] | None:
        if not self.papers:
            return None
        years = [paper.year for paper in self.papers]
        return min(years), max(years)
