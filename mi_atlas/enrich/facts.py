"""Fact records: what a metadata source says about one paper of the index, and how sure it is.

The file format is the one of `shared/data/paper-metadata/metadata.json` (see its SOURCE.md):
a JSON list of objects keyed by the entry's `id`, each with `authors` (in order), `arxiv`,
`doi` (with `doi_note` when it was derived rather than read), `code`, `published`,
`confidence` (high | medium | low) and `evidence` (the page the facts were read from).
Online sources build the same records, so one merge handles both.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..schema import ArxivId, Doi, Orcid, Text, Url


class FactsError(ValueError):
    """The facts file cannot be used at all (missing, not JSON, not a list of records)."""


class Fact(BaseModel):
    """Facts about one paper. `None` means the source found nothing for that field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Text = Field(description="The entry's id (its file stem).")
    authors: list[Text] | None = None
    orcids: dict[Text, Orcid] = Field(default_factory=dict)
    arxiv: ArxivId | None = None
    doi: Doi | None = None
    doi_note: Text | None = Field(
        default=None, description="Set where the DOI was derived, not read on a page."
    )
    code: Url | None = None
    published: dt.date | None = None
    confidence: Literal["high", "medium", "low"]
    evidence: str | None = Field(default=None, description="The page the facts came from.")


def load_facts(path: Path) -> tuple[list[Fact], list[str]]:
    """The valid records of a facts file and one message per record that is not valid.

    Raises `FactsError` (one sentence naming the file) when the file cannot be used at all.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FactsError(f"{path} cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise FactsError(f"{path} is not a JSON file{where}: expected a list of records") from None
    if isinstance(data, dict) and isinstance(data.get("papers"), list):
        data = data["papers"]
    if not isinstance(data, list):
        raise FactsError(
            f"{path} holds a JSON {type(data).__name__}, not a list of records with an 'id' each"
        )
    facts: list[Fact] = []
    problems: list[str] = []
    for number, item in enumerate(data, start=1):
        try:
            facts.append(Fact.model_validate(item))
        except ValidationError as exc:
            label = item.get("id") if isinstance(item, dict) else None
            for error in exc.errors(include_url=False):
                field = ".".join(str(part) for part in error["loc"]) or "record"
                problems.append(
                    f"{path}: record {number}"
                    + (f" ({label})" if label else "")
                    + f", field '{field}': {error['msg']}"
                )
    return facts, problems
