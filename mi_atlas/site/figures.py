"""Figures for the results on node pages: inline SVG written here, no plotting library, no network.

Two kinds: a heat-map (rows x columns of scores, e.g. layers x heads, with the planted cells
outlined and labelled) and grouped horizontal bars (a recipe's metric before / after / on the
control, a steer method's accuracies). Every figure is an `<svg role="img">` with a title and a
description, every cell or bar carries a `<title>` tooltip with its exact value, and planted
cells carry `class="mi-planted"` and `data-planted="<what>"`, so readers, screen readers and
tests can all find them. Text uses `currentColor`, so the light and dark themes both work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .html import text

# Sequential (0 -> peak) and diverging (negative red, positive blue) colour ramps.
_LOW = (247, 248, 252)
_HIGH = (49, 54, 149)
_NEG = (178, 24, 43)
PLANTED_STROKE = "#ff6f00"
SERIES_COLOURS = {
    "before": "#9e9e9e",
    "after": "#3949ab",
    "control": "#f9a825",
    "planted": "#3949ab",
    "random": "#f9a825",
    "value": "#00897b",
}


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    t = 0.0 if t != t else max(0.0, min(1.0, t))
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"rgb({r},{g},{bl})"


def _colour(value: float | None, peak: float, diverging: bool) -> str:
    if value is None or value != value or peak == 0:
        return "rgb(230,230,230)"
    if diverging and value < 0:
        return _mix(_LOW, _NEG, -value / peak)
    return _mix(_LOW, _HIGH, (value / peak) if diverging else value / peak)


def _dark(value: float | None, peak: float) -> bool:
    return value is not None and value == value and peak > 0 and abs(value) / peak > 0.55


def fmt(value: float | None) -> str:
    """A number as a figure or table shows it: 3 significant digits, or "n/a"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Grid:
    """A heat-map's data: values[r][c] (None: not scored) and the planted label of each cell."""

    rows: list[str]
    cols: list[str]
    values: list[list[float | None]]
    planted: list[list[str | None]]
    row_title: str = ""
    col_title: str = ""


