"""docs/tutorial.md runs: its python blocks execute in order in one namespace, and each
`output` block under a python block is exactly what that block printed (pydantic's
tests/test_docs.py habit), so the tutorial cannot drift from the code."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.impls

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str, str | None]]:
    """(heading it sits under, python source, expected output or None), in page order."""
    text = TUTORIAL.read_text(encoding="utf-8")
    found = [(m.start(), m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    out = []
    for k, (start, lang, body) in enumerate(found):
        if lang != "python":
            continue
        heading = re.findall(r"^#+ (.+)$", text[:start], re.M)[-1]
        expected = found[k + 1][2] if k + 1 < len(found) and found[k + 1][1] == "output" else None
        out.append((heading, body, expected))
    return out


def test_the_tutorial_has_code_and_outputs():
    found = blocks()
    assert len(found) >= 4
    assert all(expected is not None for _, _, expected in found)


def test_every_python_block_runs_and_prints_what_the_page_shows():
    namespace: dict = {"__name__": "tutorial"}
    for k, (heading, source, expected) in enumerate(blocks()):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, f"{TUTORIAL.name} block {k + 1} ({heading})", "exec"), namespace)
        if expected is not None:
            assert printed.getvalue().strip() == expected.strip(), (
                f"block {k + 1} under {heading!r}"
            )
    # the walk-through ends with the improvement it promises, measured, not asserted in prose
    assert namespace["before"] > 0.95 and namespace["after"] < 0.05
    assert namespace["control"] > 0.9
