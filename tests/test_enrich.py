"""`mi-atlas enrich --from FILE`: facts fill gaps, conflicts are reported, doubts wait for review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import valid_entry, write_yaml

from mi_atlas.cli import cli
from mi_atlas.entries import entry_text
from mi_atlas.schema import Paper


def _papers(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    # An arXiv abs link names the paper's arXiv id although the entry has no `arxiv` field.
    arditi = valid_entry(
        id="2024-arditi-refusal", url="https://arxiv.org/abs/2406.11717", arxiv=..., authors=[]
    )
    meng = valid_entry(
        id="2022-meng-rome",
        title="Locating and Editing Factual Associations in GPT",
        year=2022,
        url="https://openreview.net/forum?id=-h6WAS6eE4",
        arxiv=...,
        authors=[],
        objects=["ffn"],
        steer=["targeted-optimization"],
        goals=["knowledge-management"],
    )
    for data in (arditi, meng):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{data['id']}.yaml").write_text(
            entry_text(Paper.model_validate(data)), encoding="utf-8"
        )
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _run(papers: Path, facts, tmp_path: Path, *extra: str):
    source = tmp_path / "facts.json"
    source.write_text(json.dumps(facts) if not isinstance(facts, str) else facts, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["enrich", "--from", str(source), "--papers", str(papers), "--json", *extra]
    )
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def fact(**fields) -> dict:
    return {
        "authors": None,
        "arxiv": None,
        "doi": None,
        "code": None,
        "published": None,
        "confidence": "high",
        "evidence": "https://example.org/page",
        **fields,
    }


def test_a_conflicting_fact_is_reported_and_nothing_else_changes(tmp_path):
    papers = _papers(tmp_path)
    before = _snapshot(papers)
    result, doc = _run(papers, [fact(id="2024-arditi-refusal", arxiv="2406.99999")], tmp_path)
    assert result.exit_code == 0, result.output
    assert doc["conflicts"] == [
        {
            "file": str(papers / "2024-arditi-refusal.yaml"),
            "id": "2024-arditi-refusal",
            "field": "arxiv",
            "kept": "2406.11717 (from url https://arxiv.org/abs/2406.11717)",
            "offered": "2406.99999",
            "message": "kept '2406.11717 (from url https://arxiv.org/abs/2406.11717)' of the "
            "curated entry; the import has '2406.99999'",
            "evidence": "https://example.org/page",
        }
    ]
    assert doc["merged"] == [] and doc["written"] == []
    assert _snapshot(papers) == before


def test_gaps_are_filled_and_a_conflict_beside_them_is_not_written(tmp_path):
    papers = _papers(tmp_path)
    before = (papers / "2024-arditi-refusal.yaml").read_text(encoding="utf-8")
    authors = ["Andy Arditi", "Oscar Obeso", "Neel Nanda"]
    result, doc = _run(
        papers,
        [
            fact(
                id="2024-arditi-refusal",
                arxiv="2406.99999",
                authors=authors,
                code="https://github.com/andyrdt/refusal_direction",
            )
        ],
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert [c["field"] for c in doc["conflicts"]] == ["arxiv"]
    assert doc["merged"][0]["fields"] == ["code", "authors"]
    after = (papers / "2024-arditi-refusal.yaml").read_text(encoding="utf-8")
    paper = Paper.model_validate(__import__("yaml").safe_load(after))
    assert paper.authors == authors and paper.arxiv is None
    assert paper.code == "https://github.com/andyrdt/refusal_direction"
    # Every line of the old file is still there: only the filled fields and provenance were added.
    new_lines = set(after.splitlines())
    assert all(line in new_lines for line in before.splitlines())
    assert "example.org/page" in after  # provenance names where the facts came from


def test_doubtful_facts_are_listed_for_review_not_written(tmp_path):
    papers = _papers(tmp_path)
    facts = [
        fact(id="2024-arditi-refusal", confidence="low", arxiv="2406.11717"),
        fact(
            id="2022-meng-rome",
            authors=["Kevin Meng", "David Bau"],
            confidence="medium",
            doi="10.18653/v1/2022.fake-1.1",
            doi_note="may be built from the ACL Anthology id",
        ),
    ]
    result, doc = _run(papers, facts, tmp_path)
    assert result.exit_code == 0, result.output
    review = {(r["id"], r["field"]): r for r in doc["review"]}
    assert review[("2024-arditi-refusal", "arxiv")]["written"] is False
    assert (
        review[("2024-arditi-refusal", "authors")]["value"] is None
    )  # nothing found: a curator's job
    assert review[("2022-meng-rome", "doi")]["written"] is False
    assert review[("2022-meng-rome", "authors")]["written"] is True  # medium: written and flagged
    meng = (papers / "2022-meng-rome.yaml").read_text(encoding="utf-8")
    assert "Kevin Meng" in meng and "doi:" not in meng
    assert "authors" not in (papers / "2024-arditi-refusal.yaml").read_text(encoding="utf-8")


def test_curated_values_win_and_identifiers_of_other_entries_conflict(tmp_path):
    papers = _papers(tmp_path)
    write_yaml(
        papers,
        "2024-arditi-refusal.yaml",
        {**valid_entry(id="2024-arditi-refusal"), "added": "2026-01-02"},
    )
    facts = [
        fact(id="2024-arditi-refusal", authors=["Someone Else"]),
        fact(id="2022-meng-rome", arxiv="2406.11717"),  # Arditi's id
        fact(id="2099-not-in-the-index", authors=["Nobody"]),
    ]
    before = _snapshot(papers)
    result, doc = _run(papers, facts, tmp_path)
    assert result.exit_code == 0, result.output
    assert {(c["id"], c["field"]) for c in doc["conflicts"]} == {
        ("2024-arditi-refusal", "authors"),
        ("2022-meng-rome", "arxiv"),
    }
    assert doc["unmatched"] == [
        {"id": "2099-not-in-the-index", "reason": "no entry has this id, arXiv id or DOI"}
    ]
    assert _snapshot(papers) == before


def test_dry_run_writes_nothing(tmp_path):
    papers = _papers(tmp_path)
    before = _snapshot(papers)
    result, doc = _run(
        papers, [fact(id="2022-meng-rome", authors=["Kevin Meng"])], tmp_path, "--dry-run"
    )
    assert result.exit_code == 0 and doc["dry_run"] is True
    assert doc["merged"][0]["fields"] == ["authors"]
    assert _snapshot(papers) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a JSON file at line 1: expected a list of records"),
        ('{"a": 1}', "holds a JSON dict, not a list of records with an 'id' each"),
    ],
)
def test_an_unusable_file_is_one_line_and_exit_1(tmp_path, content, message):
    papers = _papers(tmp_path)
    before = _snapshot(papers)
    result, _ = _run(papers, content, tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {tmp_path / 'facts.json'} {message}"]
    assert _snapshot(papers) == before


def test_a_bad_record_is_listed_and_the_others_still_merge(tmp_path):
    papers = _papers(tmp_path)
    facts = [
        fact(id="2022-meng-rome", arxiv="arXiv:2202.05262"),
        fact(id="2022-meng-rome", authors=["Kevin Meng"]),
    ]
    result, doc = _run(papers, facts, tmp_path)
    assert result.exit_code == 1
    assert len(doc["problems"]) == 1
    assert "record 1 (2022-meng-rome), field 'arxiv'" in doc["problems"][0]
    assert "did you mean '2202.05262'" in doc["problems"][0]
    assert doc["merged"][0]["fields"] == ["authors"]
