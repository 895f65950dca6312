"""Reading real-world .bib files with bibtexparser v2: one record per entry, nothing dropped.

bibtexparser splits the file (after `bibrepair` fixed the slips whose fix is certain); one
pass over each entry's fields then does what its middlewares would (@string macros, enclosing
braces and quotes, month macros, author lists and name parts), with bibtexparser's own
helpers, and decodes LaTeX with `texcodec`. Around that this module handles
what exported and hand-edited files contain: duplicate citation keys and fields, `%` comment
lines inside entries, `#` concatenations, undefined macros, names BibTeX cannot split, text
between entries, bookkeeping fields of reference managers, and `crossref`. Everything it
notices becomes a `Note` at a line; every entry becomes a `BibRecord` or a `BibFailure`.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from bibtexparser.middlewares import (
    MonthIntMiddleware,
    RemoveEnclosingMiddleware,
)
from bibtexparser.middlewares.names import (
    InvalidNameError,
    NameParts,
    parse_single_name_into_parts,
)
from bibtexparser.model import (
    DuplicateBlockKeyBlock,
    DuplicateFieldKeyBlock,
    Entry,
    Field,
    ImplicitComment,
    ParsingFailedBlock,
    String,
)

from .. import texcodec
from .bibrepair import Note, balanced_end, quoted_end, split_repaired

NAME_FIELDS = ("author", "editor", "translator")
# Values kept exactly as written: identifiers, links, numbers, dates.
VERBATIM = frozenset(
    {
        "url", "doi", "eprint", "eprinttype", "archiveprefix", "primaryclass", "eprintclass",
        "pages", "isbn", "issn", "year", "date", "month", "volume", "number",
        "mi-atlas-venue", "mi-atlas-objects", "mi-atlas-locate", "mi-atlas-steer",
        "mi-atlas-goals", "mi-atlas-added", "mi-atlas-code", "mi-atlas-openreview",
        "mi-atlas-acl",
    }
)  # fmt: skip
# Fields that describe one person's library, not the paper (JabRef, Zotero, Mendeley, BibDesk).
BOOKKEEPING = frozenset(
    {
        "file", "pdf", "owner", "timestamp", "groups", "ranking", "readstatus", "priority",
        "printed", "qualityassured", "relevance", "creationdate", "modificationdate",
        "annotation", "annote", "urldate", "keywords", "mendeley-groups", "mendeley-tags",
        "date-added", "date-modified", "local-url", "__markedentry", "_sort",
    }
)  # fmt: skip
BOOKKEEPING_PREFIXES = ("bdsk-", "comment-", "jabref-")
_MONTHS = {
    m[:3].lower(): m
    for m in "January February March April May June July August September October "
    "November December".split()
}
_MACRO = re.compile(r"[A-Za-z_][\w:.+/-]*")
_LINKISH = re.compile(r"https?://|\\url\b|www\.", re.IGNORECASE)
_AND = re.compile(r"([ \r\n\t]+[aA][nN][dD][ \r\n\t]+)")  # BibTeX's whitespace only
# A word BibTeX can only read as part of a first or last name: capitalised, letters only,
# with inner dots, apostrophes and hyphens (no von part, no braces, no TeX).
_CAPITALISED = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:[.'’-][^\W\d_]*)*\.?"
_WORDS = rf"{_CAPITALISED}(?:[ \t\r\n]+{_CAPITALISED})*"
# "First Last" or "Last, First", separated by what bibtexparser's name parser counts as
# whitespace (a `~` tie too, but that needs decoding, so it takes the general path).
_SIMPLE_NAME = re.compile(rf"[ \t\r\n]*({_WORDS})[ \t\r\n]*(?:,[ \t\r\n]*({_WORDS})[ \t\r\n]*)?")
_TOKEN = re.compile(r"[^\s#{}\"]+")
_TITLE_IN_RAW = re.compile(r"\btitle\s*=\s*[{\"](.+?)[}\"]\s*,?\s*$", re.IGNORECASE | re.MULTILINE)
_KEY_IN_RAW = re.compile(r"@\w*\s*[{(]\s*([^\s,{}()]+)")
_FIELD_KEY = re.compile(r"[^\s{}\",=#%]+")


@dataclass
class BibRecord:
    """One entry as decoded text, with the lines of its fields and what was noticed."""

    line: int
    key: str
    entry_type: str
    fields: dict[str, str] = field(default_factory=dict)  # lowercase key -> plain text
    names: dict[str, list[str]] = field(default_factory=dict)  # author/editor -> "First Last"
    raw: dict[str, str] = field(default_factory=dict)  # undecoded text, where links hide
    lines: dict[str, int] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    crossref_from: list[int] = field(default_factory=list)  # lines of entries citing it

    def note(self, field_name: str | None, message: str) -> None:
        self.notes.append(Note(self.lines.get(field_name or "", self.line), field_name, message))


@dataclass
class BibFailure:
    """A block that could not be read as an entry, and why."""

    line: int
    title: str
    reason: str


@dataclass
class BibFile:
    records: list[BibRecord] = field(default_factory=list)
    failures: list[BibFailure] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  # about the file, not one entry


def read_bib(path: Path) -> BibFile:
    """Read a .bib file (UTF-8, else Windows-1252 or Latin-1, reported) into records."""
    data = path.read_bytes()
    notes: list[Note] = []
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if encoding != "utf-8-sig":
        notes.append(Note(None, None, f"the file is not UTF-8; read it as {encoding}"))
    result = parse_bib(text)
    result.notes[:0] = notes
    return result


def split_names(names: str) -> list[str]:
    """What bibtexparser's (character by character) scanner gives, with backslashes hidden:
    the list split at each `and` between BibTeX whitespace that is outside braces. One
    regular expression finds the `and`s; braces decide which of them separate (a property
    test keeps this equal to the scanner)."""
    names = names.strip(" \r\n\t")
    if not names:
        return []
    pieces = _AND.split(names)  # name, separator, name, separator, ...
    if "{" not in names:
        return pieces[::2]  # no braces: every `and` separates (a stray `}` changes nothing)
    out = [pieces[0]]
    depth = _depth_after(pieces[0], 0)
    for separator, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        if depth:  # inside braces: the `and` belongs to a name ({Simon and Schuster})
            out[-1] += separator + piece
        else:
            out.append(piece)
        depth = _depth_after(piece, depth)
    return out


def _depth_after(text: str, depth: int) -> int:
    if "{" not in text and "}" not in text:
        return depth
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1  # a stray `}` outside braces is ignored, as the scanner does
    return depth


def _name_parts(name: str) -> NameParts:
    """bibtexparser's strict name splitting (InvalidNameError for what BibTeX rejects)."""
    return simple_name_parts(name) or parse_single_name_into_parts(name)


