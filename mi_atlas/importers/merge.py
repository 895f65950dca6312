"""Merging a second record of a paper into the entry already kept for it: the one merge.

Used by `import-bib`, `import-awesome` (and `enrich`): whoever finds that two records are the
same paper (`mi_atlas.identity`) calls `merge_entry(kept, incoming)` on their plain data.

- The kept entry wins: its title, year and venue are never changed (a venue it still needs
  is filled); each different value the
  incoming record offered is returned as a `Conflict` for the report. A preprint (venue arXiv)
  of a published paper is not a conflict.
- What the kept entry lacks is filled: url (which settles a "no link" entry), identifiers,
  code, authors, abstract, TL;DR, BibTeX extras, and the provenance of the incoming record.
- Tags are the curators' judgement. Into a curated entry, only an axis it leaves empty is
  filled; a different non-empty list is a conflict. Between two records of the same import
  (`same_import=True`) the lists are united, the kept record's primary tag first.

    result = merge_entry(kept, incoming)
    result.data       # the kept entry's data with the gaps filled (validate it before writing)
    result.filled     # ["authors", "doi", "bibtex.pages", "provenance line 12"]
    result.conflicts  # [Conflict("year", kept="2024", offered="2023")]
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from .. import links
from ..taxonomy import AXES

# Filled when the kept entry lacks them; compared when both have them.
FILLABLE = ("url", "arxiv", "doi", "openreview", "acl", "code", "abstract", "tldr")
PREPRINT_VENUE = "arXiv"
# Identifiers the kept entry's own `url` may already name (an arXiv abs page names its id).
LINKED = ("arxiv", "doi", "openreview", "acl")


@dataclass(frozen=True)
class Conflict:
    """A value the incoming record offered that differs from the kept one (which stays)."""

    field: str
    kept: str
    offered: str

    @property
    def message(self) -> str:
        return f"kept '{_short(self.kept)}' of the curated entry; the import has '{_short(self.offered)}'"


@dataclass
class MergeResult:
    data: dict[str, Any]
    filled: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.filled)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def fold(text: str) -> str:
    """Comparison form of free text: case, accents and spacing ignored."""
    text = unicodedata.normalize("NFKD", str(text))
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).casefold().split())


def merge_entry(
    kept: dict[str, Any], incoming: dict[str, Any], *, same_import: bool = False
) -> MergeResult:
    """Fill `kept`'s gaps from `incoming` (the same paper); report what differs. Neither
    argument is changed."""
    data = copy.deepcopy(kept)
    result = MergeResult(data)
    conflicts = result.conflicts

    if links.normalise_title(kept["title"]) != links.normalise_title(incoming["title"]):
        conflicts.append(Conflict("title", kept["title"], incoming["title"]))
    if kept["year"] != incoming["year"]:
        conflicts.append(Conflict("year", str(kept["year"]), str(incoming["year"])))
    mine, theirs = kept.get("venue"), incoming.get("venue")
    if theirs and not mine:  # an entry that needed its venue
        data["venue"] = theirs
        result.filled.append("venue")
    elif theirs and mine != theirs and theirs != PREPRINT_VENUE:
        conflicts.append(Conflict("venue", mine, theirs))

    linked = links.parse_link(kept["url"]) if kept.get("url") else None
    for name in FILLABLE:
        mine, theirs = kept.get(name), incoming.get(name)
        if not theirs:
            continue
        implied = getattr(linked, name) if linked and name in LINKED else None
        if not mine and implied and fold(implied) != fold(theirs):
            # The kept entry's link names another paper than the incoming id: not a gap.
            conflicts.append(Conflict(name, f"{implied} (from url {kept['url']})", theirs))
        elif not mine:
            data[name] = theirs
            result.filled.append(name)
        elif fold(mine) != fold(theirs) and name != "url":  # two links to one paper are fine
            conflicts.append(Conflict(name, mine, theirs))
    met = {"link": "url", "venue": "venue"}
    if any(data.get(met[need]) for need in data.get("needs") or ()):
        data["needs"] = [need for need in data["needs"] if not data.get(met[need])]

    mine, theirs = kept.get("authors") or [], incoming.get("authors") or []
    if theirs and not mine:
        data["authors"] = list(theirs)
        result.filled.append("authors")
    elif theirs and [fold(a) for a in mine] != [fold(a) for a in theirs]:
        conflicts.append(Conflict("authors", ", ".join(mine), ", ".join(theirs)))

    orcids = dict(kept.get("orcids") or {})
    for name, orcid in (incoming.get("orcids") or {}).items():
        if name not in (data.get("authors") or []):
            continue  # an ORCID iD is keyed by a name the entry lists
        if name not in orcids:
            orcids[name] = orcid
            result.filled.append(f"orcids.{name}")
        elif orcids[name] != orcid:
            conflicts.append(Conflict(f"orcids.{name}", orcids[name], orcid))
    if orcids:
        data["orcids"] = orcids

    extras = dict(kept.get("bibtex") or {})
    for key, value in (incoming.get("bibtex") or {}).items():
        if key not in extras:
            extras[key] = value
            result.filled.append(f"bibtex.{key}")
        elif fold(extras[key]) != fold(value):
            conflicts.append(Conflict(f"bibtex.{key}", extras[key], value))
    if extras:
        data["bibtex"] = extras

    for axis in AXES:
        mine, theirs = list(kept.get(axis) or []), list(incoming.get(axis) or [])
        if not theirs or theirs == mine:
            continue
        if not mine:
            data[axis] = theirs
            result.filled.append(axis)
            continue
        if not same_import:
            conflicts.append(Conflict(axis, ", ".join(mine), ", ".join(theirs)))
            continue
        if extra := [tag for tag in theirs if tag not in mine]:
            data[axis] = mine + extra
            result.filled.append(axis)
        if theirs[0] != mine[0]:
            conflicts.append(Conflict(axis, ", ".join(mine), ", ".join(theirs)))

    seen = {(p.get("source"), p.get("line")) for p in kept.get("provenance") or []}
    for prov in incoming.get("provenance") or []:
        if (prov.get("source"), prov.get("line")) not in seen:
            data.setdefault("provenance", []).append(dict(prov))
            result.filled.append(f"provenance line {prov.get('line')}")
    return result
