"""One definition of "the same paper" (`mi_atlas.identity`) and one merge (`importers.merge`),
shared by `check`, `add` and both importers."""

from __future__ import annotations

from click.testing import CliRunner
from helpers import valid_entry, write_yaml

from mi_atlas import identity
from mi_atlas.cli import cli
from mi_atlas.importers.merge import Conflict, merge_entry


def test_keys_normalise_each_identifier():
    keys = identity.keys_of(
        {
            "arxiv": "2406.11717v2",
            "doi": "10.18653/V1/2021.EMNLP-MAIN.446",
            "openreview": "NpsVSN6o4ul",
            "acl": "2024.acl-long.483",
            "url": "http://www.example.org/paper/",
            "title": "Refusal in {LLMs}: Is Mediated!",
        }
    )
    assert keys == [
        ("arxiv", "2406.11717"),
        ("doi", "10.18653/v1/2021.emnlp-main.446"),
        ("openreview", "npsvsn6o4ul"),
        ("acl", "2024.acl-long.483"),
        ("url", "example.org/paper"),
        ("title", "refusal in llms is mediated"),
    ]


def test_a_link_less_entry_has_no_url_key_and_papers_work_like_data():
    assert [kind for kind, _ in identity.keys_of({"title": "A title"})] == ["title"]
    from mi_atlas.schema import Paper

    paper = Paper.model_validate(valid_entry())
    assert identity.keys_of(paper) == identity.keys_of(paper.model_dump())


def test_arxiv_url_and_arxiv_id_are_one_url_key():
    a = identity.keys_of({"url": "https://arxiv.org/pdf/2406.11717v3.pdf"})
    b = identity.keys_of({"url": "https://arxiv.org/abs/2406.11717"})
    assert a == b == [("url", "arxiv:2406.11717")]


def test_index_finds_each_owner_once_strong_evidence_first():
    index: identity.IdentityIndex[str] = identity.IdentityIndex()
    index.add("a", identity.keys_of({"arxiv": "2401.00001", "title": "Alpha paper"}))
    index.add("b", identity.keys_of({"doi": "10.1/x", "title": "Beta paper"}))
    found = index.find(
        identity.keys_of({"doi": "10.1/X", "title": "Alpha Paper", "arxiv": "2401.00001v1"})
    )
    assert found == [("arxiv", "a"), ("doi", "b")]
    assert index.find(identity.keys_of({"title": "Gamma"})) == []


def test_strong_conflict_and_title_spellings():
    assert identity.strong_conflict({"arxiv": "2401.00001"}, {"arxiv": "2401.00002"}) == "arxiv"
    assert identity.strong_conflict({"arxiv": "2401.00001v2"}, {"arxiv": "2401.00001"}) is None
    assert identity.strong_conflict({"doi": "10.1/A"}, {"arxiv": "2401.00001"}) is None
    assert identity.titles_match(
        "Locating and Editing Factual Associations in GPT",
        "Locating and editing factual associations in GPT: a study",
    )
    assert not identity.titles_match("Sparse autoencoders", "Dense autoencoders")


def test_duplicates_pairs_each_later_entry_with_the_first():
    entries = [
        {"id": "a", "title": "One", "openreview": "pH3XAQME6c"},
        {"id": "b", "title": "Two", "openreview": "ph3xaqme6c"},
        {"id": "c", "title": "one"},
    ]
    pairs = identity.duplicates(entries)
    assert [(f["id"], s["id"], kind) for f, s, kind in pairs] == [
        ("a", "b", "openreview"),
        ("a", "c", "title"),
    ]


def test_check_and_add_use_the_same_keys(tmp_path):
    """OpenReview and ACL ids are identity keys for check and add alike (not only arXiv/DOI)."""
    papers = tmp_path / "papers"
    papers.mkdir()
    for stem, title in (("2024-one", "First title"), ("2024-two", "Second title")):
        entry = valid_entry(id=stem, title=title, openreview="pH3XAQME6c", arxiv=...)
        write_yaml(papers, f"{stem}.yaml", entry | {"url": f"https://example.org/{stem}"})
    result = CliRunner().invoke(cli, ["check", "--papers", str(papers), "--json"])
    assert result.exit_code == 1
    assert '"field": "openreview"' in result.stdout and "same OpenReview id as" in result.stdout
    (papers / "2024-two.yaml").unlink()
    link = "https://openreview.net/forum?id=pH3XAQME6c"
    options = {"--papers": str(papers), "--title": "Third", "--year": "2024", "--venue": "ICLR"}
    argv = ["add", link, *(part for pair in options.items() for part in pair), "--dry-run"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert "same OpenReview id as" in result.output


# --- the one merge --------------------------------------------------------------------------


def _entry(**fields):
    base = {
        "title": "A paper",
        "year": 2024,
        "venue": "ICLR",
        "url": "https://example.org/a",
        "objects": [],
        "locate": [],
        "steer": [],
        "goals": [],
        "provenance": [],
    }
    return base | fields


def test_merge_keeps_title_year_venue_and_fills_gaps():
    kept = _entry(authors=[], needs=["link"], url=None)
    incoming = _entry(
        year=2023,
        venue="NeurIPS",
        url="https://arxiv.org/abs/2401.00001",
        arxiv="2401.00001",
        authors=["Ada Lovelace"],
        bibtex={"pages": "1--2"},
        provenance=[{"source": "x.bib", "line": 3}],
    )
    result = merge_entry(kept, incoming)
    assert result.filled == ["url", "arxiv", "authors", "bibtex.pages", "provenance line 3"]
    assert result.conflicts == [
        Conflict("year", "2024", "2023"),
        Conflict("venue", "ICLR", "NeurIPS"),
    ]
    assert result.data["year"] == 2024 and result.data["venue"] == "ICLR"
    assert result.data["needs"] == []  # the link is settled
    assert kept["url"] is None  # inputs are not changed


def test_merge_preprint_venue_is_no_conflict_and_reimport_fills_nothing():
    kept = _entry(provenance=[{"source": "x.bib", "line": 3}])
    again = merge_entry(kept, _entry(venue="arXiv", provenance=[{"source": "x.bib", "line": 3}]))
    assert again.filled == [] and again.conflicts == []


def test_merge_tags_curated_never_changed_same_import_united():
    kept = _entry(objects=["neuron"], locate=[])
    incoming = _entry(objects=["attention-head", "neuron"], locate=["probing"])
    curated = merge_entry(kept, incoming)
    assert curated.data["objects"] == ["neuron"] and curated.data["locate"] == ["probing"]
    assert curated.conflicts == [Conflict("objects", "neuron", "attention-head, neuron")]
    listed = merge_entry(kept, incoming, same_import=True)
    assert listed.data["objects"] == ["neuron", "attention-head"]  # primary stays first
    assert listed.conflicts == [Conflict("objects", "neuron", "attention-head, neuron")]


def test_merge_fills_a_venue_the_entry_needs():
    kept = _entry(venue=None, needs=["link", "venue"], url=None)
    result = merge_entry(kept, _entry(venue="ICLR", url=None))
    assert result.data["venue"] == "ICLR" and result.data["needs"] == ["link"]
    assert result.filled == ["venue"] and result.conflicts == []
