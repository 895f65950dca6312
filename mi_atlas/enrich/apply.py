"""Merging fact records into the index: what is filled, what conflicts, what waits for a curator.

Each `Fact` is matched to its entry (by id, else by arXiv id or DOI) and offered to the
importers' `merge_paper`, so the rule is the same as for every import: the curated entry wins,
only missing fields are filled, and every value that differs is a conflict. Facts a source is
not sure of are not offered at all but listed for review:

- a record marked `low` confidence (nothing of it is written);
- a DOI the source derived instead of reading it (`doi_note`), and arXiv's own DataCite DOI
  (10.48550/arXiv.*), which repeats `arxiv` and is not the published version's DOI;
- an identifier another entry already holds (that would make two entries one paper).

Authors from a `medium` record (versions of the paper disagree on the list or its order) are
written, because a list to correct is more useful than none, and also listed for review.
A first-public date later than the entry's year is a conflict on `year`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..entries import entry_text
from ..identity import IdentityIndex, keys_of, strong_key
from ..importers.merge import merge_entry
from ..index import Index, display_path
from ..schema import Paper, to_yaml_data
from ..taxonomy import Taxonomy
from ..yamlio import write_atomic
from .facts import Fact

IDS = ("arxiv", "doi")

MEDIUM_AUTHORS = (
    "the source's versions of the paper disagree on its authors or their order (it used the "
    "latest or the venue version); check against the version the entry links"
)


@dataclass
class EnrichReport:
    """Everything one enrichment found, per entry file; `updated` holds the merged entries."""

    source: str
    label: str = ""  # how an entry's provenance names the source (no machine-specific path)
    papers: int = 0
    records: int = 0
    merged: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    review: list[dict] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    updated: dict[str, tuple[Path, Paper]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "papers": self.papers,
            "records": self.records,
            "merged": self.merged,
            "conflicts": self.conflicts,
            "review": self.review,
            "unmatched": self.unmatched,
            "problems": self.problems,
        }

    def write(self) -> list[Path]:
        """Rewrite the entries that were filled, each atomically; return their paths."""
        written = []
        for path, paper in self.updated.values():
            write_atomic(path, entry_text(paper), overwrite=True)
            written.append(path)
        return written


def enrich(
    facts: list[Fact], index: Index, taxonomy: Taxonomy, *, source: str, label: str | None = None
) -> EnrichReport:
    """Merge `facts` into the entries of `index`; nothing is written until `report.write()`."""
    report = EnrichReport(
        source=source, label=label or source, papers=len(index.papers), records=len(facts)
    )
    by_id = {paper.id: paper for paper in index.papers}
    owners: IdentityIndex[str] = IdentityIndex()
    for paper in index.papers:
        owners.add(paper.id, keys_of(paper))
    for fact in facts:
        paper = by_id.get(fact.id)
        if paper is None:  # a record keyed by an old id still names the paper by its identifiers
            found = owners.find(_fact_keys(fact, IDS))
            paper = by_id[found[0][1]] if found else None
        if paper is None:
            report.unmatched.append(
                {"id": fact.id, "reason": "no entry has this id, arXiv id or DOI"}
            )
            continue
        if paper.id in report.updated:  # a second record for the same entry builds on the first
            paper = report.updated[paper.id][1]
        _merge_one(report, fact, paper, index.files[paper.id], taxonomy, owners)
    return report


def _fact_keys(fact: Fact, names) -> list[tuple[str, str]]:
    return [(name, strong_key(name, getattr(fact, name))) for name in names if getattr(fact, name)]


def _merge_one(
    report: EnrichReport, fact: Fact, paper: Paper, path: Path, taxonomy: Taxonomy, owners
) -> None:
    file = display_path(path)

    def review(name: str, value, reason: str, *, written: bool = False) -> None:
        report.review.append(
            {
                "file": file,
                "id": paper.id,
                "field": name,
                "value": value,
                "reason": reason,
                "written": written,
                "evidence": fact.evidence,
            }
        )

    def conflict(name: str, kept: str, offered: str, reason: str) -> None:
        report.conflicts.append(
            {
                "file": file,
                "id": paper.id,
                "field": name,
                "kept": kept,
                "offered": offered,
                "message": reason,
                "evidence": fact.evidence,
            }
        )

    offered = {
        name: getattr(fact, name)
        for name in ("authors", "orcids", "arxiv", "doi", "code")
        if getattr(fact, name)
    }
    if fact.confidence == "low":
        for name, value in offered.items():
            review(name, value, "the source marks this record low-confidence")
        if not paper.authors:
            review("authors", None, "no source found the authors; a curator must add them")
        return
    doi = offered.get("doi")
    if doi and fact.doi_note:
        review("doi", offered.pop("doi"), f"derived, not read on a page: {fact.doi_note}")
    elif doi and doi.lower().startswith("10.48550/arxiv."):
        review(
            "doi",
            offered.pop("doi"),
            "arXiv's own DOI repeats the arXiv id; the published version's DOI belongs in doi",
        )
    for name in IDS:
        value = offered.get(name)
        owner = owners.get((name, strong_key(name, value))) if value else None
        if owner and owner != paper.id:
            offered.pop(name)
            conflict(name, str(getattr(paper, name)), value, f"{owner} already has {name} {value}")
    if fact.published and fact.published.year > paper.year:
        conflict(
            "year",
            str(paper.year),
            str(fact.published.year),
            f"the paper was first public on {fact.published.isoformat()}, after the entry's year",
        )

    label = report.label if not fact.evidence else f"{report.label} (facts from {fact.evidence})"
    kept = to_yaml_data(paper)
    incoming = {
        **{name: kept.get(name) for name in ("title", "year", "venue")},
        **offered,
        "provenance": [{"source": label}],
    }
    result = merge_entry(kept, incoming)
    for item in result.conflicts:
        conflict(item.field, item.kept, item.offered, item.message)
    filled = [name for name in result.filled if not name.startswith("provenance")]
    if fact.confidence == "medium" and "authors" in filled:
        review("authors", result.data["authors"], MEDIUM_AUTHORS, written=True)
    if not filled:
        return
    try:
        merged = Paper.model_validate(result.data, context={"taxonomy": taxonomy})
    except ValidationError as exc:  # e.g. an ORCID keyed by a name the entry spells otherwise
        report.problems.append(f"{file}: the facts of {fact.id} make the entry invalid: {exc}")
        return
    report.merged.append({"file": file, "id": paper.id, "fields": filled})
    report.updated[paper.id] = (path, merged)
    owners.add(paper.id, keys_of(merged))
