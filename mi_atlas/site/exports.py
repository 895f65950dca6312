"""The downloads and per-paper BibTeX, made by the project's exporters (`mi_atlas.exporters`).

The site never formats BibTeX, JSON or CSV itself: what a reader downloads or copies is
exactly what `mi-atlas export` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import Paper
from .context import Download


@dataclass
class Exported:
    bibtex: dict[str, str]  # paper id -> its BibTeX entry
    downloads: list[Download]


def export(papers: list[Paper]) -> Exported | None:
    """Per-paper BibTeX entries and the three whole-index downloads."""
    try:
        from ..exporters.bibtex import to_bibtex
        from ..exporters.csv import to_csv
        from ..exporters.json import to_json
    except ImportError:
        return None
    return Exported(
        bibtex={paper.id: to_bibtex([paper]) for paper in papers},
        downloads=[
            Download("BibTeX", "bib", "application/x-bibtex", to_bibtex(papers)),
            Download("JSON", "json", "application/json", to_json(papers)),
            Download("CSV", "csv", "text/csv", to_csv(papers)),
        ],
    )
