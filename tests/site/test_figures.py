"""Heat-map cell labels fit their cells; the exact number stays in the cell's tooltip."""

from __future__ import annotations

import html
import re

from mi_atlas.site import figures


def test_tiny_values_in_a_heatmap_cell_are_shortened_to_fit_and_kept_in_the_tooltip():
    # an |effect| ranking's unused heads score ~1e-7 next to a peak of 47.6 (causal-attribution
    # on ioi): "3.81e-07" is wider than a 48 px cell and ran into its neighbours
    grid = figures.Grid(
        rows=["L0", "L1"], cols=["H0", "H1", "H2", "H3"],
        values=[[3.81e-07, -2.12e-04, 0.00651, 47.6], [1.0, 0.0, -7.55e-07, 1.2e6]],
        planted=[[None] * 4, [None] * 4],
    )  # fmt: skip
    svg = figures.heatmap(grid, fig_id="f", title="t", description="d", unit="u")
    cells = re.findall(r'font-size="12" text-anchor="middle" style="fill:[^"]*">([^<]*)<', svg)
    assert cells == ["4e-7", "-2e-4", "0.00651", "47.6", "1", "0", "-8e-7", "1e6"]
    # no exponent form is wider than a plain 3-digit number such as 0.00651
    assert all(len(c) <= len("0.00651") for c in cells)
    assert "L0 H0&#58; 3.81e-07</title>" in svg and "L1 H2&#58; -7.55e-07</title>" in svg


def test_a_long_measure_name_wraps_inside_the_bar_chart_instead_of_widening_it():
    # a measure's name carries what it was measured on (a recipe's held-out split, its choices):
    # on one line it widened the figure past the page, which then clipped it
    bars = [figures.Bar("before", 0.36), figures.Bar("after (located)", 0.64, 0.02, 5, "after")]
    short = figures.bars([("accuracy", bars)], fig_id="s", title="t", description="d")
    name = "test carry accuracy (" + "held-out problems in no loss and in no choice; " * 4 + ")"
    long = figures.bars([(name, bars)], fig_id="l", title="t", description="d")

    def width(svg: str) -> str:
        return re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1)

    assert width(long) == width(short)
    lines = [html.unescape(t) for t in re.findall(r'font-weight="700">([^<]*)<', long)]
    assert len(lines) >= 3 and " ".join(lines) == name
    assert max(len(line) for line in lines) * figures.CHAR <= float(width(long))
