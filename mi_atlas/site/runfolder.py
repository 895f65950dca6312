"""The folder of run documents the site renders: `mi-atlas run --all --out DIR` writes it.

The site computes nothing. `DIR/index.json` (`runs.RunIndex`) lists every registered method,
recipe and check with the file of its run document or the reason there is none; each
`DIR/<name>.json` is a `runs.Run`. Both are validated with pydantic when a build starts, and a
document that does not validate stops the build with its file and field named. A folder that
does not exist yet is not an error: every page then says which command fills it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..runs import INDEX_FILE, IndexEntry, Run, RunIndex

RUN_ALL = "mi-atlas run --all"


class RunFolderError(Exception):
    """A file of the runs folder that does not validate; the message names file and field."""


@dataclass
class RunFolder:
    """The index and the run documents of one folder, read once per build."""

    path: Path
    shown_path: str  # the folder as the reader's command names it (relative to the repository)
    index: RunIndex | None = None  # None: the folder has no index.json yet
    runs: dict[str, Run] = field(default_factory=dict)  # name -> document

    @classmethod
    def read(cls, path: Path, shown_path: str) -> RunFolder:
        folder = cls(path, shown_path)
        index_file = path / INDEX_FILE
        if not index_file.is_file():
            return folder
        folder.index = _validate(RunIndex, index_file)
        for entry in folder.index.runs:
            if entry.file is None:
                continue
            doc = path / entry.file
            if not doc.is_file():
                raise RunFolderError(
                    f"{index_file}: runs[{entry.name!r}].file names {entry.file!r}, which is not "
                    f"in {path}; rerun `{folder.run_all}`"
                )
            folder.runs[entry.name] = _validate(Run, doc)
        return folder

    @property
    def run_all(self) -> str:
        """The command that fills this folder."""
        default = self.shown_path == ".mi-atlas-cache/runs"
        return RUN_ALL + ("" if default else f" --out {self.shown_path}")

    @property
    def entries(self) -> list[IndexEntry]:
        return list(self.index.runs) if self.index else []

    def entry(self, name: str) -> IndexEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def of_method(self, method: str) -> list[IndexEntry]:
        """The runnables of a taxonomy node: the one named by its id first, then its variants."""
        found = [e for e in self.entries if e.method == method]
        return sorted(found, key=lambda e: (e.name != method, e.name))

    @property
    def models(self) -> list[str]:
        """Every model a document was made on, in first-seen order."""
        return list(dict.fromkeys(run.model.name for run in self.runs.values()))


def _validate(model: type[RunIndex] | type[Run], path: Path):
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(the document)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RunFolderError(
            f"{path}: field {where}: {first['msg']}{more}; rerun `{RUN_ALL}` to rewrite it"
        ) from None
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc.strerror})") from None
