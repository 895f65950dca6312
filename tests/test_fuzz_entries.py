"""Fuzzing: whatever bytes are in a papers folder, `check` and `add` report, never crash or write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mi_atlas.cli import cli

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.dates(),
    st.sampled_from(
        [
            "residual-stream",
            "NeurIPS",
            "https://x.org",
            "2406.11717",
            "\u202e\u0000",
            "🧠",
            "{{ x }}",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "id",
        "title",
        "year",
        "venue",
        "url",
        "arxiv",
        "doi",
        "openreview",
        "code",
        "authors",
        "objects",
        "locate",
        "steer",
        "goals",
        "bibtex",
        "added",
        "provenance",
        "notes",
    ]
) | st.text(max_size=10)
mappings = st.dictionaries(field_names, values, max_size=12)

yaml_texts = st.one_of(
    mappings.map(lambda m: yaml.safe_dump(m, allow_unicode=True)),
    st.text(),
    st.sampled_from(
        [
            "",
            "---\n",
            "- a\n- b\n",
            "!!python/object:os.system {}\n",
            "!!python/name:os.system\n",
            "a: &x [*x]\n",
            "a: !!binary aGVsbG8=\n",
            "? [a, b]\n: c\n",
            "id: x\nid: y\n",
            "%YAML 1.1\n---\na: 1\n",
            "a: b\n\tc: d\n",
            "\ufeffid: x\n",
        ]
    ),
)
raw = st.one_of(
    yaml_texts.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)
)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(contents=st.lists(raw, min_size=1, max_size=3))
def test_check_never_crashes_or_writes(tmp_path_factory, contents):
    papers = tmp_path_factory.mktemp("papers")
    for n, content in enumerate(contents):
        (papers / f"entry-{n}.yaml").write_bytes(content)
    before = snapshot(papers)
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers), "--json"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    report = json.loads(result.stdout)
    assert report["ok"] == (result.exit_code == 0)
    if not report["ok"]:
        assert all(p["message"] and p["file"] for p in report["problems"])
    assert snapshot(papers) == before


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=st.text(max_size=40),
    year=st.text(max_size=6),
    venue=st.text(max_size=12),
    locate=st.text(max_size=30),
    url=st.text(max_size=30),
)
def test_add_never_crashes_and_writes_only_valid_entries(
    tmp_path_factory, title, year, venue, locate, url
):
    papers = tmp_path_factory.mktemp("papers")
    args = [
        "add",
        "--papers",
        str(papers),
        "--title",
        title,
        "--venue",
        venue,
        "--locate",
        locate,
        "--url",
        url,
        "--json",
    ]
    if year:
        args += ["--year", year]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    written = os.listdir(papers)
    if result.exit_code == 0:
        assert len(written) == 1
        assert CliRunner().invoke(cli, ["check", "--papers", str(papers)]).exit_code == 0
    else:
        assert written == []
