"""The examples of docs/steer.md and docs/recipes.md run as written and show what they claim."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def run_examples(page: str) -> dict[str, float]:
    """Run every python block of a page in order, in one namespace; {printed label: number}."""
    blocks = re.findall(
        r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S
    )
    assert blocks, f"docs/{page} has no python example"
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(DOCS / page), "exec"), namespace)  # noqa: S102 - our own docs
    return {k: float(v) for k, v in re.findall(r"^(.*?) ([-0-9.]+)$", out.getvalue(), flags=re.M)}


def test_the_steer_page_examples_run_and_steer_what_is_planted():
    printed = run_examples("steer.md")
    assert printed["dense"] == 1.0 and printed["restored"] == 1.0
    assert max(printed["zero"], printed["mean"], printed["resample"]) < 0.2
    assert printed["edited answer is oslo"] == 1.0
    assert printed["weights allowed to change"] == 16 * (2 * 32 + 1)  # facts: d_model 32
    assert printed["refusal on triggered, ablated"] == 0.0
    assert printed["refusal on benign, added"] == 1.0
    assert printed["lowest correlation"] > 0.9
    assert printed["topic 0 mass with its feature clamped to 0"] < 0.2


def test_the_recipes_page_example_runs():
    printed = run_examples("recipes.md")
    # persona-role: the data-derived control (the top principal component) ties, as the page says
    assert (printed["before"], printed["after"], printed["control"]) == (0.0, 1.0, 1.0)
