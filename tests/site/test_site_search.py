"""Material's site search: its index holds the hand-written and taxonomy pages but not the
paper pages (the explorer searches papers), and a page view loads the index only when the
reader goes to the search box (assets/search-on-demand.js)."""

from __future__ import annotations

import json

import pytest

INDEX = "search/search_index.json"


def test_paper_pages_are_not_in_materials_index(built_site, site_data):
    docs = json.loads((built_site / INDEX).read_text(encoding="utf-8"))["docs"]
    pages = {doc["location"].split("#")[0] for doc in docs}
    assert not [p for p in pages if p.startswith("papers/")]
    assert "about.html" in pages and "taxonomy/locate/probing.html" in pages
    assert "matrix.html" in pages  # the page is found, its tables of numbers are not indexed
    matrix = " ".join(d["text"] for d in docs if d["location"].startswith("matrix.html"))
    assert "Magnitude analysis" not in matrix


def test_every_page_loads_the_shim_before_materials_bundle(built_site):
    for path in [*built_site.glob("*.html"), *built_site.glob("papers/*.html")]:
        html = path.read_text(encoding="utf-8")
        shim, bundle = html.find("search-on-demand.js"), html.find("assets/javascripts/bundle.")
        assert 0 <= shim < bundle, path.name


def _watch_index(page) -> list[str]:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if INDEX in r.url else None)
    return requested


@pytest.mark.browser
def test_a_page_view_loads_the_index_only_when_the_reader_searches(page, site_url):
    requested = _watch_index(page)
    page.goto(site_url + "about.html", wait_until="networkidle")
    page.mouse.move(5, 400)
    page.wait_for_timeout(300)
    assert requested == []
    page.click(".md-search__input")
    page.keyboard.type("zoo")
    page.wait_for_selector(".md-search-result__item")
    assert len(requested) == 1
    assert page.locator(".md-search-result__item").count() > 0
    assert not page.problems.all(), page.problems.all()


@pytest.mark.browser
def test_on_a_phone_the_search_icon_loads_the_index(browser, site_url):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    requested = _watch_index(page)
    page.goto(site_url + "papers/2022-meng-locating-editing-factual.html", wait_until="networkidle")
    assert requested == []
    page.locator("label.md-header__button[for='__search']").tap()
    page.keyboard.type("taxonomy")
    page.wait_for_selector(".md-search-result__item")
    assert len(requested) == 1
    context.close()
