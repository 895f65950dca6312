"""Repairing the few BibTeX syntax slips that are unambiguous, before bibtexparser reads a file.

bibtexparser v2 recovers from most damage by failing one block, but a missing comma between
two fields is worse: it silently reads `title = {A}` and the next line `year = {2023}` as one
title. This module splits the text with bibtexparser's `Splitter`, finds the slips whose fix is
certain, edits the text (inserting or deleting single characters, never newlines, so line
numbers stay true) and splits again. Every edit is reported as a `Note`. Damage whose fix is a
guess is left for the reader to report as a failed block.

Also hidden: entries commented out with a leading `%`. Repaired: a missing comma after the citation key or after a field value, two commas in a row,
an entry not closed before the next `@entry` line, and a stray `}` that closed an entry early.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

from bibtexparser.library import Library
from bibtexparser.model import Entry, ImplicitComment, ParsingFailedBlock
from bibtexparser.splitter import Splitter

MAX_PASSES = 8
_KEY_THEN_FIELD = re.compile(r"@\w*[ \t]*[{(]\s*([^\s,{}()=\"]+)(?=\s+[A-Za-z][\w:.+-]*\s*=)")
_NEXT_FIELD = re.compile(r"\s*[A-Za-z][\w:.+-]*\s*=")
_FIELDS_AFTER_CLOSE = re.compile(r"[ \t]*\n?\s*(?:,|[A-Za-z][\w:.+-]*\s*=)")
# From a `%` to the entry it comments out; the `%` must open its line (checked in code:
# starting the pattern with the literal `%` lets the engine skip to each `%` at C speed).
_COMMENTED_ENTRY = re.compile(r"%[^\n@]*@\w+[ \t]*[{(]")
_UNESCAPED_BRACE = re.compile(r"(?<!\\)[{}\"]")


@dataclass(frozen=True)
class Note:
    """Something the reader noticed at a line of the source (1-based)."""

    line: int | None
    field: str | None
    message: str


@dataclass(frozen=True)
class _Edit:
    offset: int
    delete: int
    insert: str
    note: Note


def split_repaired(text: str) -> tuple[Library, list[Note]]:
    """Split `text` into blocks with bibtexparser, repairing certain slips first."""
    text, notes = _commented_out(text)
    for _ in range(MAX_PASSES):
        library = Splitter(text).split()
        edits = sorted(_edits(library, text), key=lambda e: e.offset, reverse=True)
        if not edits:
            break
        for edit in edits:
            text = text[: edit.offset] + edit.insert + text[edit.offset + edit.delete :]
            notes.append(edit.note)
    notes.sort(key=lambda n: n.line or 0)
    return library, notes


def _commented_out(text: str) -> tuple[str, list[Note]]:
    """`%@misc{...}`: an entry commented out by hand. bibtexparser (like classic BibTeX)
    would read it; the person who wrote the `%` meant it gone, so it is hidden, and reported."""
    notes = []
    pieces = []
    done = 0
    for m in _COMMENTED_ENTRY.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if text[line_start : m.start()].strip(" \t"):
            continue  # a `%` after other text on its line: not a commented-out line
        at = text.index("@", m.start())
        pieces += [text[done:at], "%"]  # the `@` becomes a `%`: no entry starts there
        done = at + 1
        line = text.count("\n", 0, m.start()) + 1
        notes.append(Note(line, None, "an entry commented out with % was ignored"))
    return "".join(pieces) + text[done:], notes


def _line_starts(text: str) -> list[int]:
    starts = [0, *accumulate(len(line) + 1 for line in text.split("\n"))]
    starts.pop()  # (the start of a line after the end of the text)
    return starts


def _edits(library: Library, text: str) -> Iterator[_Edit]:
    starts: list[int] | None = None
    blocks = library.blocks
    for index, block in enumerate(blocks):
        kind = type(block)
        if kind is Entry:
            if _suspicious(block):
                starts = starts or _line_starts(text)
                yield from _field_commas(block, text, starts)
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if isinstance(following, ImplicitComment):
                starts = starts or _line_starts(text)
                yield from _stray_close(block, text, starts)
        elif kind is ParsingFailedBlock and block.raw:
            starts = starts or _line_starts(text)
            yield from _failed(block, text, starts)


def _offset(block, text: str, starts: list[int]) -> int:
    """Where a block's raw text begins in `text` (blocks know their line, not their offset)."""
    line_start = starts[min(block.start_line, len(starts) - 1)]
    found = text.find(block.raw, line_start)
    return found if found >= 0 else text.find(block.raw)


