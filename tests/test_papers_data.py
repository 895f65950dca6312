"""What the curated index promises its readers (docs/data-quality.md): authors on nearly every
paper, in every download; short names on the papers that introduce them; `circuit` tagged
by its written rule."""

from __future__ import annotations

import csv
import io
import json

import pytest
from helpers import REPO
from pybtex.database import parse_string as pybtex_parse

from mi_atlas.exporters import to_bibtex, to_csv, to_json
from mi_atlas.index import load_index


@pytest.fixture(scope="module")
def papers(taxonomy):
    index = load_index(REPO / "papers", taxonomy)
    assert index.ok, [str(p) for p in index.problems]
    return index.papers


def test_at_least_95_percent_of_papers_have_authors(papers):
    with_authors = [p for p in papers if p.authors]
    assert len(with_authors) / len(papers) >= 0.95, len(with_authors)


def test_bibtex_download_has_an_author_field_for_each_paper_with_authors(papers):
    parsed = pybtex_parse(to_bibtex(papers), "bibtex")
    assert len(parsed.entries) == len(papers)
    for paper in papers:
        persons = parsed.entries[paper.id].persons.get("author", [])
        assert len(persons) == len(paper.authors), paper.id
        if paper.authors:  # pybtex reads the family name of the first author back
            assert persons[0].last_names, paper.id
    meng = parsed.entries["2022-locating-editing-factual-associations-gpt"].persons["author"]
    assert [" ".join(p.last_names) for p in meng] == ["Meng", "Bau", "Andonian", "Belinkov"]


def test_csv_and_json_downloads_carry_the_authors(papers):
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(to_csv(papers)))}
    records = {record["id"]: record for record in json.loads(to_json(papers))["papers"]}
    for paper in papers:
        assert rows[paper.id]["authors"].split(";") == (paper.authors or [""])
        assert records[paper.id].get("authors", []) == paper.authors


@pytest.mark.parametrize(
    ("paper_id", "short_name"),
    [
        ("2022-locating-editing-factual-associations-gpt", "ROME"),
        ("2023-mass-editing-memory-transformer", "MEMIT"),
        ("2024-steering-llama-2-contrastive-activation", "CAA"),
        ("2024-language-specific-neurons-key-multilingual", "LAPE"),
    ],
)
def test_papers_that_introduce_a_short_name_carry_it(papers, paper_id, short_name):
    assert short_name in next(p for p in papers if p.id == paper_id).aka


def test_every_circuit_discovery_paper_has_the_circuit_object(papers):
    """The rule of docs/data-quality.md: what circuit discovery finds is a circuit."""
    missing = [
        p.id for p in papers if "circuit-discovery" in p.locate and "circuit" not in p.objects
    ]
    assert missing == []
    assert sum("circuit" in p.objects for p in papers) >= 13
