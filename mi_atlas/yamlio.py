"""Safe YAML reading with source lines, and atomic YAML writing.

Entries are read with the C-accelerated *safe* loader when available: no Python object tags,
ever. Line numbers are only needed when something is wrong, so the fast path loads plainly and
`key_lines` composes the document a second time on demand.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class YamlError(ValueError):
    """A file is not valid YAML; `line` is 1-based where the parser knows it."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def load_text(text: str) -> Any:
    """Parse one YAML document with the safe loader; raise `YamlError` with its line."""
    try:
        return yaml.load(text, Loader=SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        if "could not determine a constructor" in problem:
            tag = problem.split("tag ")[-1].replace("tag:yaml.org,2002:", "!!")
            problem = f"the tag {tag} is not allowed; entries hold plain text, numbers and lists"
        raise YamlError(f"is not valid YAML ({problem})", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"is not valid YAML ({exc})") from None


def read_text(path: Path) -> str:
    """Read a file as UTF-8, turning binary garbage into a `YamlError`."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"is not UTF-8 text (byte {exc.start})") from None


def key_lines(text: str) -> dict[str, int]:
    """Map each top-level key of a mapping document to its 1-based line (empty if none)."""
    try:
        node = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines: dict[str, int] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode):
            lines.setdefault(str(key.value), key.start_mark.line + 1)
            if isinstance(value, yaml.SequenceNode):
                for index, item in enumerate(value.value):
                    lines.setdefault(f"{key.value}.{index}", item.start_mark.line + 1)
    return lines


def dump(data: Any) -> str:
    """Dump plain data as block YAML, keeping key order and unicode as is."""
    return yaml.dump(
        data,
        Dumper=SafeDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )


def write_atomic(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write `text` to `path` through a temporary file in the same folder, then rename.

    A crash leaves either the old file or the new one, never half of one. Without
    `overwrite`, an existing file raises `FileExistsError` and nothing is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if overwrite:
            os.replace(tmp, path)
        else:
            # os.link fails if the target exists, so the check and the write are one step.
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
