"""The shipped JSON Schema and template stay current with the pydantic model and taxonomy."""

from __future__ import annotations

import json
import sys

import jsonschema
import yaml
from click.testing import CliRunner
from helpers import REPO, valid_entry

from mi_atlas.cli import cli

sys.path.insert(0, str(REPO / "scripts"))
from generate_schema import (  # noqa: E402
    CONTRIBUTING,
    RUN_SCHEMA_PATH,
    render,
    render_contributing,
    render_run,
)


def test_shipped_schema_is_current():
    shipped = (REPO / "schema" / "paper.schema.json").read_text(encoding="utf-8")
    assert shipped == render(), (
        "schema/paper.schema.json is stale: run python scripts/generate_schema.py"
    )


def test_shipped_run_schema_is_current():
    shipped = (REPO / RUN_SCHEMA_PATH).read_text(encoding="utf-8")
    assert shipped == render_run(), (
        "schema/run.schema.json is stale: run python scripts/generate_schema.py"
    )


def test_contributing_lists_the_taxonomys_tag_ids():
    shipped = (REPO / CONTRIBUTING).read_text(encoding="utf-8")
    assert shipped == render_contributing(shipped), (
        "CONTRIBUTING.md's tag table is stale: run python scripts/generate_schema.py"
    )


def test_schema_accepts_a_valid_entry_and_rejects_unknown_tags():
    schema = json.loads(render())
    jsonschema.validate(valid_entry(added="2026-01-30"), schema)
    try:
        jsonschema.validate(valid_entry(locate=["magitude-analysis"]), schema)
    except jsonschema.ValidationError as exc:
        assert "magitude-analysis" in exc.message
    else:
        raise AssertionError("the schema accepted an unknown tag")


def test_template_has_the_modeline_and_is_a_valid_entry(tmp_path):
    text = (REPO / "papers" / "_template.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schema/paper.schema.json")
    data = yaml.safe_load(text)
    (tmp_path / f"{data['id']}.yaml").write_text(text, encoding="utf-8")
    assert CliRunner().invoke(cli, ["check", "--papers", str(tmp_path)]).exit_code == 0
