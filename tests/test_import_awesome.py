"""`mi-atlas import-awesome`: every shape of awesome list, every item accounted for.

Golden files (`tests/fixtures/awesome/*.yaml`) each hold a small list in one format and the
exact items, entries, tags and problems it must give. The real survey list is imported too:
its 214 rows must all be accounted for and give the curated `papers/` exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import REPO, valid_entry, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mi_atlas.cli import cli
from mi_atlas.importers.awesome import import_text
from mi_atlas.importers.awesome_report import PROBLEM_KINDS
from mi_atlas.index import load_index
from mi_atlas.schema import to_yaml_data

FIXTURES = REPO / "tests" / "fixtures" / "awesome"
SURVEY = REPO.parent / "shared" / "data" / "awesome-actionable-mi-survey" / "README.md"
SURVEY_NAME = "Awesome-Actionable-MI-Survey README.md"
ADDED = dt.date(2026, 1, 30)


def project(report) -> dict:
    """The report as plain data: what a golden file states exactly."""
    created = []
    for item in report.created:
        entry = to_yaml_data(report.new_entries[item.id])
        entry.pop("added")
        entry["provenance"] = [
            {k: v for k, v in p.items() if k != "source"} for p in entry["provenance"]
        ]
        created.append({"line": item.line, "entry": entry})
    return {
        "items": report.items,
        "created": created,
        "merged": [i.to_json() for i in report.merged],
        "skipped": [i.to_json() for i in report.skipped],
        "problems": [
            {
                "kind": p.kind,
                "line": p.line,
                "lines": p.lines,
                "field": p.field,
                "message": p.message,
            }
            for p in report.problems
        ],
        "ignored": [{"line": i.line, "kind": i.kind} for i in report.ignored],
        "inferred": [i.to_json() for i in report.inferred],
    }


def golden_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("golden", golden_files(), ids=lambda p: p.stem)
def test_golden_list(golden: Path, taxonomy):
    case = yaml.safe_load(golden.read_text(encoding="utf-8"))
    report = import_text(
        case["input"],
        source=f"{golden.stem}.md",
        source_name="fixture",
        taxonomy=taxonomy,
        added=ADDED,
    )
    got, want = project(report), case["expected"]
    # Compared part by part, so a failure names the part that changed.
    for part in ("created", "merged", "skipped", "problems", "ignored", "inferred", "items"):
        assert got[part] == want[part], part
    assert report.items == len(report.created) + len(report.merged) + len(report.skipped)


def test_every_format_has_a_golden_file():
    names = {p.stem for p in golden_files()}
    assert {
        "table_columns",
        "bullets_nested",
        "numbered",
        "multiline",
        "paragraphs",
        "html",
        "duplicate",
        "shared_link",
        "unknown_venue",
        "placeholders",
        "not_entries",
        "broken_table",
    } <= names


def test_every_problem_kind_is_exercised_and_documented():
    kinds = set()
    for golden in golden_files():
        kinds |= {p["kind"] for p in yaml.safe_load(golden.read_text())["expected"]["problems"]}
    docs = (REPO / "docs" / "importing.md").read_text(encoding="utf-8")
    # "existing" needs a papers folder: it is exercised by the merge tests below.
    assert kinds | {"existing"} == set(PROBLEM_KINDS)
    assert all(f"`{kind}`" in docs for kind in PROBLEM_KINDS)


# --- the survey list and the curated papers/ ------------------------------------------------


@pytest.fixture(scope="module")
def survey_report(taxonomy):
    return import_text(
        SURVEY.read_text(encoding="utf-8"),
        source="README.md",
        source_name=SURVEY_NAME,
        taxonomy=taxonomy,
        added=ADDED,
    )


def test_survey_rows_are_all_accounted_for(survey_report):
    report = survey_report
    assert report.items == 214
    assert (len(report.created), len(report.merged), len(report.skipped)) == (211, 3, 0)
    assert [(m.line, m.reason) for m in report.merged] == [
        (255, "same paper as line 111 (same ACL Anthology id)"),
        (278, "same paper as line 206 (same URL)"),
        (285, "same paper as line 230 (same OpenReview id)"),
    ]
    assert report.problem_counts() == {
        "shared-link": 1,
        "placeholder": 2,
        "alias": 5,
        "year": 1,
        "venue-from-link": 3,
        "title-conflict": 1,
        "duplicate": 3,
    }
    assert [(i.line, i.kind) for i in report.ignored] == [
        (5, "badges"),
        (7, "badges"),
        (18, "table of contents"),
        (46, "news"),
        (341, "code block"),
    ]


def test_survey_problems_name_the_rows_to_fix(survey_report):
    by_kind = {}
    for problem in survey_report.problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    assert [p.line for p in by_kind["shared-link"]] == [96]
    assert "line 87" in by_kind["shared-link"][0].message
    assert [(p.line, p.field) for p in by_kind["title-conflict"]] == [(244, "arxiv")]
    assert [p.lines for p in by_kind["placeholder"]][1][:3] == [108, 123, 130]
    assert len(by_kind["placeholder"][1].lines) == 52
    aliases = {p.message.split(" read as ")[0] for p in by_kind["alias"]}
    assert aliases == {
        "Object 'MHA'",
        "Object 'MHA & FFN'",
        "Venue 'ACLWS'",
        "Venue 'TLMR'",
        "Localizing Method 'Magitude Analysis'",
    }
    assert [(p.line, p.suggestion) for p in by_kind["venue-from-link"]] == [
        (214, "ACL Workshop"),
        (276, "ACL Workshop"),
        (319, "PACLIC"),
    ]


def curated(taxonomy):
    index = load_index(REPO / "papers", taxonomy)
    return [p for p in index.papers if any(v.source == SURVEY_NAME for v in p.provenance)], index


def test_curated_papers_are_the_survey_list(survey_report, taxonomy):
    papers, index = curated(taxonomy)
    assert index.ok, [str(p) for p in index.problems]
    assert len(papers) == len(survey_report.created) == 211
    # Every row of the list is in exactly one curated entry, under its own section.
    rows = sorted(v.line for p in papers for v in p.provenance if v.source == SURVEY_NAME)
    assert rows == sorted(i.line for i in survey_report.created + survey_report.merged)
    # The importer's entries and the curated ones agree, except for the corrections made by
    # hand where a row links another paper (docs/data-quality.md).
    by_line = {p.provenance[0].line: p for p in papers}
    for item in survey_report.created:
        made = to_yaml_data(survey_report.new_entries[item.id])
        kept = to_yaml_data(by_line[item.line])
        fixes = HAND_FIXED.get(item.line)
        if fixes:
            assert kept.pop("notes").startswith("Corrected by hand")
            made.pop("notes", None)
            for name, value in fixes.items():
                made.pop(name, None) if value is None else made.__setitem__(name, value)
        _drop_later_additions(kept, made)
        assert kept == made, item.line


def _drop_later_additions(kept: dict, made: dict) -> None:
    """What entered the entries after the import (docs/data-quality.md): facts from
    `mi-atlas enrich`, curated short names and `circuit` tags, and `added` from git history."""
    for name in ("authors", "orcids", "arxiv", "doi", "code", "aka"):
        if name not in made:
            kept.pop(name, None)
    kept.pop("added"), made.pop("added")
    kept["provenance"] = [p for p in kept["provenance"] if p["source"] == SURVEY_NAME]
    if "circuit" in kept["objects"] and "circuit" not in made["objects"]:
        kept["objects"].remove("circuit")


HAND_FIXED = {
    95: {"url": "https://arxiv.org/abs/2505.11770", "arxiv": "2505.11770", "openreview": None},
    96: {
        "url": "https://openreview.net/forum?id=wGFEzfhFae",
        "openreview": "wGFEzfhFae",
        "arxiv": "2502.09674",
        "needs": None,  # the row's only link was another paper's
    },
    117: {
        "id": "2025-grains-gradient-based-attribution-inference",
        "title": "GrAInS: Gradient-based Attribution for Inference-Time Steering of LLMs and VLMs",
    },
}


def test_reimporting_the_survey_into_the_curated_papers_creates_nothing(taxonomy):
    papers, _ = curated(taxonomy)
    report = import_text(
        SURVEY.read_text(encoding="utf-8"),
        source="README.md",
        source_name=SURVEY_NAME,
        taxonomy=taxonomy,
        existing=papers,
        added=ADDED,
    )
    assert (report.items, len(report.created), len(report.skipped)) == (214, 0, 0)
    # The hand-corrected links are recognised as other papers' links, not attached again.
    shared = sorted(p.line for p in report.problems if p.kind == "shared-link")
    assert shared == [95, 96, 117]


# --- the command ------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, ["import-awesome", *args])


def write_list(tmp_path: Path, text: str, name: str = "README.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TWO_ROWS = """## Safety and Reliability
| Paper | Object | Venue | Year | Link |
|---|---|---|---|---|
| Refusal in Language Models Is Mediated by a Single Direction | Residual Stream | NeurIPS | 2024 | [Link](https://arxiv.org/abs/2406.11717) |
| Whispering Experts: Neural Interventions for Toxicity Mitigation in Language Models | Neuron | ICML | 2024 | [Link](https://openreview.net/forum?id=2P6GVfSrfZ) [code](https://github.com/apple/ml-aura) |
"""


def test_command_writes_entries_that_pass_check(tmp_path, papers):
    source = write_list(tmp_path, TWO_ROWS)
    result = run(str(source), "--out", str(papers), "--added", "2026-01-30", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["items"] == 2 and len(report["created"]) == 2
    assert sorted(p.name for p in papers.iterdir()) == [
        "2024-refusal-language-models-mediated-single.yaml",
        "2024-whispering-experts-neural-interventions-toxicity.yaml",
    ]
    data = yaml.safe_load(
        (papers / "2024-whispering-experts-neural-interventions-toxicity.yaml").read_text()
    )
    assert data["code"] == "https://github.com/apple/ml-aura"
    assert data["provenance"] == [
        {"source": f"{tmp_path.name}/README.md", "line": 5, "section": "Safety and Reliability"}
    ]
    check = CliRunner().invoke(cli, ["check", "--papers", str(papers)])
    assert check.exit_code == 0, check.output


def test_human_output_summarises_and_lists_problems(tmp_path, papers):
    rows = TWO_ROWS.replace("| NeurIPS |", "| NeurlPS |").replace(
        "| 2024 | [Link](https://arxiv", "| - | [Link](https://arxiv"
    )
    source = write_list(
        tmp_path,
        rows
        + "\n## Tools\n\n- [TransformerLens](https://github.com/TransformerLensOrg/TransformerLens)\n",
    )
    result = run(str(source), "--out", str(papers), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{source}: 3 items: 2 created, 0 merged, 1 skipped; 2 problem(s); "
        "0 block(s) with links ignored; 1 value(s) inferred",
        "Dry run: nothing written.",
    ]
    assert (
        f"{source}:4: venue: Venue 'NeurlPS' is not in taxonomy/venues.yaml; closest: "
        "'NeurIPS': kept as written"
    ) in result.stderr
    assert f"{source}:4: inferred year '2024' from the arXiv id 2406.11717" in result.stderr
    assert (
        f"{source}:9: skipped 'TransformerLens': not a paper: listed under 'Tools'" in result.stderr
    )
    assert list(papers.iterdir()) == []


def test_merge_into_existing_entry_fills_gaps_only_with_overwrite(tmp_path, papers):
    existing = valid_entry(
        id="2024-whispering",
        title="Whispering Experts: Neural Interventions for Toxicity Mitigation in Language Models",
        url="https://openreview.net/forum?id=2P6GVfSrfZ",
        arxiv=...,
        objects=["attention-head"],
        goals=[],
    )
    path = write_yaml(papers, "2024-whispering.yaml", existing)
    before = path.read_text()
    source = write_list(tmp_path, TWO_ROWS)
    result = run(str(source), "--out", str(papers), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [m["id"] for m in report["merged"]] == ["2024-whispering"]
    assert report["merged"][0]["reason"] == (
        f"already {papers}/2024-whispering.yaml (same URL); would add openreview, code, goals, "
        "provenance line 5 (use --overwrite to update the file)"
    )
    assert [p["kind"] for p in report["problems"]] == ["existing"]
    assert (
        "objects neuron in the list, attention-head in the entry"
        in report["problems"][0]["message"]
    )
    assert path.read_text() == before  # never replaced without --overwrite

    result = run(str(source), "--out", str(papers), "--overwrite", "--json")
    assert result.exit_code == 0
    data = yaml.safe_load(path.read_text())
    assert data["objects"] == ["attention-head"]  # its tags are kept
    assert data["goals"] == ["safety-reliability"]  # an empty axis is filled
    assert data["code"] == "https://github.com/apple/ml-aura"
    # The row already merged is not created again; the other one was created the first time.
    assert json.loads(result.stdout)["created"] == []
    assert CliRunner().invoke(cli, ["check", "--papers", str(papers)]).exit_code == 0


def test_new_id_never_replaces_a_file_of_another_paper(tmp_path, papers):
    write_yaml(
        papers,
        "2024-refusal-language-models-mediated-single.yaml",
        valid_entry(
            id="2024-refusal-language-models-mediated-single",
            title="Another Paper Entirely",
            url="https://example.org/other",
            arxiv=...,
        ),
    )
    source = write_list(tmp_path, TWO_ROWS)
    result = run(str(source), "--out", str(papers), "--json")
    assert result.exit_code == 0
    ids = [c["id"] for c in json.loads(result.stdout)["created"]]
    assert ids[0] == "2024-refusal-language-models-mediated-single-2"
    assert (
        yaml.safe_load((papers / "2024-refusal-language-models-mediated-single.yaml").read_text())[
            "title"
        ]
        == "Another Paper Entirely"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.md", None, "missing.md: no such file"),
        (
            "list.bib",
            "@article{x, title={A}}",
            "is a BibTeX file, not a markdown list; use mi-atlas import-bib",
        ),
        ("binary.md", b"\x89PNG\x00\x01", "is a binary file, not a markdown list"),
        (
            "latin1.md",
            "caf\xe9 | x".encode("latin-1"),
            "is not UTF-8 text (byte 3); save it as UTF-8",
        ),
    ],
)
def test_unreadable_input_exits_1_with_one_sentence(tmp_path, papers, name, content, message):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    result = run(str(path), "--out", str(papers))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.output
    as_json = run(str(path), "--out", str(papers), "--json")
    assert as_json.exit_code == 1 and message in json.loads(as_json.stdout)["error"]


def test_one_exit_rule_a_list_with_skips_exits_0_a_list_without_items_exits_1(tmp_path, papers):
    """The rule import-bib follows too: 0 when every item is accounted for, skips included."""
    tools = (
        "## Tools\n\n- [TransformerLens](https://github.com/TransformerLensOrg/TransformerLens)\n"
    )
    result = run(str(write_list(tmp_path, TWO_ROWS + tools)), "--out", str(papers), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and len(report["skipped"]) == 1 and report["unreadable"] == 0
    empty = write_list(tmp_path, "# A list\n\nNothing here yet.\n", "EMPTY.md")
    result = run(str(empty), "--out", str(papers), "--dry-run")
    assert result.exit_code == 1
    assert f"Error: no paper items found in {empty}" in result.stderr


def test_invalid_existing_entries_refuse_the_import(tmp_path, papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", locate=["nowhere"]))
    result = run(str(write_list(tmp_path, TWO_ROWS)), "--out", str(papers))
    assert result.exit_code == 1
    assert "holds entries that do not pass mi-atlas check (1 problem(s))" in result.stderr
    assert sorted(p.name for p in papers.iterdir()) == ["x.yaml"]


def test_bad_date_is_a_usage_error(tmp_path, papers):
    result = run(str(write_list(tmp_path, TWO_ROWS)), "--out", str(papers), "--added", "30/01/2026")
    assert result.exit_code == 2


def test_help_states_the_item_rule_exit_codes_and_an_example():
    result = CliRunner().invoke(cli, ["import-awesome", "--help"])
    assert result.exit_code == 0
    for phrase in (
        "Items are the candidate paper entries",
        "items == created + merged + skipped",
        "Exit status: 0",
        "Example:",
        "--overwrite",
        "--dry-run",
    ):
        assert phrase in result.output


def test_docs_example_output_is_what_the_command_prints(tmp_path):
    """docs/importing.md shows a run on tests/fixtures/awesome/duplicate.yaml's list."""
    docs = (REPO / "docs" / "importing.md").read_text(encoding="utf-8")
    case = yaml.safe_load((FIXTURES / "duplicate.yaml").read_text())
    source = write_list(tmp_path, case["input"], "duplicate.md")
    result = CliRunner().invoke(
        cli, ["import-awesome", str(source), "--out", str(tmp_path / "papers"), "--dry-run"]
    )
    shown = result.stderr.replace(str(source), "duplicate.md") + result.stdout.replace(
        str(source), "duplicate.md"
    )
    for line in shown.splitlines():
        assert line in docs, line


# --- random markdown --------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "# Heading\n",
        "## Safety and Reliability\n",
        "### 2023\n",
        "\n",
        "- ",
        "  - ",
        "1. ",
        "| ",
        " | ",
        "|---|---|\n",
        "| Paper | Venue | Year | Link |\n",
        "**Title of a Paper**",
        "*Authors*",
        "[Link](https://arxiv.org/abs/2401.00001)",
        "[x](#anchor)",
        "[![b](https://img.shields.io/x.svg)](https://github.com/a/b)",
        "<br>",
        "<!-- c -->",
        "<table><tr><td>",
        "</td></tr></table>",
        "<a href='https://openreview.net/forum?id=abcdefghij'>T</a>",
        "NeurIPS 2024",
        "ArXiv",
        "-",
        "`code`",
        "```\n",
        "> ",
        "[2024-01-02] news ",
        "Residual Stream",
        "MHA & FFN",
        "\\|",
        "https://doi.org/10.48550/arXiv.2401.00002",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=12)), max_size=40))
