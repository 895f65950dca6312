"""`mi-atlas check`: every kind of broken entry is named with file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import valid_entry, write_yaml

from mi_atlas.cli import cli


def run_check(papers: Path, *args: str):
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers), "--json", *args])
    return result, json.loads(result.stdout)


def test_valid_entries_pass(papers):
    write_yaml(papers, "2024-arditi-refusal.yaml", valid_entry())
    write_yaml(
        papers,
        "2022-meng-rome.yaml",
        valid_entry(
            id="2022-meng-rome",
            title="Locating and Editing Factual Associations in GPT",
            year=2022,
            url="https://arxiv.org/abs/2202.05262",
            arxiv="2202.05262",
            objects=["ffn"],
            locate=["causal-attribution"],
            steer=["targeted-optimization"],
            goals=["knowledge-management"],
        ),
    )
    result, report = run_check(papers)
    assert result.exit_code == 0
    assert report == {"ok": True, "papers": 2, "checked": 2, "problems": [], "warnings": []}


def test_human_output_when_clean(papers):
    write_yaml(papers, "2024-arditi-refusal.yaml", valid_entry())
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers)])
    assert result.exit_code == 0
    assert result.stdout.strip() == "1 papers, no problems."


# Each case: (file name, entry data, field, text of the reported line (None: no line),
# message fragment, suggestion). The line is found in the written file, not computed by us.
BROKEN = {
    "unknown-key": (
        "x.yaml",
        valid_entry(id="x", tittle="A"),
        "tittle",
        "tittle: A",
        "'tittle' is not a field of a paper entry; did you mean 'title'?",
        "title",
    ),
    "unknown-locate-tag": (
        "x.yaml",
        valid_entry(id="x", locate=["magitude-analysis"]),
        "locate",
        "- magitude-analysis",
        "'magitude-analysis' is not a locating method; did you mean 'magnitude-analysis'?",
        "magnitude-analysis",
    ),
    "unknown-object-tag": (
        "x.yaml",
        valid_entry(id="x", objects=["residual-stream", "MHA"]),
        "objects",
        "- MHA",
        "'MHA' is not an interpretable object; did you mean 'attention-head'?",
        "attention-head",
    ),
    "unknown-steer-tag-no-near-miss": (
        "x.yaml",
        valid_entry(id="x", steer=["qqqqq"]),
        "steer",
        "- qqqqq",
        "'qqqqq' is not a steering method; valid ids are: amplitude-manipulation, targeted-optimization, vector-arithmetic",
        None,
    ),
    "unknown-goal-tag": (
        "x.yaml",
        valid_entry(id="x", goals=["safety"]),
        "goals",
        "- safety",
        "'safety' is not an improvement goal; did you mean 'safety-reliability'?",
        "safety-reliability",
    ),
    "duplicate-tag": (
        "x.yaml",
        valid_entry(id="x", steer=["vector-arithmetic", "vector-arithmetic"]),
        "steer",
        "- vector-arithmetic#2",
        "'vector-arithmetic' is listed twice",
        None,
    ),
    "bad-arxiv": (
        "x.yaml",
        valid_entry(id="x", arxiv="arXiv:2406.11717v2"),
        "arxiv",
        "arxiv:",
        "'arXiv:2406.11717v2' is not a bare arXiv id; did you mean '2406.11717'?",
        "2406.11717",
    ),
    "malformed-arxiv": (
        "x.yaml",
        valid_entry(id="x", arxiv="24-06"),
        "arxiv",
        "arxiv:",
        "'24-06' is not an arXiv id",
        None,
    ),
    "bad-doi": (
        "x.yaml",
        valid_entry(id="x", doi="https://doi.org/10.1000/xyz"),
        "doi",
        "doi:",
        "is not a bare DOI; did you mean '10.1000/xyz'?",
        "10.1000/xyz",
    ),
    "malformed-doi": (
        "x.yaml",
        valid_entry(id="x", doi="doi-123"),
        "doi",
        "doi:",
        "'doi-123' is not a DOI",
        None,
    ),
    "bad-openreview": (
        "x.yaml",
        valid_entry(id="x", openreview="https://openreview.net/forum?id=pH3XAQME6c"),
        "openreview",
        "openreview:",
        "is not an OpenReview id; did you mean 'pH3XAQME6c'?",
        "pH3XAQME6c",
    ),
    "bad-url": (
        "x.yaml",
        valid_entry(id="x", url="openreview.net/forum?id=pH3XAQME6c"),
        "url",
        "url:",
        "is not a web address: it must start with http:// or https://",
        None,
    ),
    "javascript-url": (
        "x.yaml",
        valid_entry(id="x", code="javascript:alert(1)"),
        "code",
        "code:",
        "'javascript:alert(1)' is not a web address",
        None,
    ),
    "year-out-of-range": (
        "x.yaml",
        valid_entry(id="x", year=1850),
        "year",
        "year:",
        "1850 is not a plausible year",
        None,
    ),
    "year-not-a-number": (
        "x.yaml",
        valid_entry(id="x", year="soon"),
        "year",
        "year:",
        "(got 'soon')",
        None,
    ),
    "unsafe-id": (
        "Bad_Id.yaml",
        valid_entry(id="Bad_Id"),
        "id",
        "id:",
        "'Bad_Id' is not a safe id",
        None,
    ),
    "id-differs-from-stem": (
        "other.yaml",
        valid_entry(id="x"),
        "id",
        "id:",
        "id 'x' differs from the file name 'other.yaml'; rename the file or set id: other",
        "other",
    ),
    "missing-title": (
        "x.yaml",
        valid_entry(id="x", title=...),
        "title",
        None,
        "is required but missing",
        None,
    ),
    "missing-url": (
        "x.yaml",
        valid_entry(id="x", url=...),
        "url",
        None,
        "is required: give the paper's page, or write 'needs: [link]'",
        None,
    ),
    "needs-met": (
        "x.yaml",
        valid_entry(id="x", needs=["link"]),
        "needs",
        "needs:",
        "lists 'link' but the entry has a url",
        None,
    ),
    "needs-unknown": (
        "x.yaml",
        valid_entry(id="x", needs=["doi"]),
        "needs.0",
        "- doi",
        "Input should be 'link'",
        None,
    ),
    "tags-not-a-list": (
        "x.yaml",
        valid_entry(id="x", objects="residual-stream"),
        "objects",
        "objects:",
        "(got 'residual-stream')",
        None,
    ),
    "empty-title": (
        "x.yaml",
        valid_entry(id="x", title="   "),
        "title",
        "title:",
        "at least 1 character",
        None,
    ),
    "bad-bibtex-field": (
        "x.yaml",
        valid_entry(id="x", bibtex={"Pages!": "1-2"}),
        "bibtex.Pages!",
        "bibtex:",
        "should match pattern",
        None,
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_entry_is_reported(papers, case):
    name, data, field, marker, fragment, suggestion = BROKEN[case]
    path = write_yaml(papers, name, data)
    lines = path.read_text(encoding="utf-8").splitlines()
    line = None
    if marker is not None:
        text, _, nth = marker.partition("#")
        line = [n for n, row in enumerate(lines, 1) if row.startswith(text)][int(nth or 1) - 1]
    result, report = run_check(papers)
    assert result.exit_code == 1
    assert report["ok"] is False
    matching = [p for p in report["problems"] if p["field"] == field]
    assert matching, report["problems"]
    problem = matching[0]
    assert problem["file"].endswith(name)
    assert fragment in problem["message"]
    assert problem["line"] == line
    assert problem["suggestion"] == suggestion


def test_human_message_names_file_line_and_field(papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", locate=["magitude-analysis"]))
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers)])
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.endswith(
        "x.yaml:13: locate: 'magitude-analysis' is not a locating method; did you mean 'magnitude-analysis'?"
    )


@pytest.mark.parametrize(
    ("content", "fragment", "line"),
    [
        (b"", "the file is empty", 1),
        (b"- a\n- b\n", "the file is a list, not a mapping", 1),
        (b"id: [unclosed\n", "is not valid YAML", 2),
        (
            b"!!python/object/apply:os.system ['echo hi']\n",
            "the tag '!!python/object/apply:os.system' is not allowed",
            1,
        ),
        (b"\xff\xfe\x00binary", "is not UTF-8 text", None),
        (b"just a sentence\n", "the file is a str, not a mapping", 1),
    ],
    ids=["empty", "list", "syntax", "python-tag", "binary", "scalar"],
)
def test_unreadable_files_are_reported_without_traceback(papers, content, fragment, line):
    (papers / "x.yaml").write_bytes(content)
    result, report = run_check(papers)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [problem] = report["problems"]
    assert fragment in problem["message"]
    assert problem["line"] == line


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arxiv", "2406.11717"),
        ("doi", "10.1000/xyz"),
        ("url", "https://example.org/paper"),
        ("title", "Some Title"),
    ],
)
def test_two_entries_for_one_paper_name_both_files(papers, field, value):
    first = valid_entry(
        **{
            "id": "a-paper",
            "arxiv": ...,
            "url": "https://example.org/a",
            "title": "First",
            field: value,
        }
    )
    second = valid_entry(
        **{
            "id": "b-paper",
            "arxiv": ...,
            "url": "https://example.org/b",
            "title": "Second",
            field: value,
        }
    )
    if field == "url":
        second["url"] = "http://www.example.org/paper/"  # normalised: the same address
    if field == "title":
        second["title"] = "some   title!"
    write_yaml(papers, "a-paper.yaml", first)
    write_yaml(papers, "b-paper.yaml", second)
    result, report = run_check(papers)
    assert result.exit_code == 1
    [problem] = report["problems"]
    assert problem["file"].endswith("b-paper.yaml")
    assert "a-paper.yaml" in problem["message"]
    assert problem["field"] == field


def test_every_problem_is_listed_at_once(papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", title="", locate=["probe-ing"], year=3000))
    (papers / "y.yaml").write_text("", encoding="utf-8")
    (papers / "notes.txt").write_text("hello", encoding="utf-8")
    result, report = run_check(papers)
    assert result.exit_code == 1
    assert {(Path(p["file"]).name, p["field"]) for p in report["problems"]} == {
        ("x.yaml", "title"),
        ("x.yaml", "locate"),
        ("x.yaml", "year"),
        ("y.yaml", None),
        ("notes.txt", None),
    }


def test_yml_extension_gets_a_rename_hint(papers):
    write_yaml(papers, "x.yml", valid_entry(id="x"))
    result, report = run_check(papers)
    assert result.exit_code == 1
    assert report["problems"][0]["suggestion"] == "x.yaml"


def test_missing_papers_folder_is_a_clear_problem(tmp_path):
    result, report = run_check(tmp_path / "nope")
    assert result.exit_code == 1
    assert "is not a folder of paper entries" in report["problems"][0]["message"]


def test_json_output_is_only_json(papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", venue="Arxiv"))
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers), "--json"])
    assert set(json.loads(result.stdout)) == {"ok", "papers", "checked", "problems", "warnings"}


def test_usage_error_exits_2(papers):
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers), "--bogus"])
    assert result.exit_code == 2


def test_github_annotations_point_at_the_line(papers, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_yaml(papers, "x.yaml", valid_entry(id="x", locate=["magitude-analysis"]))
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers)])
    assert result.exit_code == 1
    [annotation] = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert annotation.startswith(
        f"::error file={papers / 'x.yaml'},line=13,title=mi-atlas check: locate::"
    )
    assert "did you mean 'magnitude-analysis'?" in annotation


VENUE_WARNINGS = [
    ("TLMR", "'TLMR' is written 'TMLR' in taxonomy/venues.yaml: use that name", "TMLR"),
    (
        "PLoS Computational Biology",
        "'PLoS Computational Biology' is not in taxonomy/venues.yaml",
        None,
    ),
]


@pytest.mark.parametrize("venue, message, suggestion", VENUE_WARNINGS)
def test_a_venue_outside_the_list_is_a_warning_unless_strict(papers, venue, message, suggestion):
    path = write_yaml(papers, "x.yaml", valid_entry(id="x", venue=venue))
    result, report = run_check(papers)
    assert result.exit_code == 0 and report["ok"] and report["problems"] == []
    [warning] = report["warnings"]
    assert (warning["field"], warning["severity"]) == ("venue", "warning")
    assert warning["message"].startswith(message) and warning["suggestion"] == suggestion
    line = path.read_text().splitlines()[warning["line"] - 1]
    assert line.startswith("venue:")
    result, report = run_check(papers, "--strict-venues")
    assert result.exit_code == 1 and report["problems"][0]["field"] == "venue"
    human = CliRunner().invoke(cli, ["check", "--papers", str(papers)])
    assert human.exit_code == 0 and "x.yaml:4: warning: venue: " in human.stderr
    assert "1 papers, no problems (1 warning(s))." in human.stdout


def test_an_entry_without_a_link_needs_one_and_is_a_warning(papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", url=..., arxiv=..., needs=["link"]))
    result, report = run_check(papers, "--strict-venues")
    assert result.exit_code == 0
    [warning] = report["warnings"]
    assert warning["field"] == "needs" and warning["message"].startswith("no link yet")


def test_the_explorer_lists_venues_outside_the_list_after_it_as_other_venues(taxonomy):
    from mi_atlas.schema import Paper
    from mi_atlas.site.catalog import Catalog
    from mi_atlas.site.explorer import explorer_data

    papers = [
        Paper.model_validate(
            valid_entry(id=f"x{n}", title=f"T {n}", venue=venue, arxiv=...)
            | {"url": f"https://example.org/{n}"}
        )
        for n, venue in enumerate(["PLoS Computational Biology", "NeurIPS", "arXiv", "Neuron"])
    ]
    data = explorer_data(Catalog.build(papers, taxonomy, {}))
    assert data["venues"] == ["arXiv", "NeurIPS", "Neuron", "PLoS Computational Biology"]
    assert data["venuesOther"] == ["Neuron", "PLoS Computational Biology"]


def test_an_entry_without_a_venue_needs_one_a_warning_an_error_when_strict(papers):
    write_yaml(papers, "x.yaml", valid_entry(id="x", venue=..., needs=["venue"]))
    result, report = run_check(papers)
    assert result.exit_code == 0
    [warning] = report["warnings"]
    assert warning["field"] == "venue" and warning["message"].startswith("no venue yet")
    result, report = run_check(papers, "--strict-venues")
    assert result.exit_code == 1 and report["problems"][0]["field"] == "venue"
    write_yaml(papers, "x.yaml", valid_entry(id="x", venue=...))
    result, report = run_check(papers)
    assert result.exit_code == 1
    assert "write 'needs: [venue]'" in report["problems"][0]["message"]
