"""`export bib|json|csv`: golden outputs, validity by independent readers, the command."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from helpers import REPO, valid_entry, write_yaml
from pybtex.database import parse_string as pybtex_parse
from referencing import Registry, Resource

from mi_atlas.cli import cli
from mi_atlas.exporters import to_bibtex, to_csv, to_json
from mi_atlas.exporters.json import PAPER_SCHEMA_ID, papers_schema
from mi_atlas.schema import Paper

GOLDEN = yaml.safe_load((Path(__file__).parent / "fixtures/export/golden.yaml").read_text())


@pytest.fixture(scope="module")
def golden(taxonomy) -> list[Paper]:
    return [Paper.model_validate(d, context={"taxonomy": taxonomy}) for d in GOLDEN["papers"]]


def test_bibtex_matches_the_golden_file(golden) -> None:
    assert to_bibtex(golden) == GOLDEN["bibtex"]
    assert to_bibtex(golden, atlas_fields=False) == GOLDEN["bibtex_plain"]


def test_csv_matches_the_golden_file(golden) -> None:
    assert to_csv(golden).replace("\r\n", "\n") == GOLDEN["csv"]


def test_bibtex_is_read_by_pybtex_with_keys_titles_and_arxiv_fields(golden) -> None:
    parsed = pybtex_parse(to_bibtex(golden), "bibtex")
    assert list(parsed.entries) == [p.id for p in golden]  # the stable key is the entry id
    arditi = parsed.entries["2024-arditi-refusal"]
    assert (arditi.type, arditi.fields["eprint"], arditi.fields["archivePrefix"]) == (
        "inproceedings",
        "2406.11717",
        "arXiv",
    )
    assert arditi.fields["primaryClass"] == "cs.LG"
    assert arditi.fields["month"] == "June"  # written as the `jun` macro
    framework = parsed.entries["2021-elhage-framework"]
    assert "primaryClass" not in framework.fields and "eprint" not in framework.fields
    # BibTeX itself splits the author list as the index does: four people, braced ones whole.
    assert [str(p) for p in framework.persons["author"]] == [
        "Elhage, Nelson",
        "{Smith, John}",
        "{Anthropic and Friends}",
        "{others}",
    ]


def test_only_known_primary_class_is_written(taxonomy) -> None:
    paper = Paper.model_validate(valid_entry(), context={"taxonomy": taxonomy})
    text = to_bibtex([paper])
    assert "eprint = {2406.11717}" in text and "primaryClass" not in text


def test_special_characters_and_case_are_protected(taxonomy) -> None:
    paper = Paper.model_validate(
        valid_entry(title="GPT-2 & BERT: 100% of {x}_1 costs $5 #~^\\ -- TransformerLens"),
        context={"taxonomy": taxonomy},
    )
    (title,) = [ln for ln in to_bibtex([paper]).splitlines() if ln.strip().startswith("title")]
    assert title == (
        r"  title = {{GPT-2} \& {BERT:} 100\% of \textbraceleft{}x\textbraceright{}\_1 costs "
        r"\$5 \#\textasciitilde{}\textasciicircum{}\textbackslash{} -{}- {TransformerLens}},"
    )


def test_newlines_in_text_become_spaces_so_no_line_starts_an_entry(taxonomy) -> None:
    paper = Paper.model_validate(
        valid_entry(abstract="First paragraph.\n\n@misc{not-an-entry, title = {x}}\nLast."),
        context={"taxonomy": taxonomy},
    )
    text = to_bibtex([paper])
    assert "abstract = {First paragraph. @misc\\textbraceleft{}not-an-entry," in text
    assert list(pybtex_parse(text, "bibtex").entries) == ["2024-arditi-refusal"]


def test_entry_types_follow_the_venue_kind(taxonomy) -> None:
    kinds = {"NeurIPS": "inproceedings", "TMLR": "article", "arXiv": "misc", "Blog": "misc"}
    for venue, kind in kinds.items():
        paper = Paper.model_validate(valid_entry(venue=venue), context={"taxonomy": taxonomy})
        assert to_bibtex([paper]).startswith(f"@{kind}{{2024-arditi-refusal,"), venue


def test_json_is_valid_against_the_shipped_schema(golden) -> None:
    document = json.loads(to_json(golden))
    shipped = json.loads((REPO / "schema/paper.schema.json").read_text(encoding="utf-8"))
    assert shipped["$id"] == PAPER_SCHEMA_ID
    registry = Registry().with_resource(PAPER_SCHEMA_ID, Resource.from_contents(shipped))
    jsonschema.Draft202012Validator(papers_schema(), registry=registry).validate(document)
    for entry in document["papers"]:
        jsonschema.Draft202012Validator(shipped).validate(entry)
    assert document["count"] == len(golden) == len(document["papers"])
    assert [e["id"] for e in document["papers"]] == [p.id for p in golden]


def test_json_schema_rejects_a_broken_entry(golden) -> None:
    document = json.loads(to_json(golden))
    document["papers"][0]["objects"] = ["not-an-object"]
    shipped = json.loads((REPO / "schema/paper.schema.json").read_text(encoding="utf-8"))
    registry = Registry().with_resource(PAPER_SCHEMA_ID, Resource.from_contents(shipped))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(papers_schema(), registry=registry).validate(document)


def test_csv_has_one_row_per_paper_and_no_formulas(golden) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(golden))))
    assert [r["id"] for r in rows] == [p.id for p in golden]
    assert rows[1]["authors"] == "Nelson Elhage;Smith, John;Anthropic and Friends;others"
    assert rows[2]["goals"] == "knowledge-management"
    assert rows[3]["title"] == "'=Finding Neurons in a Haystack"  # never a spreadsheet formula
    assert json.loads(rows[0]["bibtex"]) == golden[0].bibtex


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def index(papers: Path) -> Path:
    for data in GOLDEN["papers"]:
        write_yaml(papers, f"{data['id']}.yaml", data)
    return papers


def test_export_command_prints_to_stdout(index: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "bib", "--papers", str(index)])
    assert result.exit_code == 0, result.output
    # `load_index` reads files in name order.
    assert pybtex_parse(result.stdout, "bibtex").entries.keys() == {
        d["id"] for d in GOLDEN["papers"]
    }


def test_export_command_writes_the_file_atomically(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "index.csv"
    out.parent.mkdir()
    out.write_text("old contents\n")
    result = CliRunner().invoke(cli, ["export", "csv", "--papers", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Wrote 4 papers to" in result.stderr
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 4
    assert [p.name for p in out.parent.iterdir()] == ["index.csv"]  # no temporary file left


def test_export_command_refuses_an_index_with_problems(index: Path) -> None:
    write_yaml(index, "2020-broken.yaml", valid_entry(id="2020-broken", locate=["nowhere"]))
    result = CliRunner().invoke(cli, ["export", "json", "--papers", str(index)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "2020-broken.yaml" in result.stderr and "locate" in result.stderr
    assert "fix them (mi-atlas check) before exporting" in result.stderr


def test_export_command_rejects_an_unknown_format(index: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "xml", "--papers", str(index)])
    assert result.exit_code == 2
    assert "'xml' is not one of 'bib', 'csv', 'json'" in result.stderr


def test_export_then_import_reproduces_the_index(index: Path, tmp_path: Path) -> None:
    """The golden papers through the real command line, both ways."""
    runner = CliRunner()
    bib = tmp_path / "index.bib"
    assert (
        runner.invoke(cli, ["export", "bib", "--papers", str(index), "--out", str(bib)]).exit_code
        == 0
    )
    fresh = tmp_path / "fresh"
    result = runner.invoke(cli, ["import-bib", str(bib), "--out", str(fresh), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in index.iterdir())
    again = runner.invoke(cli, ["export", "bib", "--papers", str(fresh)]).stdout
    # Entries without an `added` date get the import day; everything else is unchanged.
    today = f"  mi-atlas-added = {{{dt.date.today().isoformat()}}},\n"
    assert again.count(today) == 3
    assert again.replace(today, "") == bib.read_text()


def test_docs_python_example_runs(index: Path, monkeypatch) -> None:
    """The Python example of docs/bibtex.md runs against a papers folder."""
    docs = (REPO / "docs" / "bibtex.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    monkeypatch.chdir(index.parent)
    namespace: dict = {}
    exec(compile(code, "docs/bibtex.md", "exec"), namespace)
    assert "mi-atlas-" not in namespace["plain"] and "mi-atlas-venue" in namespace["text"]
    assert json.loads(namespace["document"])["count"] == len(GOLDEN["papers"])
    assert len(list(csv.DictReader(io.StringIO(namespace["table"])))) == len(GOLDEN["papers"])
