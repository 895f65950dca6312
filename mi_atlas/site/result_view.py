"""One run's JSON as a reader sees it: figures and a small table of its numbers.

The shape of a result decides the view, not the method's name, so a new method gets a page
without a line here:
- scores over sites (a locate method) -> a heat-map per site kind (layers x heads, layers x
  neurons, layers x positions, ...), the planted cells outlined, and a table of the top sites
  and of where every planted site ranks;
- a recipe (`metric` with before / after / control) -> bars for the metric and every collateral
  metric, and a table of the same numbers;
- anything else (a steer method) -> bars for each group of numbers it reports, a map of the
  sites it steered next to the random control with the planted sites outlined, and a table of
  its numbers.
Everything shown is read from the JSON document; `recovery` adds only ranks and AUCs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import figures, recovery
from .figures import Bar, Grid, fmt
from .html import text

MAX_CELLS = 6000  # a bigger grid is shown as its top sites only
MAX_ROWS = 24  # rows of a numbers table
HEAD_LIKE = ("head_out", "q", "k", "v", "pattern")
FIELDS = ("layer", "head", "index", "pos")
PREFIX = {"layer": "L", "head": "H", "index": "#", "pos": "@"}
# TransformerLens hook of the layer-level site kinds (reference_impls/addressing.py)
HOOKS = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
}
TITLES = {"layer": "layer", "head": "head", "index": "neuron / feature", "pos": "position"}


def render(doc: dict[str, Any], card: dict[str, Any] | None, fig_id: str) -> tuple[str, str]:
    """(figures HTML, table HTML) for one `mi-atlas run --json` document."""
    truth = doc.get("ground_truth") or {}
    result = doc.get("result") or {}
    blocks = list(recovery.score_blocks(result))
    metric = result.get("metric") if isinstance(result, dict) else None
    if blocks:
        return _scores_view(blocks, truth, fig_id)
    if isinstance(metric, dict) and {"before", "after", "control"} <= metric.keys():
        return _recipe_view(doc, result, truth, card, fig_id)
    return _generic_view(doc, result, truth, card, fig_id)


# -- locate: scores over sites -------------------------------------------------------------


def grids(block: recovery.ScoreBlock, truth: dict[str, Any]) -> Iterator[tuple[str, Grid]]:
    """One grid per site kind in the block: (kind, grid); edges give one upstream x downstream
    grid."""
    if block.edges:
        yield "edge", _edge_grid(block, truth)
        return
    kinds: dict[str, list[int]] = {}
    for i, site in enumerate(block.sites):
        kinds.setdefault(str(site.get("kind")), []).append(i)
    for kind, members in kinds.items():
        varying = [f for f in FIELDS if len({block.sites[i].get(f) for i in members}) > 1]
        col = next((f for f in ("index", "head", "pos", "layer") if f in varying), None)
        row_fields = [f for f in varying if f != col]
        cols = sorted({block.sites[i].get(col) for i in members}, key=_order) if col else [None]
        rows = sorted(
            {tuple(block.sites[i].get(f) for f in row_fields) for i in members}, key=_order
        )
        if len(rows) * len(cols) > MAX_CELLS:
            continue
        r_index = {r: k for k, r in enumerate(rows)}
        c_index = {c: k for k, c in enumerate(cols)}
        values: list[list[float | None]] = [[None] * len(cols) for _ in rows]
        planted: list[list[str | None]] = [[None] * len(cols) for _ in rows]
        for i in members:
            site = block.sites[i]
            r = r_index[tuple(site.get(f) for f in row_fields)]
            c = c_index[site.get(col) if col else None]
            values[r][c] = block.scores[i]
            planted[r][c] = block.planted(i, truth)
        yield (
            kind,
            Grid(
                rows=[_label(row_fields, r) or kind for r in rows],
                cols=[_label([col], (c,)) if col else "" for c in cols],
                values=values,
                planted=planted,
                row_title=" ".join(TITLES[f] for f in row_fields) or kind,
                col_title=TITLES.get(col, "") if col else "",
            ),
        )


def _edge_grid(block: recovery.ScoreBlock, truth: dict[str, Any]) -> Grid:
    ups = list(dict.fromkeys(str(e["upstream"]["label"]) for e in block.sites))
    downs = list(dict.fromkeys(str(e["downstream"]["label"]) for e in block.sites))
    values: list[list[float | None]] = [[None] * len(downs) for _ in ups]
    planted: list[list[str | None]] = [[None] * len(downs) for _ in ups]
    for i, edge in enumerate(block.sites):
        r, c = (
            ups.index(str(edge["upstream"]["label"])),
            downs.index(str(edge["downstream"]["label"])),
        )
        values[r][c] = block.scores[i]
        planted[r][c] = block.planted(i, truth)
    return Grid(ups, downs, values, planted, "upstream (writes)", "downstream (reads)")


def _order(value: Any) -> tuple:
    items = value if isinstance(value, tuple) else (value,)
    return tuple((v is None, v if isinstance(v, int | float) else str(v)) for v in items)


def _label(fields: list[str], values: tuple) -> str:
    return " ".join(f"{PREFIX[f]}{v}" for f, v in zip(fields, values, strict=True) if v is not None)


def _scores_view(
    blocks: list[recovery.ScoreBlock], truth: dict[str, Any], fig_id: str
) -> tuple[str, str]:
    figs, tables = [], []
    for b, block in enumerate(blocks[:3]):
        meaning = block.meaning or "score per site"
        for g, (kind, grid) in enumerate(grids(block, truth)):
            marked = sum(1 for row in grid.planted for p in row if p)
            figs.append(
                _figure(
                    figures.heatmap(
                        grid,
                        fig_id=f"{fig_id}-{b}-{g}",
                        title=f"{meaning} ({kind} sites)",
                        description=f"Heat-map of {len(block.sites)} scores over {kind} sites, "
                        f"{grid.row_title} by {grid.col_title}; {marked} planted cells outlined.",
                    ),
                    f"{text(meaning)} — {_over(kind)}; "
                    f"{marked} planted cell{'s' if marked != 1 else ''} outlined.",
                )
            )
        tables.append(_ranking_table(block, truth))
    return "".join(figs), "".join(tables)


def _ranking_table(block: recovery.ScoreBlock, truth: dict[str, Any]) -> str:
    ranked = recovery.ranking(block, truth)
    order = sorted(
        range(len(block.scores)),
        key=lambda i: (block.scores[i] != block.scores[i], -_finite(block.scores[i]), i),
    )
    show = order[:8]
    if ranked:
        # then the planted sites that rank lowest: where a method misses, if it does
        planted_idx = [i for i in order if block.planted(i, truth) and i not in show]
        show += planted_idx[-4:]
    rows = []
    rank_of = {i: r + 1 for r, i in enumerate(order)}
    for i in sorted(show, key=lambda i: rank_of[i]):
        label = block.planted(i, truth)
        mark = f'<span class="mi-planted-tag">planted: {text(label)}</span>' if label else ""
        rows.append(
            f'<tr class="{"mi-planted-row" if label else ""}"><td>{rank_of[i]}</td>'
            f"<td><code>{text(block.sites[i].get('label'))}</code> {mark}</td>"
            f'<td class="mi-num">{fmt(block.scores[i])}</td></tr>'
        )
    summary = ""
    if ranked:
        auc = "n/a" if ranked.auc is None else f"{ranked.auc:.3f}"
        what = "edges" if block.edges else "sites"
        summary = (
            f'<p class="mi-result-metric">{_ranks(ranked, what)} of {ranked.n_sites}; '
            f"ROC AUC of the scores against the planted {what}: <strong>{auc}</strong>.</p>"
        )
    else:
        summary = (
            '<p class="mi-result-metric">None of these sites is named by the model\'s ground '
            "truth, so no rank or AUC is computed for them.</p>"
        )
    return (
        summary + '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        f"<caption>{text(block.meaning or 'Scores')} ({len(block.sites)} sites)</caption>"
        '<thead><tr><th scope="col">rank</th><th scope="col">site</th>'
        f'<th scope="col">score</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _over(kind: str) -> str:
    return "edges between sites" if kind == "edge" else f"<code>{text(kind)}</code> sites"


def _ranks(ranked: recovery.Ranking, what: str = "sites") -> str:
    """'Planted sites rank 1, 2, 4' or, for many, their count, worst rank and how many lead."""
    ranks = [r for _, _, r in ranked.planted]
    if len(ranks) <= 8:
        return f"Planted {what} rank {', '.join(map(str, ranks))}"
    top = sum(1 for r in ranks if r <= len(ranks))
    return (
        f"{len(ranks)} planted {what}: {top} of them are among the top {len(ranks)}, "
        f"the lowest ranks {max(ranks)}"
    )


def _finite(value: float) -> float:
    return value if value == value else float("-inf")


# -- recipes: metric before / after / control ----------------------------------------------


def _recipe_view(
    doc: dict[str, Any],
    result: dict[str, Any],
    truth: dict[str, Any],
    card: dict[str, Any] | None,
    fig_id: str,
) -> tuple[str, str]:
    measures = [result["metric"], *(m for m in result.get("collateral") or [] if _measure(m))]
    groups = [
        (
            str(m.get("name") or "metric"),
            [
                Bar("before", _float(m.get("before")), "before"),
                Bar("after (located)", _float(m.get("after")), "after", located=True),
                Bar("control (random)", _float(m.get("control")), "control"),
            ],
        )
        for m in measures
    ]
    figs = [
        _figure(
            figures.bars(
                groups,
                fig_id=f"{fig_id}-bars",
                title=f"{result.get('recipe', doc.get('name'))}: before, after, control",
                description="For each metric: its value before steering, after steering the "
                "located sites, and after the same steer on same-size random sites.",
            ),
            "Each metric before steering, after steering the <strong>located</strong> sites, "
            "and under the same-size random control.",
        )
    ]
    site_map = _site_map(result, truth, card, f"{fig_id}-sites")
    if site_map:
        figs.append(site_map)
    rows = "".join(
        f'<tr><th scope="row">{text(m.get("name"))}</th><td class="mi-num">{fmt(_float(m.get("before")))}</td>'
        f'<td class="mi-num">{fmt(_float(m.get("after")))}</td>'
        f'<td class="mi-num">{fmt(_float(m.get("control")))}</td>'
        f"<td>{'higher' if m.get('higher_is_better', True) else 'lower'}</td></tr>"
        for m in measures
    )
    facts = [
        ("locate", result.get("locate")),
        ("steer", result.get("steer")),
        ("model restored bit for bit afterwards", result.get("restored")),
        ("recovered the planted sites", doc.get("recovered")),
    ]
    table = (
        '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        "<caption>Metric before, after and on the control</caption>"
        '<thead><tr><th scope="col">metric</th><th scope="col">before</th>'
        '<th scope="col">after</th><th scope="col">control</th>'
        f'<th scope="col">better</th></tr></thead><tbody>{rows}</tbody></table></div>'
        + _facts(facts)
    )
    return "".join(figs), table


def _measure(value: Any) -> bool:
    return isinstance(value, dict) and {"before", "after", "control"} <= value.keys()


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# -- steer methods and anything else -------------------------------------------------------


def _generic_view(
    doc: dict[str, Any],
    result: Any,
    truth: dict[str, Any],
    card: dict[str, Any] | None,
    fig_id: str,
) -> tuple[str, str]:
    figs = []
    groups = [
        (name, [Bar(k, v, "planted" if "planted" in k else "value") for k, v in numbers])
        for name, numbers in _number_groups(result)
    ]
    if groups:
        figs.append(
            _figure(
                figures.bars(
                    groups[:6],
                    fig_id=f"{fig_id}-bars",
                    title=f"{doc.get('name')}: measured numbers",
                    description="Each group of numbers the run reports, one bar per condition.",
                ),
                "The numbers the run reports, one bar per condition.",
            )
        )
    site_map = _site_map(result, truth, card, f"{fig_id}-sites")
    if site_map:
        figs.append(site_map)
    for k, (path, grid) in enumerate(_record_grids(result)):
        figs.append(
            _figure(
                figures.heatmap(
                    grid,
                    fig_id=f"{fig_id}-records-{k}",
                    title=f"{doc.get('name')}: {path}",
                    description=f"One row per entry of {path}, one column per number it holds.",
                    show_values=True,
                ),
                f"Each entry of <code>{text(path)}</code> (a row) and its numbers (columns).",
            )
        )
    rows = [(path, value) for path, value in _leaves(result)][:MAX_ROWS]
    body = "".join(
        f'<tr><th scope="row"><code>{text(path)}</code></th><td class="mi-num">{text(_show(value))}</td></tr>'
        for path, value in rows
    )
    table = (
        '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        "<caption>The run's numbers</caption>"
        '<thead><tr><th scope="col">key</th><th scope="col">value</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
        + _facts([("recovered the planted structure", doc.get("recovered"))])
    )
    return "".join(figs), table


def _number_groups(result: Any, path: str = "") -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Dicts whose values are all numbers (2 to 12 of them), e.g. accuracy per condition."""
    if not isinstance(result, dict):
        return
    numbers = [
        (str(k), float(v))
        for k, v in result.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if path and 2 <= len(numbers) <= 12 and len(numbers) == len(result) and _one_scale(numbers):
        yield path, numbers
        return
    for key, value in result.items():
        if isinstance(value, dict) and not recovery.is_site(value):
            yield from _number_groups(value, f"{path}.{key}" if path else str(key))


def _record_grids(result: Any, path: str = "") -> Iterator[tuple[str, Grid]]:
    """Lists of 2 to 40 records with the same numeric fields (e.g. one per matched SAE
    feature): rows named by their integer fields, columns by their other numbers."""
    if not isinstance(result, dict):
        return
    for key, value in result.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict) and not recovery.is_site(value):
            yield from _record_grids(value, where)
        if not (isinstance(value, list) and 2 <= len(value) <= 40):
            continue
        if not all(isinstance(v, dict) and not recovery.is_site(v) for v in value):
            continue
        fields = list(value[0])
        ids = [f for f in fields if all(type(v.get(f)) is int for v in value)]
        cols = [
            f
            for f in fields
            if f not in ids and all(isinstance(v.get(f), float | int) for v in value)
        ]
        numbers = [(f, float(v[f])) for v in value for f in cols]
        if not cols or not _one_scale(numbers):
            continue
        yield (
            where,
            Grid(
                rows=[
                    " · ".join(f"{f} {v[f]}" for f in ids) or str(n) for n, v in enumerate(value)
                ],
                cols=[c.replace("_", " ") for c in cols],
                values=[[float(v[c]) for c in cols] for v in value],
                planted=[[None] * len(cols) for _ in value],
                row_title=" · ".join(ids) or "entry",
                col_title="",
            ),
        )


