"""The downloads and per-paper BibTeX, made by the project's exporters (`mi_atlas.exporters`).

The site never formats BibTeX, JSON or CSV itself: the downloads are what the exporters write,
and each paper's BibTeX is its entry in the BibTeX download. That download holds plain entries
(`atlas_fields=False`), the ones a reader wants in a bibliography; the JSON download carries
everything else. The whole index is exported once and cut into entries by their keys, which
costs half of exporting each paper again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exporters.bibtex import to_bibtex
from ..exporters.csv import to_csv
from ..exporters.json import to_json
from ..schema import Paper
from ..taxonomy import Taxonomy
from .context import Download


@dataclass
class Exported:
    bibtex: dict[str, str]  # paper id -> its BibTeX entry
    downloads: list[Download]


def export(papers: list[Paper], taxonomy: Taxonomy) -> Exported:
    """Per-paper BibTeX entries and the three whole-index downloads."""
    bibtex = to_bibtex(papers, atlas_fields=False, taxonomy=taxonomy)
    return Exported(
        bibtex=split_entries(bibtex, [paper.id for paper in papers]),
        downloads=[
            Download("BibTeX", "bib", "application/x-bibtex", bibtex),
            Download("JSON", "json", "application/json", to_json(papers)),
            Download("CSV", "csv", "text/csv", to_csv(papers)),
        ],
    )


def split_entries(bibtex: str, keys: list[str]) -> dict[str, str]:
    """Cut a BibTeX file written in `keys` order into its entries, by their `@type{key,` lines."""
    starts = []
    position = 0
    for key in keys:
        start = _entry_start(bibtex, key, position)
        if start < 0:
            raise ValueError(f"the BibTeX export has no entry with the key '{key}'")
        starts.append(start)
        position = start + len(key)
    ends = [*starts[1:], len(bibtex)]
    return {key: bibtex[a:b].strip() + "\n" for key, a, b in zip(keys, starts, ends, strict=True)}


def _entry_start(bibtex: str, key: str, position: int) -> int:
    """Where the entry `@type{key,` starts at or after `position` (-1 if nowhere)."""
    needle = "{" + key + ","
    found = bibtex.find(needle, position)
    while found >= 0:
        line = bibtex.rfind("\n", 0, found) + 1
        if bibtex[line] == "@" and bibtex[line + 1 : found].isalpha():
            return line
        found = bibtex.find(needle, found + 1)
    return -1
