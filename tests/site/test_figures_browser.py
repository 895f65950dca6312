"""The result figures as a reader sees them in Chromium: on a phone, and in dark mode.

Every heat-map has a colour bar with its unit; no SVG text renders under 12 px at 390 px wide
(figures keep their drawn size and scroll inside their own box); in Material's dark scheme
(slate) a heat-map's weak cells are dark and none is near white, because cells colour with the
palette's variables over the page's own background.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

FIGURE_PAGES = (
    "taxonomy/locate/causal-attribution.html",
    "taxonomy/locate/circuit-discovery.html",
    "taxonomy/locate/magnitude-analysis.html",
    "taxonomy/steer/vector-arithmetic.html",
    "taxonomy/goals/safety-reliability.html",
)

# The rendered size of each SVG text: its font size times the SVG's scale on screen.
TEXT_SIZES = """() => [...document.querySelectorAll('svg.mi-figure')].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].map(t =>
    [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale]);
})"""

# For each heat-map cell: its fill composited over the page background, as relative luminance.
CELL_LUMINANCE = """() => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const bg = rgb(getComputedStyle(document.body).backgroundColor);
  const lum = ([r, g, b]) => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  return [...document.querySelectorAll('svg.mi-heatmap rect.mi-cell')].map(cell => {
    const style = getComputedStyle(cell);
    const a = parseFloat(style.fillOpacity);
    const fill = rgb(style.fill);
    return lum(fill.map((c, i) => a * c + (1 - a) * bg[i]));
  });
}"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    yield context.new_page()
    context.close()


def test_every_heatmap_has_a_colour_bar_with_its_unit(page, site_url):
    heatmaps = 0
    for path in FIGURE_PAGES:
        page.goto(site_url + path)
        for k in range(page.locator("svg.mi-heatmap").count()):
            svg = page.locator("svg.mi-heatmap").nth(k)
            bar = svg.locator("g.mi-colourbar")
            assert bar.count() == 1, f"{path}: heat-map {k} has no colour bar"
            unit = bar.get_attribute("data-unit")
            assert unit and f"colour: {unit}" in bar.inner_html()
            assert bar.locator("text").count() >= 3  # at least the two ends and the unit
            heatmaps += 1
        assert page.problems.all() == []
    assert heatmaps >= 2


def test_no_figure_text_is_under_12_px_on_a_phone(phone, site_url):
    for path in FIGURE_PAGES:
        phone.goto(site_url + path)
        sizes = phone.evaluate(TEXT_SIZES)
        assert sizes, f"{path}: no figure text"
        small = [(t, round(px, 1)) for t, px in sizes if px < 12]
        assert small == [], f"{path}: text under 12 px: {small[:5]}"
        # the figures scroll inside their own box: the page itself does not overflow
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path}: page is {width} px wide"


def test_heatmaps_are_dark_in_the_dark_scheme(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page = context.new_page()
    try:
        for path in FIGURE_PAGES[:2]:
            page.goto(site_url + path)
            assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"
            luminance = sorted(page.evaluate(CELL_LUMINANCE))
            assert luminance
            # weak cells stay near the dark page and strong ones are the palette's mid-tone:
            # no near-white cell (the light scheme's ramp drawn on a dark page)
            assert luminance[0] < 0.2 and luminance[-1] < 0.7, (luminance[0], luminance[-1])
    finally:
        context.close()
