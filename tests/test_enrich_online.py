"""`mi-atlas enrich` online: recorded arXiv and OpenAlex answers replayed (no network), the
disk cache that makes a rerun resume, and the one-line failure when offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner
from helpers import valid_entry

from mi_atlas.cli import cli
from mi_atlas.entries import entry_text
from mi_atlas.schema import Paper
from mi_atlas.yamlio import load_text

FIXTURES = Path(__file__).parent / "fixtures" / "enrich"
ARXIV_API = re.compile(r"https://export\.arxiv\.org/api/query\?.*")
# pyalex asks for a work by its DOI URL, percent-encoded into the path.
OPENALEX_DOI = re.compile(
    r"https://api\.openalex\.org/works/https%3A%2F%2Fdoi\.org%2F10\.18653%2Fv1%2F2024\.acl-long\.309"
)
OPENALEX_SEARCH = re.compile(r"https://api\.openalex\.org/works\?.*filter=title\.search.*")


def _write(folder: Path, **fields) -> None:
    data = valid_entry(**fields)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{data['id']}.yaml").write_text(entry_text(Paper.model_validate(data)), "utf-8")


@pytest.fixture
def papers(tmp_path) -> Path:
    folder = tmp_path / "papers"
    _write(folder, id="2024-arditi-refusal", authors=[], arxiv="2406.11717")
    _write(
        folder,
        id="2024-tang-language-specific-neurons",
        title="Language-Specific Neurons: The Key to Multilingual Capabilities in Large Language Models",
        url="https://aclanthology.org/2024.acl-long.309",
        acl="2024.acl-long.309",
        doi="10.18653/v1/2024.acl-long.309",
        venue="ACL",
        arxiv=...,
        authors=[],
    )
    _write(
        folder,
        id="2024-understanding-jailbreak-success",
        title="Understanding Jailbreak Success: A Study of Latent Space Dynamics in Large Language Models",
        url="https://openreview.net/forum?id=abcdEFGH12",
        arxiv=...,
        authors=[],
    )
    return folder


def _replay(rsps) -> None:
    rsps.add(
        responses.GET,
        ARXIV_API,
        body=(FIXTURES / "arxiv_query.xml").read_bytes(),
        content_type="application/atom+xml",
    )
    rsps.add(
        responses.GET, OPENALEX_DOI, json=json.loads((FIXTURES / "openalex_doi.json").read_text())
    )
    rsps.add(
        responses.GET,
        OPENALEX_SEARCH,
        json=json.loads((FIXTURES / "openalex_title.json").read_text()),
    )


def _enrich(papers: Path, cache: Path, *extra: str):
    result = CliRunner().invoke(
        cli, ["enrich", "--papers", str(papers), "--cache", str(cache), "--json", *extra]
    )
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def _entry(papers: Path, paper_id: str) -> dict:
    return load_text((papers / f"{paper_id}.yaml").read_text(encoding="utf-8"))


def test_each_source_fills_what_it_knows_best(papers, tmp_path):
    cache = tmp_path / "cache"
    with responses.RequestsMock() as rsps:
        _replay(rsps)
        result, doc = _enrich(papers, cache)
        arxiv_calls = [c for c in rsps.calls if "arxiv.org" in c.request.url]
    assert result.exit_code == 0, result.output
    assert len(arxiv_calls) == 1 and "id_list=2406.11717" in arxiv_calls[0].request.url

    # arXiv, by the entry's own arXiv id: the authors in order.
    arditi = _entry(papers, "2024-arditi-refusal")
    assert arditi["authors"][0] == "Andy Arditi" and len(arditi["authors"]) == 7
    assert arditi["provenance"][-1]["source"].endswith("https://arxiv.org/abs/2406.11717)")

    # OpenAlex, by DOI: authors, ORCID iDs and the preprint's arXiv id.
    tang = _entry(papers, "2024-tang-language-specific-neurons")
    assert tang["authors"][:2] == ["Tianyi Tang", "Wenyang Luo"] and len(tang["authors"]) == 8
    assert tang["orcids"] == {"Tianyi Tang": "0000-0002-4910-4328"}
    assert tang["arxiv"] == "2402.16438"

    # OpenAlex, by exact title: written, and listed for a curator (a title is weaker evidence).
    jailbreak = _entry(papers, "2024-understanding-jailbreak-success")
    assert jailbreak["authors"] == ["Sarah Ball", "Frauke Kreuter", "Nina Panickssery"]
    assert jailbreak["arxiv"] == "2406.09289"
    review = [(r["id"], r["field"], r["written"]) for r in doc["review"]]
    assert review == [("2024-understanding-jailbreak-success", "authors", True)]
    assert {m["id"] for m in doc["merged"]} == {
        "2024-arditi-refusal",
        "2024-tang-language-specific-neurons",
        "2024-understanding-jailbreak-success",
    }


def test_a_title_that_does_not_match_exactly_gives_no_facts(papers, tmp_path):
    for path in papers.glob("2024-[at]*.yaml"):
        path.unlink()
    data = _entry(papers, "2024-understanding-jailbreak-success")
    data["title"] = "Understanding Jailbreak Attacks"  # a prefix of the decoy, not its title
    (papers / "2024-understanding-jailbreak-success.yaml").write_text(
        entry_text(Paper.model_validate(data)), "utf-8"
    )
    with responses.RequestsMock() as rsps:
        _replay(rsps)
        rsps.assert_all_requests_are_fired = False
        result, doc = _enrich(papers, tmp_path / "cache")
    assert result.exit_code == 0 and doc["merged"] == [] and doc["records"] == 0


def test_answers_are_cached_so_a_rerun_asks_nothing(papers, tmp_path):
    cache = tmp_path / "cache"
    with responses.RequestsMock() as rsps:
        _replay(rsps)
        _enrich(papers, cache, "--dry-run")
    assert len(list(cache.rglob("*.json"))) == 3  # one arXiv id, one DOI, one title
    with responses.RequestsMock() as rsps:  # nothing registered: any request would fail
        result, doc = _enrich(papers, cache)
        assert len(rsps.calls) == 0
    assert result.exit_code == 0, result.output
    assert len(doc["merged"]) == 3


def test_offline_is_one_line_exit_1_and_nothing_written(papers, tmp_path):
    before = {p.name: p.read_bytes() for p in papers.iterdir()}
    cache = tmp_path / "cache"
    with responses.RequestsMock():  # every request fails to connect
        result, doc = _enrich(papers, cache)
    assert result.exit_code == 1 and doc is None and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: cannot reach export.arxiv.org (ConnectionError): check the network "
        "connection; nothing was written"
    ]
    assert {p.name: p.read_bytes() for p in papers.iterdir()} == before
    assert not cache.exists()


def test_nothing_to_look_up_asks_nothing(tmp_path):
    folder = tmp_path / "papers"
    _write(folder)  # has authors and an arXiv id
    with responses.RequestsMock() as rsps:
        result, doc = _enrich(folder, tmp_path / "cache")
        assert len(rsps.calls) == 0
    assert result.exit_code == 0 and doc["records"] == 0
