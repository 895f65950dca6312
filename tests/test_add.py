"""`mi-atlas add`: validated before writing, atomic, never overwrites."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from helpers import valid_entry, write_yaml

from mi_atlas.cli import cli

ARGS = [
    "--title",
    "Locating and Editing Factual Associations in GPT",
    "--year",
    "2022",
    "--venue",
    "NeurIPS",
    "--author",
    "Kevin Meng",
    "--author",
    "David Bau",
    "--objects",
    "ffn,neuron",
    "--locate",
    "causal-attribution",
    "--steer",
    "targeted-optimization",
    "--goals",
    "knowledge-management",
    "--bibtex",
    "pages=17359--17372",
    "--added",
    "2026-01-30",
]


def test_add_from_arxiv_id_writes_a_valid_entry(papers):
    result = CliRunner().invoke(cli, ["add", "arXiv:2202.05262v5", "--papers", str(papers), *ARGS])
    assert result.exit_code == 0, result.output
    path = papers / "2022-meng-locating-editing-factual-associations-gpt.yaml"
    assert result.stdout.strip() == f"wrote {path}"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schema/paper.schema.json\n")
    data = yaml.safe_load(text)
    assert data["arxiv"] == "2202.05262"
    assert data["url"] == "https://arxiv.org/abs/2202.05262"
    assert data["objects"] == ["ffn", "neuron"]
    assert data["bibtex"] == {"pages": "17359--17372"}
    assert CliRunner().invoke(cli, ["check", "--papers", str(papers)]).exit_code == 0


def test_add_from_openreview_url_and_venue_alias(papers):
    result = CliRunner().invoke(
        cli,
        [
            "add",
            "https://openreview.net/forum?id=pH3XAQME6c",
            "--papers",
            str(papers),
            "--id",
            "refusal",
            "--title",
            "Refusal",
            "--year",
            "2024",
            "--venue",
            "neurips",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["entry"]
    assert (entry["openreview"], entry["venue"]) == ("pH3XAQME6c", "NeurIPS")


def test_add_refuses_invalid_input_and_writes_nothing(papers):
    result = CliRunner().invoke(
        cli,
        ["add", "--papers", str(papers), *ARGS, "--locate", "causal-atribution", "--year", "1800"],
    )
    assert result.exit_code == 1
    assert (
        "locate: 'causal-atribution' is not a locating method; did you mean 'causal-attribution'?"
        in result.stderr
    )
    assert "year: 1800 is not a plausible year" in result.stderr
    assert result.stderr.strip().endswith("Nothing was written.")
    assert list(papers.iterdir()) == []


def test_add_refuses_a_paper_already_in_the_index(papers):
    write_yaml(papers, "2024-arditi-refusal.yaml", valid_entry())
    result = CliRunner().invoke(
        cli,
        [
            "add",
            "2406.11717",
            "--papers",
            str(papers),
            "--title",
            "Another",
            "--year",
            "2024",
            "--venue",
            "arXiv",
        ],
    )
    assert result.exit_code == 1
    assert "same arXiv id as" in result.stderr and "2024-arditi-refusal.yaml" in result.stderr
    assert [p.name for p in papers.iterdir()] == ["2024-arditi-refusal.yaml"]


def test_add_never_overwrites_an_existing_id(papers):
    original = write_yaml(papers, "taken.yaml", valid_entry(id="taken"))
    before = original.read_bytes()
    result = CliRunner().invoke(
        cli,
        [
            "add",
            "--papers",
            str(papers),
            "--id",
            "taken",
            "--url",
            "https://example.org/new",
            *ARGS,
        ],
    )
    assert result.exit_code == 1
    assert "an entry with id 'taken' already exists" in result.stderr
    assert original.read_bytes() == before


def test_dry_run_prints_the_entry_and_writes_nothing(papers):
    result = CliRunner().invoke(
        cli, ["add", "2202.05262", "--papers", str(papers), "--dry-run", *ARGS]
    )
    assert result.exit_code == 0
    assert (
        yaml.safe_load(result.stdout)["title"] == "Locating and Editing Factual Associations in GPT"
    )
    assert list(papers.iterdir()) == []


def test_malformed_bibtex_flag_is_a_usage_error(papers):
    result = CliRunner().invoke(
        cli, ["add", "2202.05262", "--papers", str(papers), *ARGS, "--bibtex", "pages"]
    )
    assert result.exit_code == 2
    assert "'pages' is not KEY=VALUE" in result.stderr
