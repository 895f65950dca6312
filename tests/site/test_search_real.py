"""The explorer's search on the real index, in headless Chromium: what a researcher types
(an author's surname, a method's short name, a taxonomy alias) finds the right papers first.

The site is built from the repository's own papers/ and taxonomy/ and opened from disk
(file://), as a reader who downloaded it would. Expected papers are named here by hand, from
the entries (who wrote them, what they introduce, how they are tagged), never read back from
the search code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from site_support import REPO

from mi_atlas.index import load_index

pytestmark = pytest.mark.browser

ROME = "2022-locating-editing-factual-associations-gpt"
MEMIT = "2023-mass-editing-memory-transformer"
ARDITI = "2024-refusal-language-models-mediated-single"
CAA = "2024-steering-llama-2-contrastive-activation"
LAPE = "2024-language-specific-neurons-key-multilingual"
KV_REDUCTION = "2024-attention-score-need-token-importance"  # "... in KV Cache Reduction"


@pytest.fixture(scope="module")
def papers(taxonomy):
    return {p.id: p for p in load_index(REPO / "papers", taxonomy).papers}


def results(page, site: Path, query: str) -> list[str]:
    page.fill("#mi-q", "")
    page.fill("#mi-q", query)
    while page.is_visible("#mi-more"):  # every match, not the first page of 50
        page.click("#mi-more")
    return page.eval_on_selector_all(
        "#mi-results li.mi-result[data-id]", "els => els.map(e => e.dataset.id)"
    )


@pytest.fixture(scope="module")
def explorer(browser, real_site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto((real_site / "explorer.html").as_uri())
    page.wait_for_selector("#mi-explorer[data-ready='true']")
    yield page
    context.close()


def test_the_placeholder_says_what_is_searched(explorer):
    placeholder = explorer.get_attribute("#mi-q", "placeholder")
    assert all(word in placeholder for word in ("titles", "authors", "ROME", "abstracts"))


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("ROME", [ROME]),  # short names the papers introduce (aka)
        ("MEMIT", [MEMIT]),
        ("CAA", [CAA]),
        ("LAPE", [LAPE]),
        ("causal tracing", [ROME]),  # ROME's own name for its method, before the alias's papers
        ("StreamingLLM", ["2024-efficient-streaming-language-models-attention"]),
        ("Libovicky", ["2020-language-neutrality-pre-trained-multilingual"]),  # accents folded
    ],
)
def test_a_name_finds_its_paper_first(explorer, real_site, query, first):
    found = results(explorer, real_site, query)
    assert found[: len(first)] == first, found[:5]


@pytest.mark.parametrize(("surname", "at_least"), [("Arditi", 2), ("Meng", 5), ("Nanda", 5)])
def test_a_surname_lists_that_authors_papers_first(explorer, real_site, papers, surname, at_least):
    found = results(explorer, real_site, surname)
    by_them = {i for i, p in papers.items() if any(surname in a.split() for a in p.authors)}
    assert set(found[: len(by_them)]) == by_them and len(by_them) >= at_least, found[:8]
    if surname == "Arditi":
        assert ARDITI in by_them
    if surname == "Meng":
        assert {ROME, MEMIT} <= by_them


@pytest.mark.parametrize(
    ("query", "axis", "node"),
    [
        ("SAE", "objects", "sae-feature"),
        ("ACDC", "locate", "circuit-discovery"),
        ("activation patching", "locate", "causal-attribution"),
        ("logit lens", "locate", "vocab-projection"),
        ("ActAdd", "steer", "vector-arithmetic"),
    ],
)
def test_a_taxonomy_alias_finds_every_paper_of_its_node(
    explorer, real_site, papers, query, axis, node
):
    found = results(explorer, real_site, query)
    tagged = {i for i, p in papers.items() if node in getattr(p, axis)}
    # Every paper of the node, and those first (a title that says it may add more after them).
    assert set(found[: len(tagged)]) == tagged and len(tagged) >= 3, (len(tagged), found[:5])


def test_induction_is_not_reduction(explorer, real_site, papers):
    found = results(explorer, real_site, "induction")
    assert KV_REDUCTION not in found
    assert found[0] in {
        "2022-context-learning-induction-heads",
        "2024-needs-go-right-induction-head",
    }
    assert all(
        "induction" in papers[i].title.lower()
        or "induct" in " ".join(papers[i].aka).lower()
        or any(w.startswith("induction") for w in papers[i].title.lower().split())
        for i in found
    ), found


def test_a_typo_finds_the_word_when_nothing_matches_exactly(explorer, real_site):
    assert ARDITI in results(explorer, real_site, "refusl")[:5]


def test_an_author_name_is_a_link_to_their_papers(explorer, real_site, papers):
    results(explorer, real_site, "ROME")
    explorer.click(f"li[data-id='{ROME}'] a.mi-author >> text=David Bau")
    assert explorer.input_value("#mi-q") == "David Bau"
    found = explorer.eval_on_selector_all(
        "#mi-results li.mi-result[data-id]", "els => els.map(e => e.dataset.id)"
    )
    # Every paper with a David Bau among its authors, and only those.
    assert set(found) == {i for i, p in papers.items() if "David Bau" in p.authors} >= {ROME, MEMIT}
    assert "search=David+Bau" in explorer.evaluate("location.search")


def test_results_link_to_runnable_methods_and_code(explorer, real_site):
    results(explorer, real_site, "ROME")
    item = f"li[data-id='{ROME}']"
    runs = explorer.eval_on_selector_all(
        f"{item} a.mi-run", "els => els.map(e => e.getAttribute('href'))"
    )
    assert any(href.endswith("taxonomy/locate/causal-attribution.html") for href in runs), runs
    assert any(href.endswith("taxonomy/steer/targeted-optimization.html") for href in runs), runs
    assert explorer.get_attribute(f"{item} a.mi-code", "href") == "https://github.com/kmeng01/rome"


def test_a_paper_page_links_its_runnable_methods_code_and_authors(real_site):
    page = (real_site / "papers" / f"{ROME}.html").read_text(encoding="utf-8")
    assert 'href="../taxonomy/locate/causal-attribution.html" class="mi-run"' in page
    assert 'href="../taxonomy/steer/targeted-optimization.html" class="mi-run"' in page
    assert "▶ runnable method: Causal attribution" in page
    assert "Also known as: <strong>ROME</strong>" in page
    assert 'href="https://github.com/kmeng01/rome"' in page
    assert 'href="../explorer.html?search=Kevin+Meng" class="mi-author"' in page


def test_feed_entries_carry_a_summary_and_the_real_added_dates(real_site, papers):
    import xml.etree.ElementTree as ET

    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(real_site / "feeds" / "recent.xml").getroot()
    entries = feed.findall(f"{atom}entry")
    assert entries
    for entry in entries:
        paper_id = entry.findtext(f"{atom}id").rsplit("/", 1)[-1].removesuffix(".html")
        paper_id = paper_id.removeprefix("urn:mi-atlas:paper:")
        paper = papers[paper_id]
        summary = entry.findtext(f"{atom}summary")
        assert summary and f"{paper.venue} {paper.year}" in summary, paper_id
        assert entry.findtext(f"{atom}updated").startswith(paper.added.isoformat())
