"""Figures for run results: inline SVG written here, no plotting library, no network.

Four kinds: a heat-map (rows x columns of scores, planted cells outlined, a colour bar with the
score's unit), a ranked strip (every score as a bar in rank order, planted ones coloured: the
heat-map's replacement when most cells are planted), a site map (where a steer acted and where
its control acted, with a key) and grouped horizontal bars (before / after / control, mean ±
std). Every figure is an `<svg role="img">` with a title and a description, every cell or bar
has a `<title>` tooltip with its exact value, and planted components carry
`class="mi-planted"` and `data-planted="<role>"`, so readers, screen readers and tests find them.

Colours are CSS variables that mi-atlas.css maps to Material's palette (`--md-primary-fg-color`,
`--md-accent-fg-color`, ...), so light and dark (slate) schemes both work; a value is the
colour's opacity over the page's own background. Figures keep their drawn size (a narrow screen
scrolls them inside their box), so text set at `FONT` px is at least that on any screen.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from .html import text

FONT = 12  # px, the smallest text in any figure
CHAR = 7.2  # px, the width of one character at FONT, generously
POS, NEG, PLANTED, OTHER = "--mi-fig-pos", "--mi-fig-neg", "--mi-fig-planted", "--mi-fig-other"
SERIES = {"before": "--mi-fig-before", "after": POS, "control": NEG}


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


def fmt_cell(value: float, width: float) -> str:
    """`fmt(value)`, or one significant digit with a short exponent ("4e-7") where that does not
    fit a cell `width` px wide (the cell's tooltip keeps the full number)."""
    shown = fmt(value)
    if len(shown) * CHAR <= width - 4 or "e" not in shown:
        return shown
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _fill(var: str, opacity: float = 1.0) -> str:
    return f'style="fill:var({var});fill-opacity:{max(0.0, min(1.0, opacity)):.3f}"'


def _text(x: float, y: float, label: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{FONT}" text-anchor="{anchor}" '
        f'fill="currentColor"{extra}>{text(label)}</text>'
    )


def _svg(kind: str, fig_id: str, title: str, description: str, w: float, h: float) -> str:
    return (
        f'<svg class="mi-figure mi-{kind}" role="img" aria-labelledby="{fig_id}-t {fig_id}-d" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{fig_id}-t">{text(title)}</title><desc id="{fig_id}-d">{text(description)}</desc>'
    )


def _outline(x: float, y: float, w: float, h: float, role: str, tip: str, stroke: float) -> str:
    """A planted mark drawn wholly inside its cell: the stroke is inset by half its width."""
    inset = stroke / 2 + 0.5
    return (
        f'<rect class="mi-planted" data-planted="{text(role)}" aria-label="{text(tip)}" '
        f'x="{x + inset:.1f}" y="{y + inset:.1f}" width="{max(w - 2 * inset, 1):.1f}" '
        f'height="{max(h - 2 * inset, 1):.1f}" fill="none" style="stroke:var({PLANTED})" '
        f'stroke-width="{stroke}"><title>{text(tip)}</title></rect>'
    )


# -- heat-maps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A heat-map's data: values[r][c] (None: not scored) and the planted role of each cell."""

    rows: list[str]
    cols: list[str]
    values: list[list[float | None]]
    planted: list[list[str | None]]
    row_title: str = ""
    col_title: str = ""

    @property
    def planted_share(self) -> float:
        scored = [p for rv, rp in zip(self.values, self.planted, strict=True)
                  for v, p in zip(rv, rp, strict=True) if v is not None]  # fmt: skip
        return sum(1 for p in scored if p) / len(scored) if scored else 0.0


def heatmap(grid: Grid, *, fig_id: str, title: str, description: str, unit: str) -> str:
    """The grid as an SVG heat-map with a colour bar labelled `unit`; planted cells outlined."""
    n_rows, n_cols = len(grid.rows), len(grid.cols)
    finite = [v for row in grid.values for v in row if v is not None and math.isfinite(v)]
    peak = max((abs(v) for v in finite), default=0.0) or 1.0
    diverging = any(v < 0 for v in finite)
    cw = max(14, min(48, 640 // max(n_cols, 1)))
    ch = max(16, min(30, 360 // max(n_rows, 1)))
    show_values = cw >= 44 and ch >= 22
    left = 10 + CHAR * max((len(r) for r in grid.rows), default=1)
    longest = max((len(c) for c in grid.cols), default=1)
    rotate = longest * CHAR > cw
    step = 1 if rotate else max(1, math.ceil(longest * CHAR / cw + 0.3))
    top = 22 + (FONT + 6 if not rotate else int(longest * CHAR * 0.72) + 6)
    overhang = int(longest * CHAR * 0.72) if rotate else 0
    grid_w = cw * n_cols
    width = max(left + grid_w + 12 + overhang, 340, 16 + CHAR * (8 + len(unit)))
    bar_y = top + ch * n_rows + 16
    height = bar_y + 62
    parts = [_svg("heatmap", fig_id, title, description, width, height)]
    parts.append(_text(left, FONT + 2, grid.col_title))
    for c, label in enumerate(grid.cols):
        if c % step == 0:
            x = left + c * cw + cw / 2
            turn = f' transform="rotate(-45 {x:.1f} {top - 6})"' if rotate else ""
            parts.append(_text(x, top - 6, label, "start" if rotate else "middle", turn))
    for r, label in enumerate(grid.rows):
        parts.append(_text(left - 6, top + r * ch + ch / 2 + 4, label, "end"))
    outlines = []
    stroke = 2.5 if min(cw, ch) >= 18 else 2.0
    for r in range(n_rows):
        for c in range(n_cols):
            value, role = grid.values[r][c], grid.planted[r][c]
            x, y = left + c * cw, top + r * ch
            tip = f"{grid.rows[r]} {grid.cols[c]}: {fmt(value)}"
            if value is None or not math.isfinite(value):
                fill = _fill("--md-default-fg-color--lightest")
            else:
                fill = _fill(NEG if value < 0 else POS, abs(value) / peak)
            parts.append(
                f'<rect class="mi-cell" x="{x}" y="{y}" width="{cw}" height="{ch}" {fill} '
                f'stroke-width="0.5" style="stroke:var(--md-default-fg-color--lightest)">'
                f"<title>{text(tip + (f' (planted: {role})' if role else ''))}</title></rect>"
            )
            if show_values and value is not None:
                dark = abs(value) / peak > 0.55
                colour = "var(--md-default-bg-color)" if dark else "currentColor"
                parts.append(
                    f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" font-size="{FONT}" '
                    f'text-anchor="middle" style="fill:{colour}">{text(fmt_cell(value, cw))}</text>'
                )
            if role:  # drawn after every cell, so no neighbour paints over an outline
                where = f"planted {role}: {grid.rows[r]} {grid.cols[c]}"
                outlines.append(_outline(x, y, cw, ch, role, where, stroke))
    parts += outlines
    parts.append(_colour_bar(fig_id, 8, bar_y, 220, peak, diverging, unit))
    if outlines:  # beside the colour bar
        parts.append(_key(252, bar_y + 12, PLANTED, "planted", outline=True))
    parts.append("</svg>")
    return "".join(parts)


def _colour_bar(
    fig_id: str, x: float, y: float, w: float, peak: float, diverging: bool, unit: str
) -> str:
    """A gradient from -peak (or 0) to +peak with its ticks and, under it, the unit."""
    gid = f"{fig_id}-cb"
    if diverging:
        stops = [(0, NEG, 1), (50, NEG, 0), (50, POS, 0), (100, POS, 1)]
        ticks = [(0, f"−{fmt(peak)}"), (0.5, "0"), (1, fmt(peak))]
    else:
        stops = [(0, POS, 0), (100, POS, 1)]
        ticks = [(0, "0"), (1, fmt(peak))]
    grad = "".join(
        f'<stop offset="{o}%" style="stop-color:var({v});stop-opacity:{a}"/>' for o, v, a in stops
    )
    tick_text = "".join(
        _text(x + t * w, y + 28, label, "start" if t == 0 else "end" if t == 1 else "middle")
        for t, label in ticks
    )
    return (
        f'<g class="mi-colourbar" data-unit="{text(unit)}">'
        f'<defs><linearGradient id="{gid}">{grad}</linearGradient></defs>'
        f'<rect x="{x}" y="{y}" width="{w:.0f}" height="12" fill="url(#{gid})" '
        'style="stroke:var(--md-default-fg-color--lighter)" stroke-width="0.5"/>'
        f"{tick_text}{_text(x, y + 46, f'colour: {unit}')}</g>"
    )


def _key(x: float, y: float, var: str, label: str, *, outline: bool = False) -> str:
    swatch = (
        f'<rect x="{x}" y="{y - 11}" width="13" height="13" fill="none" '
        f'style="stroke:var({var})" stroke-width="2.5"/>'
        if outline
        else f'<rect x="{x}" y="{y - 11}" width="13" height="13" {_fill(var)}/>'
    )
    return f'<g class="mi-key">{swatch}{_text(x + 19, y, label)}</g>'


# -- a ranked strip ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    label: str
    value: float
    role: str | None  # planted role, or None


def strip(items: Sequence[Ranked], *, fig_id: str, title: str, description: str, unit: str) -> str:
    """Every score as a bar in rank order (rank 1 at the left), planted bars coloured."""
    n = len(items)
    bw = max(4, min(24, 640 // max(n, 1)))
    finite = [i.value for i in items if math.isfinite(i.value)]
    lo, hi = min([0.0, *finite]), max([0.0, *finite])  # the zero line is always in view
    hi = hi if hi > lo else lo + 1.0
    plot_h, left, top = 140, 56, 24
    width = max(left + bw * n + 16, 340)
    height = top + plot_h + 56

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / ((hi - lo) or 1.0)

    parts = [_svg("strip", fig_id, title, description, width, height)]
    parts.append(_text(8, FONT + 2, f"height: {unit}"))
    parts.append(_text(left - 6, y(hi) + 4, fmt(hi), "end"))
    parts.append(_text(left - 6, y(lo) + 4, fmt(lo), "end"))
    for k, item in enumerate(items):
        v = item.value if math.isfinite(item.value) else 0.0
        y0, y1 = sorted((y(0.0), y(v)))
        x = left + k * bw
        tip = f"rank {k + 1}: {item.label} = {fmt(item.value)}"
        attrs = f'x="{x + 0.5:.1f}" y="{y0:.1f}" width="{bw - 1}" height="{max(y1 - y0, 1):.1f}"'
        if item.role:
            tip += f" (planted: {item.role})"
            parts.append(
                f'<rect class="mi-planted" data-planted="{text(item.role)}" '
                f'aria-label="{text(f"planted {item.role}: {item.label}, rank {k + 1}")}" '
                f"{attrs} {_fill(PLANTED)}><title>{text(tip)}</title></rect>"
            )
        else:
            parts.append(
                f'<rect class="mi-bar" {attrs} {_fill(OTHER)}><title>{text(tip)}</title></rect>'
            )
    axis_y = top + plot_h + 18
    parts.append(_text(left, axis_y, "rank 1"))
    if n > 1:
        parts.append(_text(left + bw * n, axis_y, f"rank {n}", "end"))
    parts.append(_key(8, axis_y + 26, PLANTED, "planted"))
    parts.append(_key(110, axis_y + 26, OTHER, "not planted"))
    parts.append("</svg>")
    return "".join(parts)


# -- a site map ----------------------------------------------------------------------------


def sitemap(
    grid: Grid, keys: Sequence[tuple[float, str]], *, fig_id: str, title: str, description: str
) -> str:
    """A categorical grid: each cell's value picks a key (1: chosen, -1: control, 0: neither);
    planted cells are outlined and get a key of their own."""
    cw = max(16, min(40, 560 // max(len(grid.cols), 1)))
    ch = max(18, min(28, 320 // max(len(grid.rows), 1)))
    left = 10 + CHAR * max((len(r) for r in grid.rows), default=1)
    step = max(1, math.ceil(max((len(c) for c in grid.cols), default=1) * CHAR / cw + 0.3))
    top = 2 * FONT + 14
    width = max(left + cw * len(grid.cols) + 12, 340)
    key_y = top + ch * len(grid.rows) + 24
    height = key_y + 10
    parts = [_svg("sitemap", fig_id, title, description, width, height)]
    parts.append(_text(left, FONT + 2, grid.col_title))
    for c, label in enumerate(grid.cols):
        if c % step == 0:
            parts.append(_text(left + c * cw + cw / 2, top - 6, label, "middle"))
    colour = {1.0: POS, -1.0: NEG}
    outlines = []
    for r, row in enumerate(grid.rows):
        parts.append(_text(left - 6, top + r * ch + ch / 2 + 4, row, "end"))
        for c, col in enumerate(grid.cols):
            value, role = grid.values[r][c], grid.planted[r][c]
            x, y = left + c * cw, top + r * ch
            what = dict(keys).get(value or 0.0, "")
            tip = f"{row} {col}" + (f": {what}" if what else "")
            fill = _fill(colour[value], 0.85) if value in colour else 'style="fill:none"'
            parts.append(
                f'<rect class="mi-cell" x="{x}" y="{y}" width="{cw}" height="{ch}" {fill} '
                f'stroke-width="0.5" style="stroke:var(--md-default-fg-color--lighter)">'
                f"<title>{text(tip)}</title></rect>"
            )
            if role:
                outlines.append(_outline(x, y, cw, ch, role, f"planted {role}: {row} {col}", 2.5))
    parts += outlines
    x = 8.0
    for value, label in [*keys, *([(None, "planted")] if outlines else [])]:
        parts.append(_key(x, key_y, colour.get(value, PLANTED), label, outline=value is None))
        x += 30 + CHAR * len(label)
    parts.append("</svg>")
    return "".join(parts)


# -- bars ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str  # "before", "after (located)", "control: a random direction", ...
    mean: float
    std: float = 0.0
    n: int = 1
    series: str = "before"  # a key of SERIES
    located: bool = False  # this bar is the condition that steered the located sites


def bars(
    groups: Sequence[tuple[str, Sequence[Bar]]], *, fig_id: str, title: str, description: str
) -> str:
    """Grouped horizontal bars, one group per measure; each bar shows mean ± std over seeds."""
    ends = [b.mean + s for _, g in groups for b in g for s in (-b.std, b.std)]
    lo, hi = min([0.0, *ends]), max([0.0, *ends])
    hi = hi if hi > lo else lo + 1.0
    label_w = 14 + CHAR * max((len(b.label) for _, g in groups for b in g), default=6)
    span, bar_h = 300, 16
    width = label_w + span + 110
    # a measure's name carries what it was measured on and can run to a paragraph: wrapped to
    # the figure's width rather than widening it (a wide figure is scaled down or clipped)
    wrap = max(40, int((width - 8) / CHAR))

    def x(v: float) -> float:
        return label_w + span * (v - lo) / (hi - lo)

    y = 6.0
    body = []
    for name, group in groups:
        for line in textwrap.wrap(name, wrap) or [""]:
            body.append(_text(4, y + FONT, line, extra=' font-weight="700"'))
            y += FONT + 4
        y += 4
        for bar in group:
            x0, x1 = sorted((x(0.0), x(bar.mean)))
            shown = fmt(bar.mean) + (f" ± {fmt(bar.std)}" if bar.n > 1 else "")
            cls = "mi-bar mi-bar--located" if bar.located else "mi-bar"
            edge = ' style="stroke:currentColor" stroke-width="1"' if bar.located else ""
            body.append(
                _text(14, y + FONT, bar.label)
                + f'<rect class="{cls}" data-series="{bar.series}" x="{x0:.1f}" y="{y}" '
                f'width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                f"{_fill(SERIES.get(bar.series, POS))}{edge}>"
                f"<title>{text(f'{name}, {bar.label}: {shown} (n = {bar.n})')}</title></rect>"
            )
            if bar.n > 1 and bar.std > 0:
                a, b, mid = x(bar.mean - bar.std), x(bar.mean + bar.std), y + bar_h / 2
                body.append(
                    f'<path class="mi-errorbar" d="M{a:.1f} {mid}H{b:.1f}M{a:.1f} {mid - 4}'
                    f'V{mid + 4}M{b:.1f} {mid - 4}V{mid + 4}" style="stroke:currentColor" '
                    'stroke-width="1.5" fill="none"/>'
                )
            body.append(_text(max(x1, x(bar.mean + bar.std)) + 5, y + FONT, shown))
            y += bar_h + 4
        y += 10
    return _svg("bars", fig_id, title, description, width, y + 4) + "".join(body) + "</svg>"
