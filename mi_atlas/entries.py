"""Writing entries: ids from titles, the canonical file text, atomic creation.

Every tool that creates a `papers/<id>.yaml` (add, import-awesome, import-bib) goes through
`write_entry`, so files look the same whoever made them and nothing is half-written.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from .schema import Paper, to_yaml_data
from .yamlio import dump, write_atomic

MODELINE = "# yaml-language-server: $schema=../schema/paper.schema.json\n"
_STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "for",
    "and",
    "or",
    "to",
    "via",
    "with",
    "by",
    "from",
    "is",
    "are",
    "as",
    "at",
    "its",
    "into",
    "towards",
    "toward",
    "do",
    "does",
    "can",
    "how",
    "what",
    "when",
    "why",
    "we",
    "you",
    "your",
    "our",
    "be",
    "not",
    "all",
    "about",
    "through",
    "using",
}


_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_words: int = 6) -> str:
    if not text.isascii():  # (ASCII text is its own NFKD form)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = text.lower()
    words = [w for w in _NON_SLUG.split(text) if w]
    keep = [w for w in words if w not in _STOPWORDS] or words
    return "-".join(keep[:max_words])


def make_id(
    title: str, year: int | None, authors: list[str] | None = None, taken: set[str] | None = None
) -> str:
    """'2024-arditi-refusal-language-models-mediated-single' style ids, unique within `taken`.

    The first author's family name is used when known; a numeric suffix resolves clashes.
    """
    parts = [str(year)] if year else []
    if authors:
        family = slugify(
            authors[0].split(",")[0] if "," in authors[0] else authors[0].split()[-1], 1
        )
        if family:
            parts.append(family)
    parts.append(slugify(title, 5) or "untitled")
    base = "-".join(parts)[:72].strip("-")
    taken = taken or set()
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def entry_text(paper: Paper) -> str:
    """The YAML text of an entry, with the modeline that gives editors the JSON Schema."""
    return MODELINE + dump(to_yaml_data(paper))


def write_entry(paper: Paper, papers_dir: Path, *, overwrite: bool = False) -> Path:
    """Write `papers_dir/<id>.yaml` atomically; refuse to replace an existing file unless told."""
    path = papers_dir / f"{paper.id}.yaml"
    write_atomic(path, entry_text(paper), overwrite=overwrite)
    return path
