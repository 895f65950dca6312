"""The import report shared by every importer, and the one place that writes its entries.

Contract (DESIGN.md): every item found in the source lands in exactly one of `created`,
`merged` or `skipped`, each naming its source line, so
`items == len(created) + len(merged) + len(skipped)`. Problems are reported beside them, and
so is every value an importer inferred rather than read (`inferred`, for a curator to check).
`exit_code` is the one exit rule of both importer commands.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..entries import entry_text
from ..schema import Paper
from ..yamlio import write_atomic


@dataclass
class Item:
    """One item of the source and what became of it."""

    line: int
    title: str
    id: str | None = None  # the entry it created or merged into
    reason: str = ""  # why it was merged or skipped

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass
class Inferred:
    """A value the importer read from what the item implies rather than states (a year from
    an arXiv id, a venue from a link's host), so a curator can check it."""

    line: int
    field: str
    value: str
    evidence: str  # what it was read from
    id: str | None = None  # the entry it went into

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def render(self, source: str) -> str:
        return f"{source}:{self.line}: inferred {self.field} '{self.value}' {self.evidence}"


@dataclass
class SourceProblem:
    """A problem in the source, at a line: a label mapped through an alias, a bad link..."""

    line: int | None
    field: str | None
    message: str
    suggestion: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass
class ImportReport:
    source: str
    created: list[Item] = field(default_factory=list)
    merged: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    inferred: list[Inferred] = field(default_factory=list)
    # Items that could not be read at all (a BibTeX entry the parser gave up on): exit 1.
    unreadable: int = 0
    # Entries to write (new files) and to rewrite (existing files that a merge filled in).
    new_entries: dict[str, Paper] = field(default_factory=dict)
    updated_entries: dict[str, Paper] = field(default_factory=dict)

    @property
    def items(self) -> int:
        return len(self.created) + len(self.merged) + len(self.skipped)

    def problem(
        self, line: int | None, field_name: str | None, message: str, suggestion: str | None = None
    ) -> None:
        self.problems.append(SourceProblem(line, field_name, message, suggestion))

    def infer(self, line: int, field_name: str, value: object, evidence: str) -> None:
        self.inferred.append(Inferred(line, field_name, str(value), evidence))

    @property
    def exit_code(self) -> int:
        """The one exit rule of both importers: 0 when every item found is accounted for
        (created, merged, or skipped for a stated reason), 1 when some item could not be read
        at all or the source holds no item."""
        return 1 if self.unreadable or not self.items else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "items": self.items,
            "created": [i.to_json() for i in self.created],
            "merged": [i.to_json() for i in self.merged],
            "skipped": [i.to_json() for i in self.skipped],
            "problems": [p.to_json() for p in self.problems],
            "inferred": [i.to_json() for i in self.inferred],
            "unreadable": self.unreadable,
        }

    def write(self, papers_dir: Path, *, overwrite: bool = False) -> list[Path]:
        """Write new and updated entries; on any failure, remove what this call created.

        New files are created without replacing anything (unless `overwrite`); updated files
        are replaced atomically. Texts are rendered first, so a bad entry fails before any
        file is touched.
        """
        texts_new = {pid: entry_text(p) for pid, p in self.new_entries.items()}
        texts_updated = {pid: entry_text(p) for pid, p in self.updated_entries.items()}
        written: list[Path] = []
        try:
            for pid, text in texts_new.items():
                path = papers_dir / f"{pid}.yaml"
                write_atomic(path, text, overwrite=overwrite)
                written.append(path)
        except BaseException:
            for path in written:
                os.unlink(path)
            raise
        for pid, text in texts_updated.items():
            path = papers_dir / f"{pid}.yaml"
            write_atomic(path, text, overwrite=True)
            written.append(path)
        return written