def heatmap(
    grid: Grid,
    *,
    fig_id: str,
    title: str,
    description: str,
    show_values: bool | None = None,
    legend: str | None = None,
) -> str:
    """The grid as an SVG heat-map; planted cells outlined in orange and labelled.

    Values are printed in the cells when they fit (`show_values` None) or when asked;
    `legend` replaces the colour scale's description (for a categorical map)."""
    n_rows, n_cols = len(grid.rows), len(grid.cols)
    finite = [v for row in grid.values for v in row if v is not None and v == v]
    peak = max((abs(v) for v in finite), default=0.0)
    diverging = any(v < 0 for v in finite)
    cw = max(5, min(48, 640 // max(n_cols, 1)))
    ch = max(12, min(30, 360 // max(n_rows, 1)))
    if show_values is None:
        show_values = cw >= 40 and ch >= 20
    left = 12 + 7 * max((len(r) for r in grid.rows), default=1)
    longest = max((len(c) for c in grid.cols), default=1)
    rotate = longest * 6 > cw and n_cols <= 40  # long labels (edges' sites) stand slanted
    top = 34 if not rotate else 24 + int(longest * 6 * 0.7)
    overhang = int(longest * 6 * 0.7) if rotate else 0  # the last slanted label's reach
    width = max(left + cw * n_cols + 12 + overhang, 300)
    height = top + ch * n_rows + 50
    step = 1 if rotate else max(1, math.ceil(n_cols / max(1, (cw * n_cols) // 28)))
    parts = [
        f'<svg class="mi-figure mi-heatmap" role="img" aria-labelledby="{fig_id}-t {fig_id}-d" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" data-rows="{n_rows}" data-cols="{n_cols}">',
        f'<title id="{fig_id}-t">{text(title)}</title>',
        f'<desc id="{fig_id}-d">{text(description)}</desc>',
        f'<text x="{left}" y="12" font-size="11" fill="currentColor">{text(grid.col_title)}</text>',
    ]
    for c, label in enumerate(grid.cols):
        if c % step == 0:
            x = left + c * cw + cw / 2
            turn = f' transform="rotate(-45 {x:.1f} {top - 6})"' if rotate else ""
            anchor = "start" if rotate else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{top - 6}" font-size="10" text-anchor="{anchor}"{turn} '
                f'fill="currentColor">{text(label)}</text>'
            )
    for r, label in enumerate(grid.rows):
        y = top + r * ch + ch / 2 + 4
        parts.append(
            f'<text x="{left - 6}" y="{y:.1f}" font-size="10" text-anchor="end" '
            f'fill="currentColor">{text(label)}</text>'
        )
    outlines = []
    for r in range(n_rows):
        for c in range(n_cols):
            value = grid.values[r][c]
            planted = grid.planted[r][c]
            x, y = left + c * cw, top + r * ch
            tip = f"{grid.rows[r]} {grid.cols[c]}: {fmt(value)}"
            if planted:
                tip += f" (planted: {planted})"
            parts.append(
                f'<rect class="mi-cell" x="{x}" y="{y}" width="{cw}" height="{ch}" '
                f'fill="{_colour(value, peak, diverging)}" stroke="rgba(0,0,0,0.08)">'
                f"<title>{text(tip)}</title></rect>"
            )
            if show_values:
                colour = "#fff" if _dark(value, peak) else "#222"
                parts.append(
                    f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" font-size="10" '
                    f'text-anchor="middle" fill="{colour}">{text(fmt(value))}</text>'
                )
            if planted:
                # drawn after every cell, so neighbours never paint over an outline
                outlines.append(
                    f'<rect class="mi-planted" data-planted="{text(planted)}" '
                    f'aria-label="{text(f"planted {planted}: {grid.rows[r]} {grid.cols[c]}")}" '
                    f'x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" fill="none" '
                    f'stroke="{PLANTED_STROKE}" stroke-width="{2.5 if cw >= 12 else 1.5}">'
                    f"<title>{text(tip)}</title></rect>"
                )
    parts += outlines
    legend_y = top + ch * n_rows + 18
    scale = f"0 … {fmt(peak)}" if not diverging else f"−{fmt(peak)} … {fmt(peak)}"
    axes = f"{grid.row_title} × {grid.col_title}" if grid.col_title else grid.row_title
    if outlines:
        parts.append(
            f'<rect x="8" y="{legend_y - 9}" width="12" height="12" fill="none" '
            f'stroke="{PLANTED_STROKE}" stroke-width="2.5"/>'
            f'<text x="26" y="{legend_y + 1}" font-size="10" fill="currentColor">'
            f"planted (ground truth)</text>"
        )
    parts.append(
        f'<text x="8" y="{legend_y + 16}" font-size="10" fill="currentColor">'
        f"{text(axes)}; {text(legend or 'colour: ' + scale)}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    label: str  # the series: "before", "after", "control", ...
    value: float | None
    series: str = "value"  # a key of SERIES_COLOURS
    located: bool = False  # this bar is the condition that steered the located sites


def bars(
    groups: Sequence[tuple[str, Sequence[Bar]]],
    *,
    fig_id: str,
    title: str,
    description: str,
) -> str:
    """Grouped horizontal bars, one group per metric, each bar labelled with its value."""
    values = [b.value for _, group in groups for b in group if b.value is not None]
    peak = max((abs(v) for v in values if v == v), default=0.0) or 1.0
    label_w = 14  # each group's name is on its own line, its bars indented under it
    series_w = 12 + 6 * max((len(b.label) for _, g in groups for b in g), default=4)
    span = 320
    bar_h, gap = 14, 10
    longest = max((len(name) for name, _ in groups), default=4)
    width = max(label_w + series_w + span + 60, 12 + int(6.5 * longest))
    y = 8
    body = []
    for name, group in groups:
        body.append(
            f'<text x="4" y="{y + 11}" font-size="11" font-weight="700" '
            f'fill="currentColor">{text(name)}</text>'
        )
        y += 17
        for bar in group:
            v = bar.value
            w = 0.0 if v is None or v != v else span * abs(v) / peak
            colour = SERIES_COLOURS.get(bar.series, SERIES_COLOURS["value"])
            cls = "mi-bar mi-bar--located" if bar.located else "mi-bar"
            body.append(
                f'<text x="{label_w}" y="{y + 11}" font-size="10" fill="currentColor">'
                f"{text(bar.label)}</text>"
                f'<rect class="{cls}" x="{label_w + series_w}" y="{y}" width="{w:.1f}" '
                f'height="{bar_h}" fill="{colour}"'
                + (' stroke="currentColor" stroke-width="1"' if bar.located else "")
                + f"><title>{text(f'{name}, {bar.label}: {fmt(v)}')}</title></rect>"
                f'<text x="{label_w + series_w + w + 4:.1f}" y="{y + 11}" font-size="10" '
                f'fill="currentColor">{text(fmt(v))}</text>'
            )
            y += bar_h + 3
        y += gap
    height = y + 4
    return (
        f'<svg class="mi-figure mi-bars" role="img" aria-labelledby="{fig_id}-t {fig_id}-d" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{fig_id}-t">{text(title)}</title><desc id="{fig_id}-d">{text(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )
