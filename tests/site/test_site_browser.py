"""The built site in headless Chromium: the explorer's filters, search, URL state and copy
buttons, the matrix, keyboard use, console errors on every page, and hostile entries.

Expected results are computed here in Python from the entries themselves, never read back
from the explorer's own code.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from rapidfuzz.distance import Levenshtein
from site_support import watch

from mi_atlas.exporters.bibtex import to_bibtex
from mi_atlas.site.catalog import newest_first

pytestmark = pytest.mark.browser


# -- expected results, from the entries ---------------------------------------------------


def tokens(text: str) -> list[str]:
    """Words as the explorer's search library splits them (at spaces and punctuation), with
    case and accents folded as search.js folds them."""
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not 0x300 <= ord(ch) <= 0x36F)
    words, word = [], []
    for ch in text:
        if unicodedata.category(ch)[0] in "PZ" or ch in "\n\r":
            if word:
                words.append("".join(word).lower())
            word = []
        else:
            word.append(ch)
    if word:
        words.append("".join(word).lower())
    return words


def searched_words(site_data, p) -> list[str]:
    """Everything search.js indexes for a paper: title, short names, authors, the names and
    aliases of its tags, venue (and its full name), summary and abstract."""
    tax = site_data.taxonomy
    venue = tax.venues.by_name.get(p.venue)
    parts = [p.title, *p.aka, *p.authors, p.venue, venue.full if venue else ""]
    for axis in ("objects", "locate", "steer", "goals"):
        for tag in getattr(p, axis):
            node = tax[axis].nodes[tag]
            parts += [node.name, *node.aliases]
    parts += [p.tldr or "", p.abstract or ""]
    return tokens(" ".join(parts))


def term_matches(term: str, words: list[str], fuzzy: bool) -> bool:
    """A query term matches a word it begins (2+ letters; a single letter only the same
    word); in the fallback for a query nothing matched, a word (5+ letters) one edit away."""
    return any(
        (w.startswith(term) if len(term) >= 2 else w == term)
        or (fuzzy and len(term) >= 5 and Levenshtein.distance(term, w) <= 1)
        for w in words
    )


def search_hits(site_data, q: str) -> set[str]:
    terms = tokens(q)
    words = {p.id: searched_words(site_data, p) for p in site_data.papers}
    for fuzzy in (False, True):
        hits = {i for i, w in words.items() if all(term_matches(t, w, fuzzy) for t in terms)}
        if hits:
            return hits
    return set()


def expected(site_data, *, q: str = "", years=(None, None), venue=(), **axes) -> list[str]:
    """Ids of the papers the explorer should list, newest first (or any order when q is set)."""
    tax = site_data.taxonomy
    hits = search_hits(site_data, q) if q else None
    ids = []
    for p in newest_first(site_data.papers):
        if hits is not None and p.id not in hits:
            continue
        if years[0] is not None and p.year < years[0] or years[1] is not None and p.year > years[1]:
            continue
        if venue and p.venue not in venue:
            continue
        ok = True
        for axis, wanted in axes.items():
            tags = set(getattr(p, axis))
            tags |= {tax[axis].parent[t] for t in tags if t in tax[axis].parent}
            ok = ok and bool(tags & set(wanted))
        if ok:
            ids.append(p.id)
    return ids


# -- driving the explorer -----------------------------------------------------------------


def open_explorer(page, site_url: str, query: str = ""):
    page.goto(f"{site_url}explorer.html{query}")
    page.wait_for_selector("#mi-explorer[data-ready='true']")
    return page


def shown(page) -> list[str]:
    return page.eval_on_selector_all(
        "#mi-results li.mi-result[data-id]", "els => els.map(e => e.dataset.id)"
    )


def tick(page, axis: str, value: str):
    page.check(f"#mi-f-{axis}-{re.sub(r'[^A-Za-z0-9_-]', '_', value)}")


def query_of(page) -> dict[str, list[str]]:
    # location.search, not page.url: Playwright learns of pushState a moment later.
    return parse_qs(page.evaluate("location.search").lstrip("?"))


# -- filters and search -------------------------------------------------------------------


def test_filters_on_every_axis_give_the_right_papers(page, site_url, site_data):
    open_explorer(page, site_url)
    assert shown(page) == expected(site_data)
    tick(page, "objects", "ffn")
    tick(page, "objects", "neuron")  # two values on one axis: either
    assert shown(page) == expected(site_data, objects=["ffn", "neuron"])
    tick(page, "locate", "causal-attribution")  # another axis: both
    assert shown(page) == expected(
        site_data, objects=["ffn", "neuron"], locate=["causal-attribution"]
    )
    page.click("#mi-clear")
    tick(page, "goals", "alignment")  # a goal means any of its sub-goals
    want = expected(site_data, goals=["alignment"])
    assert shown(page) == want and len(want) > 3
    tick(page, "steer", "vector-arithmetic")
    assert shown(page) == expected(site_data, goals=["alignment"], steer=["vector-arithmetic"])
    count = page.text_content("#mi-count")
    assert count.startswith(f"{len(shown(page))} of {len(site_data.papers)} papers")
    assert page.is_hidden("#mi-more")  # every match is listed


def test_year_range_and_venue_filters(page, site_url, site_data):
    open_explorer(page, site_url)
    page.fill("#mi-from", "2022")
    page.press("#mi-from", "Tab")
    page.fill("#mi-to", "2024")
    page.press("#mi-to", "Tab")
    assert shown(page) == expected(site_data, years=(2022, 2024))
    tick(page, "venue", "NeurIPS")
    tick(page, "venue", "arXiv")
    want = expected(site_data, years=(2022, 2024), venue=("NeurIPS", "arXiv"))
    assert shown(page) == want and want


@pytest.mark.parametrize(
    "q",
    ["refusal", "nanda", "sparse heads", "Locating editing", "rank-one", "refusal a", "refusl"],
)
def test_search_over_titles_authors_and_abstracts(page, site_url, site_data, q):
    open_explorer(page, site_url)
    page.fill("#mi-q", q)
    want = expected(site_data, q=q)
    assert sorted(shown(page)) == sorted(want) and want


def test_search_combines_with_filters(page, site_url, site_data):
    open_explorer(page, site_url)
    page.fill("#mi-q", "refusal")
    tick(page, "objects", "residual-stream")
    want = expected(site_data, q="refusal", objects=["residual-stream"])
    assert sorted(shown(page)) == sorted(want) and "2024-arditi-refusal-single-direction" in want


# -- the URL ------------------------------------------------------------------------------


def test_the_url_holds_the_view_and_the_back_button_works(page, context, site_url, site_data):
    open_explorer(page, site_url)
    tick(page, "objects", "ffn")
    after_tick = shown(page)
    page.fill("#mi-q", "factual")
    page.fill("#mi-from", "2021")
    page.press("#mi-from", "Tab")
    view = shown(page)
    assert query_of(page) == {"search": ["factual"], "objects": ["ffn"], "from": ["2021"]}
    assert view == expected(site_data, q="factual", objects=["ffn"], years=(2021, None))

    # A shared link opens the same view, controls included.
    other = context.new_page()
    open_explorer(other, site_url, page.evaluate("location.search"))
    assert shown(other) == view
    assert other.input_value("#mi-q") == "factual" and other.input_value("#mi-from") == "2021"
    assert other.is_checked("#mi-f-objects-ffn")

    # Back: the year goes, then the search, then the tick.
    page.go_back()
    assert page.input_value("#mi-from") == "" and shown(page) == expected(
        site_data, q="factual", objects=["ffn"]
    )
    page.go_back()
    assert page.input_value("#mi-q") == "" and shown(page) == after_tick
    page.go_back()
    assert not page.is_checked("#mi-f-objects-ffn") and shown(page) == expected(site_data)
    page.go_forward()
    assert page.is_checked("#mi-f-objects-ffn") and shown(page) == after_tick


def test_typing_a_word_is_one_history_step(page, site_url):
    open_explorer(page, site_url)
    page.click("#mi-q")
    page.keyboard.type("sparse", delay=10)
    assert query_of(page) == {"search": ["sparse"]}
    page.go_back()
    assert page.input_value("#mi-q") == ""


# -- copy buttons -------------------------------------------------------------------------


def test_copy_bibtex_of_the_filtered_papers(page, site_url, site_data):
    open_explorer(page, site_url, "?goals=knowledge-management")
    want = expected(site_data, goals=["knowledge-management"])
    button = page.locator("#mi-copy")
    assert button.inner_text() == f"Copy BibTeX of these {len(want)} papers"
    page.wait_for_function("!document.getElementById('mi-copy').disabled")
    button.click()
    page.wait_for_function("document.getElementById('mi-copied').textContent !== ''")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    entries = [
        to_bibtex([site_data.by_id(i)], atlas_fields=False, taxonomy=site_data.taxonomy).strip()
        for i in want
    ]
    assert clipboard == "\n\n".join(entries) + "\n"


def test_copy_button_of_a_paper_bibtex_block(page, site_url, site_data):
    paper = site_data.by_id("2022-meng-locating-editing-factual")
    page.goto(f"{site_url}papers/{paper.id}.html")
    page.hover("pre.mi-bibtex")
    page.click("pre.mi-bibtex button[data-md-type='copy']")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert (
        clipboard.strip()
        == to_bibtex([paper], atlas_fields=False, taxonomy=site_data.taxonomy).strip()
    )


# -- keyboard -----------------------------------------------------------------------------


def test_filters_work_from_the_keyboard(page, site_url, site_data):
    open_explorer(page, site_url)
    page.focus("#mi-q")
    page.keyboard.press("Tab")  # the sort order
    page.keyboard.press("Tab")  # the first object
    first = page.evaluate("document.activeElement.id")
    assert first == "mi-f-objects-token-embedding"
    page.keyboard.press("Space")
    assert query_of(page) == {"objects": ["token-embedding"]}
    assert shown(page) == expected(site_data, objects=["token-embedding"])
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert shown(page) == expected(site_data, objects=["token-embedding", "residual-stream"])
    page.keyboard.press("Space")
    assert shown(page) == expected(site_data, objects=["token-embedding"])


def test_sortable_table_sorts_by_click_and_keyboard(page, site_url):
    page.goto(f"{site_url}taxonomy/goals/alignment.html")

    def years() -> list[int]:
        cells = "table.mi-sortable tbody tr td:nth-child(4)"
        return [
            int(y) for y in page.eval_on_selector_all(cells, "els => els.map(e => e.textContent)")
        ]

    page.click("table.mi-sortable th:nth-child(4) button")
    assert years() == sorted(years()) and len(set(years())) > 1
    page.focus("table.mi-sortable th:nth-child(4) button")
    page.keyboard.press("Enter")
    assert years() == sorted(years(), reverse=True)
    assert page.get_attribute("table.mi-sortable th:nth-child(4)", "aria-sort") == "descending"


# -- every page ---------------------------------------------------------------------------


def test_no_console_errors_on_any_page(context, site_url, built_site):
    page = context.new_page()
    problems = watch(page)
    paths = sorted(p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html"))
    for path in paths:
        page.goto(site_url + path, wait_until="load")
    assert len(paths) > 60
    assert not problems.all(), problems.all()[:10]


# -- hostile entries ----------------------------------------------------------------------


def test_hostile_entries_run_no_script_and_show_literally(page, site_url, site_data):
    hostile = site_data.hostile[0]
    node_name = site_data.taxonomy["objects"].nodes["circuit"].name
    pages = {
        f"papers/{hostile.id}.html": [
            hostile.title,
            hostile.abstract,
            hostile.venue,
            *hostile.authors,
        ],
        "taxonomy/objects/circuit.html": [node_name, hostile.title],
        "taxonomy/locate/circuit-discovery.html": [hostile.title],
        "taxonomy/goals/safety-reliability.html": [hostile.title],
        "index.html": [hostile.title],
        "matrix.html": [node_name],
    }
    for path, texts in pages.items():
        page.goto(site_url + path)
        assert page.evaluate("window.__pwned") is None, path
        body = " ".join(page.inner_text("article").split()).casefold()  # kickers are upper case
        for text in texts:
            assert " ".join(text.split()).casefold() in body, (path, text)
    open_explorer(page, site_url, "?search=hostile")
    assert sorted(shown(page)) == sorted(p.id for p in site_data.hostile)
    tick(page, "venue", hostile.venue)
    results = page.inner_text("#mi-results")
    for text in (hostile.title, hostile.authors[0], hostile.venue):
        assert " ".join(text.split()) in " ".join(results.split())
    assert page.inner_text("#mi-filters").count(node_name) == 1
    assert page.evaluate("window.__pwned") is None
    assert not page.problems.errors


# -- from disk ----------------------------------------------------------------------------


def test_explorer_works_from_a_file_url(context, built_site, site_data):
    page = context.new_page()
    problems = watch(page)
    url = Path(built_site, "explorer.html").as_uri()
    page.goto(url + "?objects=ffn")
    page.wait_for_selector("#mi-explorer[data-ready='true']")
    assert shown(page) == expected(site_data, objects=["ffn"])
    page.fill("#mi-q", "factual")
    assert sorted(shown(page)) == sorted(expected(site_data, q="factual", objects=["ffn"]))
    assert query_of(page) == {"objects": ["ffn"], "search": ["factual"]}
    page.go_back()
    assert shown(page) == expected(site_data, objects=["ffn"])
    page.click(f"#mi-results li[data-id='{shown(page)[0]}'] h3 a")
    assert page.url.startswith(Path(built_site, "papers").as_uri())
    # Material's own site search cannot load its index from disk (it needs a server); that
    # is its error, not the explorer's. Nothing else may fail.
    others = [p for p in problems.all() if "search/search_index.js" not in p]
    assert not others, others
