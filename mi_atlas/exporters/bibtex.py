"""The index as BibTeX: one valid entry per paper, keyed by its id.

Text fields are escaped (`texcodec.escape`: & % _ # $ { } ~ ^ \\ and TeX ligatures), title
words with inner capitals are braced so styles keep their case, arXiv papers carry
`eprint`/`archivePrefix` (and `primaryClass` when the entry records it). The layout is
bibtexparser's writer. With `atlas_fields` (the default) each entry also carries what BibTeX
has no field for, as `mi-atlas-*` fields (venue, tags, code, notes, ...), so that
`mi-atlas import-bib` reads an export back to the same entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.model import Entry, Field
from bibtexparser.writer import BibtexFormat

from .. import texcodec
from ..schema import Paper
from ..taxonomy import AXES, Taxonomy, load_taxonomy

ATLAS = "mi-atlas-"
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Extras written as they are (identifiers, numbers, dates), like the importer reads them.
VERBATIM = frozenset(
    {"pages", "isbn", "issn", "date", "month", "volume", "number", "primaryclass", "eprintclass",
     "eprint", "eprinttype", "archiveprefix"}
)  # fmt: skip
_CASED = {"primaryclass": "primaryClass", "archiveprefix": "archivePrefix"}
_NAME_FIELDS = ("editor", "translator")
_NEEDS_BRACES = re.compile(r",|(?:^|\s)and(?:\s|$)|^others$", re.IGNORECASE)
_BRACES = re.compile(r"(?<!\\)[{}]")


def default_entry_type(extras: dict[str, str], venue_kind: str) -> str:
    """The entry type an export writes unless the entry records another (`entrytype`)."""
    if "booktitle" in extras:
        return "inproceedings"
    if "journal" in extras:
        return "article"
    return {"conference": "inproceedings", "workshop": "inproceedings", "journal": "article"}.get(
        venue_kind, "misc"
    )


def to_bibtex(
    papers: Iterable[Paper], *, atlas_fields: bool = True, taxonomy: Taxonomy | None = None
) -> str:
    """BibTeX for `papers`, in the given order. `atlas_fields=False` gives plain entries for
    readers to copy (no `mi-atlas-*` fields)."""
    taxonomy = taxonomy or load_taxonomy()
    library = Library([_entry(p, taxonomy, atlas_fields) for p in papers])
    layout = BibtexFormat()
    layout.indent = "  "
    layout.block_separator = "\n"
    layout.trailing_comma = True
    # The values are written enclosed already, so no unparse middleware is needed.
    return bibtexparser.write_string(library, unparse_stack=[], bibtex_format=layout)


def _entry(paper: Paper, taxonomy: Taxonomy, atlas_fields: bool) -> Entry:
    venue = taxonomy.venues.by_name.get(paper.venue)
    # A venue missing from venues.yaml is written as the entry has it.
    kind, full = (venue.kind, venue.full) if venue else ("other", paper.venue)
    extras = dict(paper.bibtex)
    entry_type = extras.pop("entrytype", None) or default_entry_type(extras, kind)
    fields = [("title", _braced(texcodec.protect_title(texcodec.collapse(paper.title))))]
    if paper.authors:
        fields.append(("author", _braced(" and ".join(_name(a) for a in paper.authors))))
    if entry_type == "inproceedings" and "booktitle" not in extras and kind != "preprint":
        extras = {"booktitle": full, **extras}
    elif entry_type == "article" and "journal" not in extras and kind == "journal":
        extras = {"journal": full, **extras}
    elif venue is None and full and not {"booktitle", "journal", "howpublished"} & extras.keys():
        extras = {"howpublished": full, **extras}
    for name in ("booktitle", "journal"):
        if name in extras:
            fields.append((name, _braced(_text(extras.pop(name)))))
    fields.append(("year", _braced(str(paper.year))))
    primary_class = None
    for name, value in extras.items():
        if name in ("primaryclass", "archiveprefix", "eprint", "eprinttype") and paper.arxiv:
            primary_class = value if name == "primaryclass" else primary_class
            continue  # written with the arXiv fields below
        fields.append((_CASED.get(name, name), _value(name, value)))
    if paper.url:
        fields.append(("url", _verbatim(paper.url)))
    if paper.doi:
        fields.append(("doi", _verbatim(paper.doi)))
    if paper.arxiv:
        fields += [("eprint", _braced(paper.arxiv)), ("archivePrefix", "{arXiv}")]
        if primary_class:
            fields.append(("primaryClass", _verbatim(primary_class)))
    if paper.abstract:
        fields.append(("abstract", _braced(_text(paper.abstract))))
    if atlas_fields:
        fields += _atlas(paper)
    return Entry(entry_type, paper.id, [Field(k, v) for k, v in fields])


def _atlas(paper: Paper) -> list[tuple[str, str]]:
    fields = [(ATLAS + "venue", _braced(paper.venue))] if paper.venue else []
    for axis in AXES:
        if tags := getattr(paper, axis):
            fields.append((ATLAS + axis, _braced(", ".join(tags))))
    for name in ("code", "openreview", "acl"):
        if value := getattr(paper, name):
            fields.append((ATLAS + name, _verbatim(value)))
    for name in ("tldr", "notes"):
        if value := getattr(paper, name):
            fields.append((ATLAS + name, _braced(_text(value))))
    if paper.added:
        fields.append((ATLAS + "added", _braced(paper.added.isoformat())))
    return fields


def _braced(text: str) -> str:
    return "{" + text + "}"


def _name(name: str) -> str:
    """One author: escaped; braced whole where BibTeX would split or reorder it."""
    text = _text(name)
    return _braced(text) if _NEEDS_BRACES.search(name) else text


def _value(name: str, value: str) -> str:
    if name == "month" and value.isdigit() and 1 <= int(value) <= 12:
        return MONTHS[int(value) - 1]  # the standard macro, unbraced
    if name in VERBATIM:
        return _verbatim(value)
    if name in _NAME_FIELDS:
        return _braced(" and ".join(_name(n) for n in value.split(" and ")))
    return _braced(_text(value))


def _text(value: str) -> str:
    """Escaped text on one line: BibTeX reads any run of spaces and newlines as one space, and
    a line of a value that starts with `@` would end the entry for some readers."""
    return texcodec.escape(texcodec.collapse(value))


def _verbatim(value: str) -> str:
    """Identifiers and links as written, unless their braces would unbalance the file."""
    value = texcodec.collapse(value)
    depth = 0
    for m in _BRACES.finditer(value):
        depth += 1 if m.group() == "{" else -1
        if depth < 0:
            break
    return _braced(value if depth == 0 else texcodec.escape(value))
