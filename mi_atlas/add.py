"""Creating one entry from field values: the library side of `mi-atlas add`.

The entry is validated exactly as `mi-atlas check` would validate the file, and compared with
the existing index for duplicates, before anything is written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from . import identity, links
from .entries import make_id, write_entry
from .index import load_index, validate_entry
from .problems import Problem
from .schema import Paper
from .taxonomy import Taxonomy


class AddError(ValueError):
    """The entry was not written; `problems` says why, one per field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def fields_from_link(link: str) -> dict[str, str]:
    """Fill url/arxiv/doi/openreview/acl/code from an arXiv id, a DOI or a URL."""
    link = link.strip()
    bare_arxiv = links.clean_arxiv(link)
    if links.ARXIV_ID.match(bare_arxiv):
        return {"arxiv": bare_arxiv, "url": f"https://arxiv.org/abs/{bare_arxiv}"}
    bare_doi = links.clean_doi(link)
    if links.DOI.match(bare_doi):
        return {"doi": bare_doi, "url": f"https://doi.org/{bare_doi}"}
    info = links.parse_link(link)
    found = {key: getattr(info, key) for key in ("arxiv", "doi", "openreview", "acl", "code")}
    fields = {key: value for key, value in found.items() if value}
    if info.code:
        return fields  # a code link is not the paper's page; --url must say where the paper is
    return {"url": info.url, **fields}


def build_entry(values: dict[str, Any], taxonomy: Taxonomy, papers_dir: Path) -> Paper:
    """Validate `values` as a new entry of `papers_dir`; raise `AddError` with every problem."""
    data = {key: value for key, value in values.items() if value not in (None, "", [], {})}
    for axis in ("objects", "locate", "steer", "goals"):
        data.setdefault(axis, [])
    if isinstance(data.get("venue"), str):
        data["venue"] = taxonomy.venues.resolve(data["venue"]) or data["venue"]
    data.setdefault("added", dt.date.today().isoformat())
    index = load_index(papers_dir, taxonomy) if papers_dir.is_dir() else None
    if not data.get("id") and data.get("title"):
        taken = set(index.files) if index else set()
        data["id"] = make_id(
            str(data["title"]), _int_or_none(data.get("year")), data.get("authors"), taken
        )
    target = f"{papers_dir / str(data.get('id', '<id>'))}.yaml"
    paper, problems = validate_entry(data, taxonomy, file=target)
    if paper is not None and index is not None:
        problems += _clashes(paper, index, target)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        raise AddError(errors)
    assert paper is not None
    return paper


def add_entry(
    values: dict[str, Any], taxonomy: Taxonomy, papers_dir: Path, *, dry_run: bool = False
) -> tuple[Paper, Path]:
    paper = build_entry(values, taxonomy, papers_dir)
    path = papers_dir / f"{paper.id}.yaml"
    if not dry_run:
        try:
            write_entry(paper, papers_dir)
        except FileExistsError:
            raise AddError(
                [
                    Problem(
                        str(path),
                        "id",
                        f"{path} already exists; choose another --id or edit that file",
                    )
                ]
            ) from None
    return paper, path


def _clashes(paper: Paper, index, target: str) -> list[Problem]:
    if paper.id in index.files:
        return [
            Problem(
                target,
                "id",
                f"an entry with id '{paper.id}' already exists ({index.files[paper.id]}); choose another --id",
            )
        ]
    known: identity.IdentityIndex[Paper] = identity.IdentityIndex()
    for other in index.papers:
        known.add(other, identity.keys_of(other))
    for kind, other in known.find(identity.keys_of(paper))[:1]:
        return [
            Problem(
                target,
                kind,
                f"same {identity.KEY_NAMES[kind]} as {index.files[other.id]}: that paper is "
                "already in the index",
            )
        ]
    return []


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
