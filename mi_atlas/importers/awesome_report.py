"""The awesome-list import report: the shared `ImportReport`, plus what the list taught us.

Two additions to the shared report, both additive in the JSON: each problem carries a `kind`
(so a reader can count them) and the `lines` it was seen on, and `ignored` lists every block of
the file that carries a link but is not an entry (a table of contents, badges, a news line, a
citation block), so that even what is not an item is accounted for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .report import ImportReport, SourceProblem

# kind -> what it means; the command's help and docs/importing.md list these.
PROBLEM_KINDS = {
    "alias": "a label or venue written in a spelling the taxonomy knows as an alias",
    "placeholder": "a '-' (or empty) cell: the entry gets an empty tag list for that axis",
    "unknown-label": "a label that is no taxonomy id, name or alias (closest id suggested)",
    "unknown-venue": "a venue not in taxonomy/venues.yaml (closest venue suggested)",
    "no-venue": "no venue named or implied: the entry says needs: [venue]",
    "venue-from-link": "the listed venue disagrees with the proceedings the link points to",
    "year": "a year that is missing, malformed, or taken from the arXiv id",
    "duplicate": "the same paper listed twice: merged into one entry",
    "shared-link": "one link used for two different papers: kept only for the first",
    "title-conflict": "one title listed with two different identifiers: kept apart",
    "existing": "the paper is already an entry, and the list disagrees with it",
    "link": "a link that is not a web address, or no link to the paper itself",
    "table": "a table whose shape was repaired or whose columns could not all be read",
}


@dataclass
class KindProblem(SourceProblem):
    """A problem with a kind and every line it was seen on (aggregated problems have many)."""

    kind: str = "other"
    lines: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ignored:
    """A block that holds a link but is not a paper entry, and why."""

    line: int
    kind: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AwesomeReport(ImportReport):
    ignored: list[Ignored] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        document = super().to_json()
        document["ignored"] = [item.to_json() for item in self.ignored]
        return document

    def problem_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for problem in self.problems:
            kind = getattr(problem, "kind", "other")
            counts[kind] = counts.get(kind, 0) + 1
        return counts


class ProblemLog:
    """Collects problems while a list is read. Problems with a `key` are aggregated: the
    same spelling on 67 rows is one problem naming all 67 lines, not 67 problems."""

    def __init__(self) -> None:
        self._problems: list[KindProblem] = []
        self._grouped: dict[tuple, tuple[KindProblem, Any]] = {}
        self._values: dict[tuple, list[str]] = {}

    def add(
        self,
        kind: str,
        line: int | None,
        field_name: str | None,
        message: str,
        suggestion: str | None = None,
    ) -> None:
        lines = [line] if line else []
        self._problems.append(KindProblem(line, field_name, message, suggestion, kind, lines))

    def add_grouped(
        self,
        key: tuple,
        kind: str,
        line: int,
        field_name: str | None,
        message,
        suggestion: str | None = None,
    ) -> None:
        """`message(count, first_line)` renders the text once every line is known."""
        if key in self._grouped:
            self._grouped[key][0].lines.append(line)
            return
        problem = KindProblem(line, field_name, "", suggestion, kind, [line])
        self._grouped[key] = (problem, message)
        self._problems.append(problem)

    def group_values(self, key: tuple) -> list[str]:
        """A list kept with a grouped problem, for messages that name every value seen."""
        return self._values.setdefault(key, [])

    def finish(self) -> list[KindProblem]:
        for problem, message in self._grouped.values():
            problem.message = message(len(problem.lines))
        return sorted(self._problems, key=lambda p: p.line or 0)