def _one_scale(numbers: list[tuple[str, float]]) -> bool:
    """Numbers worth bars side by side: rates in [-1, 1], or within a factor 100 of each other
    (not a width next to a row count)."""
    sizes = [abs(v) for _, v in numbers]
    if max(sizes) <= 1:
        return True
    nonzero = [v for v in sizes if v > 0]
    return bool(nonzero) and max(nonzero) / min(nonzero) <= 100


def _leaves(result: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Scalar values of a result with their dotted path; sites and long lists left out."""
    if isinstance(result, dict) and not recovery.is_site(result) and depth < 4:
        for key, value in result.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(result, bool | int | float | str) or result is None:
        if not (isinstance(result, str) and len(result) > 120):
            yield path, result
    elif recovery.is_site(result):
        yield path, result.get("label")


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int | float):
        return fmt(value)
    return str(value)


def _site_map(
    result: Any, truth: dict[str, Any], card: dict[str, Any] | None, fig_id: str
) -> str | None:
    """The chosen sites and the control on a layers x heads/neurons/positions grid."""
    lists = list(recovery.site_lists(result))
    chosen = [(p, s) for p, s in lists if "control" not in p.rsplit(".", 1)[-1]]
    control = [(p, s) for p, s in lists if "control" in p.rsplit(".", 1)[-1]]
    if chosen:
        path, sites = chosen[0]
        kind = sites[0].get("kind")
    elif isinstance(result, dict) and result.get("sites") == [] and _kind_of(truth):
        # located nothing: still show where the planted sites are, with nothing chosen
        path, sites, kind = "result.sites", [], _kind_of(truth)
    else:
        return None
    same = [s for s in sites if s.get("kind") == kind]
    ctrl = [s for _, group in control[:1] for s in group if s.get("kind") == kind]
    dims = _dims(card, kind, same + ctrl, truth)
    if dims is None:
        return None
    col_field, n_cols, n_layers = dims
    grid_values: list[list[float | None]] = [[0.0] * n_cols for _ in range(n_layers)]
    planted: list[list[str | None]] = [[None] * n_cols for _ in range(n_layers)]
    for layer in range(n_layers):
        for c in range(n_cols):
            probe = {"kind": kind, "layer": layer, col_field: c}
            if kind in HOOKS:
                probe["hook_name"] = HOOKS[kind].format(layer=layer)
            planted[layer][c] = recovery.planted_label(probe, truth)
    for s in ctrl:
        _put(grid_values, s, col_field, -1.0)
    for s in same:
        _put(grid_values, s, col_field, 1.0)
    grid = Grid(
        rows=[f"L{layer}" for layer in range(n_layers)],
        cols=[f"{PREFIX[col_field]}{c}" for c in range(n_cols)],
        values=grid_values,
        planted=planted,
        row_title="layer",
        col_title=TITLES[col_field],
    )
    name = path.rsplit(".", 1)[-1].replace("_", " ")
    if not same:
        name += " (none)"
    svg = figures.heatmap(
        grid,
        fig_id=fig_id,
        title=f"{name} (blue) and the random control (red) on the model's {kind} sites",
        description=f"{len(same)} {name} in blue, {len(ctrl)} control sites in red; "
        "the planted sites of the ground truth are outlined.",
        show_values=False,
        legend="blue: chosen, red: random control",
    )
    return _figure(
        svg,
        f'Where it acted: <span class="mi-key mi-key--chosen">{text(name)}</span> '
        f'and <span class="mi-key mi-key--control">the random control</span>; '
        "planted sites outlined.",
    )


def _kind_of(truth: dict[str, Any]) -> str | None:
    """The site kind a ground truth plants, for a map with no chosen site to take it from."""
    if truth.get("language_neurons"):
        return "neuron"
    if truth.get("induction_heads"):
        return "head_out"
    name = str(truth.get("hook") or "").rsplit(".", 1)[-1]  # e.g. "hook_resid_pre"
    return next((kind for kind, hook in HOOKS.items() if hook.endswith("." + name)), None)


def _put(values: list[list[float | None]], site: dict[str, Any], col: str, v: float) -> None:
    layer, c = site.get("layer"), site.get(col)
    if isinstance(layer, int) and isinstance(c, int):
        if 0 <= layer < len(values) and 0 <= c < len(values[0]):
            values[layer][c] = v


def _dims(
    card: dict[str, Any] | None, kind: Any, sites: list[dict[str, Any]], truth: dict[str, Any]
) -> tuple[str, int, int] | None:
    """(column field, number of columns, number of layers) of a site map, from the card."""
    training = (card or {}).get("training") or {}
    n_layers = training.get("n_layers") or 1 + max((s.get("layer") or 0) for s in sites)
    if kind in HEAD_LIKE:
        n = training.get("n_kv_heads") if kind in ("k", "v") else None
        n = n or training.get("n_heads")
        return ("head", int(n), int(n_layers)) if n else None
    if kind == "neuron" and training.get("d_mlp"):
        return "index", int(training["d_mlp"]), int(n_layers)
    positions = [s.get("pos") for s in sites if isinstance(s.get("pos"), int)]
    if positions:
        extra = truth.get("position") if isinstance(truth.get("position"), int) else 0
        return "pos", max(positions + [extra]) + 2, int(n_layers)
    return None


# -- pieces --------------------------------------------------------------------------------


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="mi-result-figure">{svg}<figcaption>{caption}</figcaption></figure>'


def _facts(items: list[tuple[str, Any]]) -> str:
    shown = [(k, v) for k, v in items if v is not None]
    if not shown:
        return ""
    rows = "".join(f"<dt>{text(k)}</dt><dd>{text(_show(v))}</dd>" for k, v in shown)
    return f'<dl class="mi-result-facts">{rows}</dl>'