def test_random_markdown_never_crashes_and_accounts_for_every_item(parts):
    from mi_atlas.taxonomy import load_taxonomy

    text = "".join(parts)
    report = import_text(
        text, source="random.md", source_name="random", taxonomy=load_taxonomy(), added=ADDED
    )
    assert report.items == len(report.created) + len(report.merged) + len(report.skipped)
    lines = len(re.split(r"\r\n|\r|\n", text))  # markdown ends a line at \r too
    items = report.created + report.merged + report.skipped
    assert all(1 <= item.line <= lines for item in items)
    assert len({i.id for i in report.created}) == len(report.created) == len(report.new_entries)


def test_survey_copy_imports_through_the_command(tmp_path):
    """The whole survey through the command, into an empty folder."""
    source = tmp_path / "README.md"
    shutil.copy(SURVEY, source)
    out = tmp_path / "papers"
    result = run(
        str(source),
        "--out",
        str(out),
        "--json",
        "--source-name",
        SURVEY_NAME,
        "--added",
        "2026-01-30",
    )
    report = json.loads(result.stdout)
    assert result.exit_code == 0
    assert (
        report["items"],
        len(report["created"]),
        len(report["merged"]),
        len(report["skipped"]),
    ) == (214, 211, 3, 0)
    assert len(list(out.glob("*.yaml"))) == 211