def _suspicious(entry: Entry) -> bool:
    # Only a value holding `=` can hide a second field. Each field has its own `=`, so an
    # entry with no more `=` than fields has none in a value (one count at C speed).
    if entry.raw is not None and entry.raw.count("=") <= len(entry.fields):
        return False
    return any("=" in field.value for field in entry.fields)


def closed_end(value: str) -> int | None:
    """Index just past the value's leading `{...}`/`"..."`/word tokens joined by `#`."""
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == "{":
            i = balanced_end(value, i)
        elif i < n and value[i] == '"':
            i = quoted_end(value, i)
        else:
            m = re.match(r"[^\s#,{}\"=]+", value[i:])
            if not m:
                return None
            i += m.end()
        if i is None:
            return None
        m = re.match(r"\s*#\s*", value[i:])
        if not m:
            return i
        i += m.end()


def balanced_end(value: str, start: int) -> int | None:
    depth = 0
    for m in _UNESCAPED_BRACE.finditer(value, start):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def quoted_end(value: str, start: int) -> int | None:
    depth = 0
    for m in _UNESCAPED_BRACE.finditer(value, start + 1):
        char = m.group()
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0:
            return m.end()
    return None


def _field_commas(entry: Entry, text: str, starts: list[int]) -> Iterator[_Edit]:
    for field in entry.fields:
        if "=" not in field.value:
            continue
        end = closed_end(field.value)
        if end is None or not _NEXT_FIELD.match(field.value, end):
            continue
        line_start = starts[min(field.start_line, len(starts) - 1)]
        where = text.find(field.value, line_start)
        if where < 0:
            continue
        yield _Edit(
            where + end,
            0,
            ",",
            Note(
                field.start_line + 1,
                field.key.lower(),
                "missing comma after this field's value; read the next line as a field of its own",
            ),
        )


def _stray_close(entry: Entry, text: str, starts: list[int]) -> Iterator[_Edit]:
    end = _offset(entry, text, starts) + len(entry.raw)
    if entry.raw.endswith("}") and _FIELDS_AFTER_CLOSE.match(text, end):
        yield _Edit(
            end - 1,
            1,
            "",
            Note(
                entry.start_line + 1 + entry.raw.count("\n"),
                None,
                "a stray '}' closed the entry early; ignored it and read the fields after it",
            ),
        )


def _failed(block: ParsingFailedBlock, text: str, starts: list[int]) -> Iterator[_Edit]:
    reason = getattr(block.error, "abort_reason", "")
    offset = _offset(block, text, starts)
    line = block.start_line + 1
    if reason.startswith("Expected comma after entry key"):
        if m := _KEY_THEN_FIELD.match(block.raw):
            yield _Edit(
                offset + m.end(1),
                0,
                ",",
                Note(
                    line,
                    None,
                    f"missing comma after the citation key '{m.group(1)}'; read as if it were there",
                ),
            )
    elif reason.startswith("Unexpected block start") and "`,` or `}`" in reason:
        yield _Edit(
            offset + len(block.raw),
            0,
            "}",
            Note(
                line,
                None,
                "the entry is not closed with '}' before the next entry; read as if it were",
            ),
        )
    elif reason.startswith("Expected a `=` after entry key, but found `,`"):
        comma = offset + len(block.raw)
        if text[comma : comma + 1] == "," and text[:comma].rstrip().endswith(","):
            yield _Edit(
                comma,
                1,
                "",
                Note(line + block.raw.count("\n"), None, "two commas in a row; ignored the second"),
            )
