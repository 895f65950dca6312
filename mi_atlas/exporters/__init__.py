"""Exporters: the whole index as BibTeX, JSON or CSV (`mi-atlas export`, the site's downloads).

Each takes validated `Paper`s and returns text; none reads files or validates the index
itself (callers use `mi_atlas.index.load_index` and refuse an index with problems).
"""

from __future__ import annotations

from collections.abc import Callable

from ..schema import Paper
from .bibtex import to_bibtex
from .csv import to_csv
from .json import to_json

FORMATS: dict[str, Callable[[list[Paper]], str]] = {
    "bib": to_bibtex,
    "json": to_json,
    "csv": to_csv,
}

__all__ = ["FORMATS", "to_bibtex", "to_csv", "to_json"]