def simple_name_parts(name: str) -> NameParts | None:
    """The parts of the commonest names ("Andy Arditi", "Arditi, Andy J.": capitalised
    words, at most one comma) without bibtexparser's general parser, which costs ~15 us a name;
    None for any other name. A property test keeps the two equal."""
    m = _SIMPLE_NAME.fullmatch(name)
    if m is None:
        return None
    if m.group(2) is None:
        words = m.group(1).split()
        return NameParts(first=words[:-1], last=words[-1:])
    return NameParts(first=m.group(2).split(), last=m.group(1).split())


def _note(entry: Entry, fld, message: str) -> None:
    line = (fld.start_line + 1) if fld is not None and fld.start_line is not None else None
    key = (fld.key.lower() or None) if fld is not None else None
    entry.parser_metadata.setdefault("mi_atlas_notes", []).append(
        Note(line or entry.start_line + 1, key, message)
    )


def parse_bib(text: str) -> BibFile:
    """Read BibTeX text; `BibFile.records` and `.failures` hold every entry found, in order."""
    # bibtexparser logs each damaged block; here each becomes a failure or a note instead.
    logger = logging.getLogger("bibtexparser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return _parse(text)
    finally:
        logger.setLevel(level)


def _parse(text: str) -> BibFile:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    split, notes = split_repaired(text)
    result = BibFile(notes=[n for n in notes if n.line is None])
    entry_notes = [n for n in notes if n.line is not None]
    strings = _strings(split.blocks, result)
    reader = _Reader(strings)
    first_lines: dict[str, int] = {}  # citation key -> line of its first entry
    previous = None
    for block in split.blocks:
        if isinstance(block, ImplicitComment) and type(previous) is ParsingFailedBlock:
            previous = block
            continue  # the rest of an unreadable entry, already reported with it
        previous = block
        entry = _entry_of(block, result, strings, first_lines)
        if entry is not None:
            result.records.append(reader.record(entry))
    _attach(entry_notes, result)
    _resolve_crossrefs(result.records)
    result.records.sort(key=lambda r: r.line)
    return result


def _strings(blocks: list, result: BibFile) -> dict[str, str]:
    """The @string macros by lowercase name (BibTeX ignores their case); a macro defined
    again keeps its later value, as in bibtexparser, and the redefinition is reported."""
    strings: dict[str, str] = {}
    lines: dict[str, int] = {}
    for block in blocks:
        if isinstance(block, DuplicateBlockKeyBlock):
            block = block.ignore_error_block
        if not isinstance(block, String):
            continue
        name, line = block.key.lower(), block.start_line + 1
        if name in strings:
            result.notes.append(
                Note(
                    line,
                    None,
                    f"@string '{block.key}' is defined again (first at line {lines[name]}); "
                    "used this later definition",
                )
            )
        strings[name] = block.value
        lines.setdefault(name, line)
    return strings


def _entry_of(
    block, result: BibFile, strings: dict[str, str], first_lines: dict[str, int]
) -> Entry | None:
    """The entry to read from a split block (duplicates included), reporting the rest."""
    if isinstance(block, DuplicateBlockKeyBlock):
        block = block.ignore_error_block  # reported below, with the line of the first use
    if isinstance(block, DuplicateFieldKeyBlock):
        entry = _first_fields(block)
    elif isinstance(block, Entry):
        entry = block
    elif isinstance(block, ParsingFailedBlock):
        _failure(block, result)
        return None
    elif isinstance(block, ImplicitComment):
        _stray_text(block, result)
        return None
    else:
        return None  # @string (read before), @preamble, @comment
    first = first_lines.setdefault(entry.key, entry.start_line + 1)
    if first != entry.start_line + 1:
        _note(entry, None, f"the citation key '{entry.key}' is also used at line {first}")
    _clean_keys(entry)
    _concatenations(entry, strings)
    return entry


def _first_fields(block: DuplicateFieldKeyBlock) -> Entry:
    entry = block.ignore_error_block
    seen: set[str] = set()
    fields = []
    for fld in entry.fields:
        if fld.key in seen:
            _note(entry, fld, "the field appears twice in the entry; kept the first")
            continue
        seen.add(fld.key)
        fields.append(fld)
    entry.fields = fields
    return entry


def _clean_keys(entry: Entry) -> None:
    """Field names with `%` comment lines in front, commented-out fields, and names that
    differ only in case (`Title` and `title`, the first wins, as in BibTeX); names lowercased."""
    seen: set[str] = set()
    fields = []
    for fld in entry.fields:
        key = fld.key
        if "%" in key:
            key = "\n".join(ln for ln in key.split("\n") if not ln.lstrip().startswith("%")).strip()
            if not key:
                fld.key = ""
                _note(entry, fld, "a commented-out field (a line starting with %) was ignored")
                continue
            fld.key = key
        if not (key.isalnum() or _FIELD_KEY.fullmatch(key)):  # (letters pass at C speed)
            _note(entry, fld, f"'{key[:40]}' is not a field name; ignored it and its value")
            continue
        lower = key.lower()
        if lower in seen:
            _note(entry, fld, f"the field '{key}' appears twice (ignoring case); kept the first")
            continue
        seen.add(lower)
        if lower != key:
            fld.key = lower  # what bibtexparser's NormalizeFieldKeys would do, one pass less
        fields.append(fld)
    entry.fields = fields


def _concatenations(entry: Entry, strings: dict[str, str]) -> None:
    """Resolve `#` concatenations (bibtexparser resolves only whole-value macros) and
    report macros that no @string defines."""
    for fld in entry.fields:
        value = fld.value
        if not isinstance(value, str) or not value or value.isdigit():
            continue
        if "#" in value:
            resolved = _concat(value, strings)
            if resolved is not None:
                fld.value = resolved
                continue
        if value[0] in '{"':
            continue
        if "#" in value:
            _note(
                entry, fld, f"the concatenation '{value[:40]}' could not be resolved; read as text"
            )
        elif value.lower() in strings or (
            fld.key.lower() == "month" and value.lower()[:3] in _MONTHS
        ):
            continue
        else:
            _note(entry, fld, f"'{value}' is not defined by any @string; read as the text itself")
        fld.value = "{" + value + "}"


def _concat(value: str, strings: dict[str, str], depth: int = 0) -> str | None:
    """`"A " # jmlr # {, 2020}` -> `{A Journal of ML, 2020}`; None if not a concatenation."""
    parts: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if value[i] in '{"':
            end = (balanced_end if value[i] == "{" else quoted_end)(value, i)
            if end is None:
                return None
            parts.append(value[i + 1 : end - 1])
        else:
            m = _TOKEN.match(value, i)
            if m is None:
                return None
            end, token = m.end(), m.group().lower()
            if token.isdigit():
                parts.append(token)
            elif token in strings and depth < 5:
                macro = strings[token].strip()
                inner = _concat(macro + ' # ""', strings, depth + 1)
                parts.append(inner[1:-1] if inner is not None else macro)
            elif token[:3] in _MONTHS and _MACRO.fullmatch(token):
                parts.append(_MONTHS[token[:3]])
            else:
                return None
        i = end
        while i < n and value[i].isspace():
            i += 1
        if i < n:
            if value[i] != "#":
                return None
            i += 1
    return "{" + "".join(parts) + "}" if len(parts) > 1 else None


def _failure(block: ParsingFailedBlock, result: BibFile) -> None:
    raw = block.raw or ""
    line = (block.start_line or 0) + 1
    head = raw.lstrip()[:12].lower()
    reason = _reason(block, line)
    if head.startswith(("@string", "@preamble", "@comment")):
        result.notes.append(Note(line, None, f"{head.split('{')[0]} block not read: {reason}"))
        return
    title = ""
    if m := _TITLE_IN_RAW.search(raw):
        title = texcodec.decode(m.group(1))
    elif m := _KEY_IN_RAW.match(raw.lstrip()):
        title = m.group(1)
    result.failures.append(BibFailure(line, title, reason))


def _reason(block: ParsingFailedBlock, line: int) -> str:
    """One sentence for bibtexparser's abort reasons."""
    reason = getattr(block.error, "abort_reason", None) or str(block.error)
    end = line + (block.raw or "").rstrip().count("\n")
    if reason.startswith("Expected comma after entry key"):
        return "the citation key is not followed by a comma"
    if reason.startswith("Unexpected block start"):
        following = line + (block.raw or "").count("\n") + 1
        return (
            f"the entry is not closed: a new entry starts at line {following} while a value is "
            "still open (unbalanced braces or quotes)"
        )
    if reason.startswith("Unexpectedly reached end of file"):
        return "the entry is not closed before the end of the file (unbalanced braces?)"
    if reason.startswith("Expected a `=`"):
        return f"a field without '=' near line {end}"
    if reason.startswith("Expected either a `,`"):
        return f"a field value is not followed by ',' or '}}' near line {end}"
    return reason.strip().rstrip(".")


def _stray_text(block: ImplicitComment, result: BibFile) -> None:
    """Text between entries is ignored by BibTeX; say so unless it is only `%` comments."""
    text = "\n".join(
        ln for ln in block.comment.splitlines() if ln.strip() and not ln.lstrip().startswith("%")
    ).strip()
    if not text:
        return
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    what = "a stray '}'" if set(text) <= set("}\n\t ") else f"text outside any entry ('{shown}')"
    result.notes.append(Note(block.start_line + 1, None, f"{what} was ignored"))


class _Reader:
    """What bibtexparser's middlewares for enclosing braces and quotes, month macros, author
    lists, name parts and LaTeX decoding give, as one pass over each entry's fields that builds
    its record (the library's per-stage passes cost more than the splitting itself; a test
    keeps the two equal). Name lists are split by `split_names` and each name is read once per
    file (reference lists repeat authors), leniently where strict BibTeX rejects it."""

    def __init__(self, strings: dict[str, str]) -> None:
        self.strings = strings  # @string macros, by lowercase name
        # raw name -> (how it reads, None for "others"; why it was read leniently; errors)
        self.people: dict[str, tuple[str | None, str | None, list[str]]] = {}

    def record(self, entry: Entry) -> BibRecord:
        metadata = entry.parser_metadata
        record = BibRecord(entry.start_line + 1, entry.key, entry.entry_type.lower())
        record.notes.extend(metadata.get("mi_atlas_notes", ()))
        fields, lines, raw = record.fields, record.lines, record.raw
        notes: list[Note] = []  # read after the notes of the split, as the stages wrote them
        errors: list[str] = []
        dropped: list[str] = []
        for fld in entry.fields:
            name = fld.key
            line = (fld.start_line or entry.start_line) + 1
            lines[name] = line
            value = fld.value
            if self.strings and not (
                value[:1] == value[-1:] == '"' or (value[:1] == "{" and value[-1:] == "}")
            ):
                value = self.strings.get(value.lower(), value)  # a macro's whole value
            value = _unenclosed(value)
            if name in VERBATIM:
                if name == "month":
                    value = str(_MONTH_INT.resolve_month_field_val(Field(name, value))[0])
                if name in ("url", "doi", "eprint"):
                    value = texcodec.unescape_verbatim(value)
                else:
                    value = texcodec.collapse(value)
            elif name in NAME_FIELDS:
                record.names[name] = self.names(value, name, line, notes, errors)
                continue
            else:
                if ("http" in value or "url" in value or "www." in value) and _LINKISH.search(
                    value
                ):
                    raw[name] = value  # links in `note`, or in Zotero's `annotation`
                if name in BOOKKEEPING or name.startswith(BOOKKEEPING_PREFIXES):
                    dropped.append(name)  # left out of the entry: not worth decoding
                    continue
                value = _decoded(value, errors)
            if value:
                fields[name] = value
        record.notes.extend(notes)
        if errors:  # pylatexenc is tolerant; this records the rare string it gave up on
            record.note(None, f"LaTeX could not be decoded everywhere ({errors[0]})")
        if dropped:
            record.note(None, f"left out personal bookkeeping fields: {', '.join(dropped)}")
        return record

    def names(self, value: str, field_name: str, line: int, notes, errors) -> list[str]:
        """`A and B and others` -> ["A", "B"], decoded and single-spaced, first name first."""
        out = []
        people = self.people
        for name in split_names(value):
            person = people.get(name)
            if person is None:
                person = people[name] = _person(name)
            shown, lenient, failed = person
            if lenient:
                notes.append(Note(line, field_name, lenient))
            if failed:
                errors.extend(failed)
            if shown:
                out.append(shown)
        return out


_MONTH_INT = MonthIntMiddleware(True)
_strip_enclosing = RemoveEnclosingMiddleware._strip_enclosing
# Text whose braces balance, nested at most three deep.
_BALANCED = re.compile(r"[^{}]*(?:\{[^{}]*(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}[^{}]*)*\}[^{}]*)*")


def _unenclosed(value: str) -> str:
    """The value without the braces or quotes that enclose all of it, as bibtexparser strips
    them. A braced value whose inner braces are unescaped and nest at most three deep is
    checked by one regular expression instead of bibtexparser's brace-by-brace loop (a
    property test keeps the two equal)."""
    value = value.strip()
    if value[:1] == "{" and value[-1:] == "}" and len(value) > 1:
        inner = value[1:-1]
        if inner[-1:] != "\\" and (
            ("{" not in inner and "}" not in inner)
            or ("\\{" not in inner and "\\}" not in inner and _BALANCED.fullmatch(inner))
        ):
            return inner
    return _strip_enclosing(value)[0]


def _decoded(value: str, errors: list[str]) -> str:
    try:
        return texcodec.decode(value)
    except Exception as exc:  # pylatexenc's errors have no common base class
        errors.append(str(exc))
        return texcodec.collapse(value)


def _person(name: str) -> tuple[str | None, str | None, list[str]]:
    """How one name of an author list reads: bibtexparser's parts (strict; else its lenient
    mode, with the reason), decoded, first name first; None for "others" (BibTeX's et al.).
    Capitalised words without TeX read as themselves, first name first (a property test
    keeps this equal to the general path)."""
    if not texcodec.needs_decoding(name) and (m := _SIMPLE_NAME.fullmatch(name)):
        first_last = m.group(1) if m.group(2) is None else f"{m.group(2)} {m.group(1)}"
        return " ".join(first_last.split()), None, []
    return _parsed_person(name)


def _parsed_person(name: str) -> tuple[str | None, str | None, list[str]]:
    lenient = None
    try:
        parts = _name_parts(name)
    except InvalidNameError as exc:
        parts = parse_single_name_into_parts(name, strict=False)
        lenient = f"{exc.reason.lower()} in the name '{name}'; read leniently"
    if parts.last == ["others"] and not (parts.first or parts.von or parts.jr):
        return None, lenient, []
    errors: list[str] = []
    groups = (parts.first, parts.von, parts.last, parts.jr)
    if any(texcodec.needs_decoding(token) for group in groups for token in group):
        parts = NameParts(*([_decoded(token, errors) for token in group] for group in groups))
    return texcodec.collapse(parts.merge_first_name_first), lenient, errors


def _attach(notes: list[Note], result: BibFile) -> None:
    """Give each repair note to the record whose lines contain it (else keep it for the file)."""
    if not notes:
        return
    records = sorted(result.records, key=lambda r: r.line)
    starts = [r.line for r in records]
    for note in notes:
        index = bisect_right(starts, note.line) - 1
        (records[index].notes if index >= 0 else result.notes).append(note)


def _resolve_crossrefs(records: list[BibRecord]) -> None:
    """Copy what a `crossref`ed entry (usually @proceedings) gives its citing entries, as
    BibTeX does; the proceedings' title becomes the citing entry's booktitle."""
    by_key = {r.key.lower(): r for r in records}
    for record in records:
        target_key = record.fields.pop("crossref", None)
        if target_key is None:
            continue
        target = by_key.get(target_key.lower())
        if target is None or target is record:
            record.note("crossref", f"crossref '{target_key}' names no entry of this file")
            continue
        target.crossref_from.append(record.line)
        for name, value in target.fields.items():
            if name == "title":
                record.fields.setdefault("booktitle", value)
            elif name not in ("crossref", "ids"):
                record.fields.setdefault(name, value)
        for name, value in target.names.items():
            if name != "author":
                record.names.setdefault(name, value)
