"""The site on a phone (390 × 844 CSS pixels, as an iPhone 12-15): no page is wider than the
screen (wide tables scroll inside their own box), and the explorer shows the result count and
the first papers on the first screen, with its filters in a drawer."""

from __future__ import annotations

import pytest
from site_support import REPO

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 390, 844
PAGES = {
    "home": "index.html",
    "explorer": "explorer.html",
    "node": "taxonomy/locate/causal-attribution.html",
    "goal": "taxonomy/goals/alignment.html",
    "paper": "papers/2022-meng-locating-editing-factual.html",
    "scoreboard": "scoreboard.html",
    "matrices": "matrix.html",
    "taxonomy": "taxonomy/index.html",
    "downloads": "downloads.html",
}
# Elements wider than the screen that are fine: they scroll inside themselves, or are the
# closed filters drawer and Material's off-screen navigation drawer.
OWN_SCROLL = ".mi-table-wrap, pre, .highlight, figure, .md-sidebar, .md-search, .mi-explorer__panel"


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    yield page
    context.close()


def overflow(page) -> dict:
    return page.evaluate(
        """(own) => ({
            width: document.documentElement.scrollWidth,
            culprits: [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5 && !e.closest(own))
                .slice(0, 5)
                .map(e => e.tagName.toLowerCase() + '.' + e.className),
        })""",
        OWN_SCROLL,
    )


@pytest.mark.parametrize("name", PAGES)
def test_no_page_is_wider_than_a_phone(phone, site_url, name):
    phone.goto(site_url + PAGES[name])
    seen = overflow(phone)
    assert seen["width"] <= WIDTH, seen


def test_every_matrix_scrolls_inside_its_own_box(phone, site_url):
    phone.goto(site_url + "matrix.html")
    boxes = phone.eval_on_selector_all(
        ".mi-matrix-wrap",
        "els => els.map(e => [e.clientWidth, e.scrollWidth, getComputedStyle(e).overflowX])",
    )
    assert len(boxes) >= 4
    assert any(scroll > client for client, scroll, _ in boxes)  # some are wider than a phone
    for client, _, style in boxes:
        assert client <= WIDTH and style == "auto"


def test_the_explorer_shows_its_count_and_first_papers_on_the_first_screen(phone, site_url):
    phone.goto(site_url + "explorer.html")
    phone.wait_for_selector("#mi-explorer[data-ready='true']")
    first = phone.locator("#mi-results li.mi-result").first.bounding_box()
    count = phone.locator("#mi-count").bounding_box()
    assert count["y"] + count["height"] <= HEIGHT
    assert first["y"] < HEIGHT / 2, first  # and a good part of it shows
    sort = phone.locator("#mi-sort").bounding_box()
    assert sort["x"] >= 0 and sort["x"] + sort["width"] <= WIDTH  # the Sort menu stays on screen
    assert not phone.locator("#mi-filters").is_visible()  # the filters wait in their drawer


def test_the_filters_drawer_filters_and_says_how_many_papers(phone, site_url, site_data):
    phone.goto(site_url + "explorer.html")
    phone.wait_for_selector("#mi-explorer[data-ready='true']")
    phone.click("#mi-filters-open")
    phone.wait_for_function(
        "getComputedStyle(document.getElementById('mi-filters-panel')).transform === 'none'"
    )
    panel = phone.locator("#mi-filters-panel").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= WIDTH
    assert phone.evaluate("document.activeElement.id") == "mi-filters-close"
    phone.locator("#mi-f-objects-ffn").tap()
    tagged = sum(1 for p in site_data.papers if "ffn" in p.objects)
    assert phone.inner_text("#mi-filters-done") == f"Show {tagged} papers"
    assert phone.inner_text("#mi-filters-open") == "Filters (1)"
    phone.locator("#mi-filters-done").tap()
    phone.wait_for_function(
        "getComputedStyle(document.getElementById('mi-filters-panel')).visibility === 'hidden'"
    )
    assert phone.get_attribute("#mi-count", "data-count") == str(tagged)
    assert phone.evaluate("location.search") == "?objects=ffn"
    assert phone.evaluate("document.activeElement.id") == "mi-filters-open"
    # Escape closes it too, and nothing in the closed drawer takes the keyboard's focus.
    phone.click("#mi-filters-open")
    phone.keyboard.press("Escape")
    phone.wait_for_function(
        "getComputedStyle(document.getElementById('mi-filters-panel')).visibility === 'hidden'"
    )
    phone.focus("#mi-filters-open")
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "mi-sort"
    assert overflow(phone)["width"] <= WIDTH


def _longest_unbroken(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def test_real_pages_with_the_longest_unbroken_text_fit_a_phone(phone, real_site):
    """The real index has what the test index lacks: long source URLs, DOIs, author lists.
    The paper pages whose entries hold the longest unbroken strings, and the pages that list
    every paper, fit the screen."""
    entries = sorted(
        (REPO / "papers").glob("*.yaml"),
        key=lambda path: -_longest_unbroken(path.read_text(encoding="utf-8")),
    )
    paths = [f"papers/{path.stem}.html" for path in entries[:12]]
    paths += ["explorer.html", "matrix.html", "index.html", "taxonomy/goals/capability.html"]
    for path in paths:
        phone.goto((real_site / path).as_uri())
        seen = overflow(phone)
        assert seen["width"] <= WIDTH, (path, seen)
