"""A problem found in user input: one sentence naming the file, line and field.

An error makes the input invalid; a warning (an unknown venue, an entry still needing its link)
is listed but accepted."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    field: str | None
    message: str
    line: int | None = None
    suggestion: str | None = None
    severity: str = "error"  # "warning": reported, but the input is still accepted

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.severity != "error":
            where += f": {self.severity}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def to_json(self) -> dict:
        return asdict(self)
