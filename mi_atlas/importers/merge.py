"""Merging an imported record of a paper into the curated entry for the same paper.

The curated entry wins: an import only fills what it lacks (authors, abstract, identifiers,
BibTeX extras) and never touches its tags, title, year, venue or url. Every value the import
offered that differs from the curated one is returned as a `Conflict` so an importer can
report it. Shared by every importer (`import-bib`, `import-awesome`).

    result = merge_paper(curated, incoming)
    result.paper      # the curated entry with the gaps filled (re-validated)
    result.filled     # ["authors", "doi", "bibtex.pages"]
    result.conflicts  # [Conflict("year", kept="2024", offered="2023")]
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from .. import links
from ..schema import Paper
from ..taxonomy import AXES, Taxonomy

# Filled when the curated entry lacks them; compared when both have them.
FILLABLE = ("arxiv", "doi", "openreview", "acl", "code", "abstract", "tldr")
# Never changed by an import; compared so differences are reported.
KEPT = ("title", "year", "venue")


@dataclass(frozen=True)
class Conflict:
    """A value the import offered that differs from the curated one (which was kept)."""

    field: str
    kept: str
    offered: str

    @property
    def message(self) -> str:
        return f"kept '{_short(self.kept)}' of the curated entry; the import has '{_short(self.offered)}'"


@dataclass
class MergeResult:
    paper: Paper
    filled: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.filled)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _fold(text: str) -> str:
    """Comparison form of free text: case, accents and spacing ignored."""
    text = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).casefold().split())


def merge_paper(
    curated: Paper,
    incoming: Paper,
    taxonomy: Taxonomy | None = None,
) -> MergeResult:
    """Fill `curated`'s gaps from `incoming` (the same paper); report what differs."""
    update: dict = {}
    result = MergeResult(curated)
    conflicts = result.conflicts

    if links.normalise_title(curated.title) != links.normalise_title(incoming.title):
        conflicts.append(Conflict("title", curated.title, incoming.title))
    if curated.year != incoming.year:
        conflicts.append(Conflict("year", str(curated.year), str(incoming.year)))
    # A preprint of a published paper is not a conflict; a publication of a preprint is news.
    if curated.venue != incoming.venue and incoming.venue != "arXiv":
        conflicts.append(Conflict("venue", curated.venue, incoming.venue))

    for name in FILLABLE:
        mine, theirs = getattr(curated, name), getattr(incoming, name)
        if theirs is None:
            continue
        if mine is None:
            update[name] = theirs
            result.filled.append(name)
        elif _fold(mine) != _fold(theirs):
            conflicts.append(Conflict(name, mine, theirs))

    if incoming.authors:
        if not curated.authors:
            update["authors"] = incoming.authors
            result.filled.append("authors")
        elif [_fold(a) for a in curated.authors] != [_fold(a) for a in incoming.authors]:
            conflicts.append(
                Conflict("authors", ", ".join(curated.authors), ", ".join(incoming.authors))
            )

    extras = dict(curated.bibtex)
    for key, value in incoming.bibtex.items():
        if key not in extras:
            extras[key] = value
            result.filled.append(f"bibtex.{key}")
        elif _fold(extras[key]) != _fold(value):
            conflicts.append(Conflict(f"bibtex.{key}", extras[key], value))
    if extras != curated.bibtex:
        update["bibtex"] = extras

    for axis in AXES:  # tags are the curators' judgement: never changed by an import
        mine, theirs = getattr(curated, axis), getattr(incoming, axis)
        if theirs and theirs != mine:
            conflicts.append(Conflict(axis, ", ".join(mine) or "[]", ", ".join(theirs)))

    if update:
        update["provenance"] = [*curated.provenance, *incoming.provenance]
        data = curated.model_dump()
        data.update(update)
        context = {"taxonomy": taxonomy} if taxonomy is not None else None
        result.paper = Paper.model_validate(data, context=context)
    return result
