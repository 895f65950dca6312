"""One definition of "the same paper", used by `check`, `add`, both importers and `enrich`.

Two entries are the same paper when they share one identity key: the arXiv id (without its
version), the DOI (compared lowercased), the OpenReview forum id, the ACL Anthology id, the
normalised URL, or the normalised title. The first four are *strong* keys: they name one paper
and only one, so two entries with different values of one of them are two papers even when
their titles agree.

    keys_of(paper)            # [("arxiv", "2406.11717"), ("url", "arxiv:2406.11717"), ...]
    index = IdentityIndex()
    index.add(paper, keys_of(paper))
    index.find(keys_of(other))  # [("arxiv", paper)]: who else has one of these keys

Works on a `Paper` or on an entry's plain data (a mapping with the same field names), so an
importer can look a row up before it is a valid entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from rapidfuzz import fuzz

from . import links

STRONG = ("arxiv", "doi", "openreview", "acl")
KINDS = (*STRONG, "url", "title")
# How a report names each key ("same arXiv id as papers/x.yaml").
KEY_NAMES = {
    "arxiv": "arXiv id",
    "doi": "DOI",
    "openreview": "OpenReview id",
    "acl": "ACL Anthology id",
    "url": "URL",
    "title": "title",
}

Key = tuple[str, str]
T = TypeVar("T")


def _getter(entry: Any):
    if type(entry) is dict or isinstance(entry, Mapping):  # (the exact type test is cheap)
        return entry.get
    return lambda name: getattr(entry, name, None)


def strong_key(kind: str, value: str) -> str:
    """The comparison form of a strong identifier: arXiv ids lose their version ('v2'),
    DOIs, OpenReview and ACL ids compare case-insensitively."""
    value = str(value).strip()
    if kind == "arxiv":
        value = links.clean_arxiv(value)
    elif kind == "doi":
        value = links.clean_doi(value)
    return value.lower()


def keys_of(entry: Any) -> list[Key]:
    """Every identity key of a paper (or its data), strong keys first, then URL and title.
    A field the entry lacks (a link-less entry has no URL) gives no key."""
    get = _getter(entry)
    keys = [(kind, strong_key(kind, get(kind))) for kind in STRONG if get(kind)]
    if url := get("url"):
        keys.append(("url", links.normalise_url(url)))
    if title := get("title"):
        if normalised := links.normalise_title(title):
            keys.append(("title", normalised))
    return keys


def link_keys(url: str, ids: Mapping[str, str]) -> list[Key]:
    """The keys one link gives: the identifiers it carries and its normalised URL."""
    keys = [(kind, strong_key(kind, value)) for kind, value in ids.items() if value]
    keys.append(("url", links.normalise_url(url)))
    return keys


def strong_conflict(a: Any, b: Any) -> str | None:
    """The first strong identifier both entries have with different values, else None:
    such entries are two papers, whatever else they share."""
    get_a, get_b = _getter(a), _getter(b)
    for kind in STRONG:
        mine, theirs = get_a(kind), get_b(kind)
        if mine and theirs and strong_key(kind, mine) != strong_key(kind, theirs):
            return kind
    return None


def titles_match(a: str, b: str) -> bool:
    """Two spellings of one title: equal once normalised, nearly equal, or one a long
    enough prefix of the other (a title with and without its subtitle)."""
    a, b = links.normalise_title(a), links.normalise_title(b)
    if not a or not b:
        return False
    if a == b or fuzz.ratio(a, b) >= 92:
        return True
    short, long = sorted((a, b), key=len)
    return len(short.split()) >= 4 and long.startswith(short)


class IdentityIndex(Generic[T]):
    """Identity keys -> the first owner (an entry, a draft, an id) registered under each.
    Owners are told apart with `!=`: ids by value, objects without `__eq__` by identity."""

    def __init__(self) -> None:
        self._owners: dict[Key, T] = {}

    def add(self, owner: T, keys: Iterable[Key]) -> None:
        for key in keys:
            self._owners.setdefault(key, owner)

    def get(self, key: Key) -> T | None:
        return self._owners.get(key)

    def find(self, keys: Iterable[Key]) -> list[tuple[str, T]]:
        """(kind, owner) for each distinct owner of one of `keys`, in the order of `keys`
        (strong evidence first when the keys come from `keys_of`)."""
        found: list[tuple[str, T]] = []
        for kind, value in keys:
            owner = self._owners.get((kind, value))
            if owner is not None and all(owner != other for _, other in found):
                found.append((kind, owner))
        return found


def duplicates(entries: Iterable[T], keys=keys_of) -> list[tuple[T, T, str]]:
    """(first, later, kind) for each later entry that is the same paper as an earlier one:
    what `mi-atlas check` reports."""
    index: IdentityIndex[T] = IdentityIndex()
    pairs: list[tuple[T, T, str]] = []
    for entry in entries:
        entry_keys = keys(entry)
        for kind, first in index.find(entry_keys):
            pairs.append((first, entry, kind))
        index.add(entry, entry_keys)
    return pairs
