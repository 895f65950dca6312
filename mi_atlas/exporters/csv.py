"""The index as CSV: one row per paper, lists joined with ';', BibTeX extras as JSON.

A cell that starts with = + - @ (or a tab or carriage return) gets a leading apostrophe, as
OWASP advises, so a spreadsheet never runs a title as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from ..schema import Paper

COLUMNS = (
    "id", "title", "year", "venue", "url", "arxiv", "doi", "openreview", "acl", "code",
    "authors", "objects", "locate", "steer", "goals", "abstract", "tldr", "added", "notes",
    "bibtex",
)  # fmt: skip
SEPARATOR = ";"


def to_csv(papers: Iterable[Paper]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for paper in papers:
        writer.writerow([_cell(_value(paper, column)) for column in COLUMNS])
    return buffer.getvalue()


def _value(paper: Paper, column: str) -> str:
    value = getattr(paper, column)
    if column == "bibtex":
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    if isinstance(value, list):
        return SEPARATOR.join(value)
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
