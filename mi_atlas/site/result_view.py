"""One run document as a reader sees it: figures, a table of its numbers, and a verdict.

The result's `type` picks the view, and only typed fields are read:
- `locate`: a heat-map per site kind (layers x heads, layers x neurons, ...) or, when most cells
  are planted, a ranked strip; planted components are the run's `truth.planted` labels; the
  table gives the top of the ranking, where each planted component ranks, and the `recovery`
  numbers (AUROC, precision at k) the producer computed;
- `steer` / `recipe`: bars of every `Measure` before, after and under the control (mean ± std),
  a map of the sites it acted on and those of the `Control`, and the same numbers in a table;
- `check`: a table of the checks.
`verdict` reads the run's own scores (AUROC, precision at k, gains against the control), never
a single flag, so a method that ranks planted components low is marked as doing badly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..runs import (
    Check,
    Control,
    Edge,
    Estimate,
    LocateResult,
    Measure,
    RecipeResult,
    Run,
    Site,
    SteerResult,
)
from . import figures
from .figures import Bar, Grid, Ranked, fmt
from .html import text

MAX_CELLS = 6000  # a bigger grid is shown as its table only
TOP_ROWS = 8  # rows of a ranking table, before the lowest planted ones
STRIP_SHARE = 0.5  # above this planted share of cells, a heat-map would be all outlines
STRIP_MIN = 8  # ... unless it has fewer cells than this: a few outlines are still readable
FIELDS = ("layer", "head", "index", "pos")
PREFIX = {"layer": "L", "head": "H", "index": "#", "pos": "@"}
TITLES = {"layer": "layer", "head": "head", "index": "neuron / feature", "pos": "position"}
CONTROL_WORDS = {
    "random-sites": "the same number of random sites",
    "other-sites": "the same steer at as many other sites",
    "random-direction": "a random direction of the same norm",
    "data-derived-direction": "a data-derived direction",
    "data-derived-sites": "sites chosen by a data statistic",
    "other-method": "what a simpler method chose",
    "none": "no control",
}
GOOD_AUROC, FAIR_AUROC = 0.9, 0.7  # AUROC bands of the verdict


def render(run: Run, fig_id: str) -> tuple[str, str]:
    """(figures HTML, numbers HTML) of one run document."""
    result = run.result
    if isinstance(result, LocateResult):
        return _locate(run, result, fig_id)
    if isinstance(result, SteerResult | RecipeResult):
        return _measured(run, result, fig_id)
    return "", _checks(result.checks) + _facts(_numbers(result.numbers))


def roles(run: Run, result: LocateResult) -> dict[str, str]:
    """Scored label -> planted role. Where the producer scored the ranking against the truth,
    the planted targets are the ones its `recovery` ranks (a planted head counts at the position
    where the task reads it); otherwise every target the truth names (`role_for`)."""
    truth = run.truth
    scored = result.recovery.ranks if result.recovery else None
    found = {}
    for s in result.scores:
        if scored is not None and s.target.label not in scored:
            continue
        role = truth.role_for(s.target) if truth else None
        if role or scored is not None:
            found[s.target.label] = role or "planted"
    return found


# -- the verdict ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    mark: str  # ✓, ~ or ✗ (? when the run has nothing to be judged by)
    level: str  # good, fair, bad, unknown: a CSS modifier
    headline: str  # the number that decides it, e.g. "AUROC 0.98 ± 0.01"
    why: str  # one phrase: what makes it good or bad


def verdict(run: Run) -> Verdict:
    result = run.result
    if isinstance(result, LocateResult):
        return _locate_verdict(result)
    if isinstance(result, RecipeResult):
        return _measure_verdict(result.metric)
    if isinstance(result, SteerResult):
        if not result.measures:
            return Verdict("?", "unknown", "no measure", "the run reports no measure")
        return _measure_verdict(result.measures[0])
    failed = [c.name for c in result.checks if not c.passed]
    n = len(result.checks)
    if n == 0:
        return Verdict("?", "unknown", "no check", "the run reports no check")
    if failed:
        return Verdict(
            "✗", "bad", f"{n - len(failed)} of {n} checks", "failed: " + ", ".join(failed)
        )
    return Verdict("✓", "good", f"{n} of {n} checks", "every check passed")


def _locate_verdict(result: LocateResult) -> Verdict:
    rec = result.recovery
    if rec is None:
        return Verdict("?", "unknown", "no planted truth", "nothing planted among its targets")
    worst = max((r.mean for r in rec.ranks.values()), default=0)
    n = len(result.scores)
    ranks = f"worst planted rank {worst:.3g} of {n}"
    prec = f"precision at {rec.k}: {rec.precision_at_k}"
    if rec.auroc is None:
        auc, a = "AUROC n/a", 1.0 if rec.recovered else 0.0
    else:
        auc, a = f"AUROC {rec.auroc}", rec.auroc.mean
    p = rec.precision_at_k.mean
    if a >= GOOD_AUROC and p >= 0.75:
        return Verdict("✓", "good", auc, f"{prec}; {ranks}")
    if a >= FAIR_AUROC and p >= 0.5:
        return Verdict("~", "fair", auc, f"{prec}; {ranks}")
    return Verdict("✗", "bad", auc, f"{prec}; {ranks}")


def _measure_verdict(m: Measure) -> Verdict:
    """Steering the located targets must do better than the control: ✓ by more than the
    seeds' spread, ~ within it, ✗ not at all (a pruning recipe that keeps accuracy while
    random pruning loses it is a success; a steer that moves as little as its control is not)."""
    headline = f"{m.name}: {m.before} → {m.after} (control {m.control})"
    words = f"gain {_signed(m.gain)} vs the control's {_signed(m.control_gain)}"
    spread = m.after.std + m.control.std
    if m.gain - m.control_gain > spread and m.gain - m.control_gain > 1e-9:
        return Verdict("✓", "good", headline, words)
    if m.beats_control:
        return Verdict("~", "fair", headline, words + ", within the seeds' spread")
    return Verdict("✗", "bad", headline, words + ": the control does as well or better")


def _signed(x: float) -> str:
    return f"{x + 0.0:+.3g}"  # + 0.0: no "-0"


# -- locate --------------------------------------------------------------------------------


def _locate(run: Run, result: LocateResult, fig_id: str) -> tuple[str, str]:
    figs, tables = [], []
    for v, part in enumerate([result, *result.variants][:4]):
        name = f" ({part.variant})" if part.variant else ""
        planted = roles(run, part)
        for g, (kind, grid) in enumerate(grids(part, planted)):
            figs.append(_locate_figure(part, kind, grid, planted, f"{fig_id}-{v}-{g}", name))
        tables.append(_ranking_table(part, planted, name))
    facts = _numbers(result.numbers) + [("note", n) for n in result.notes]
    if result.faithfulness:
        f = result.faithfulness
        facts += [("faithfulness: CPR (higher is better)", str(f.cpr)),
                  ("faithfulness: CMD (lower is better)", str(f.cmd))]  # fmt: skip
    checks = _checks(result.checks) if result.checks else ""
    return "".join(figs), "".join(tables) + checks + _facts(
        [("setting", result.setting), ("metric", result.metric), *facts]
    )


def _locate_figure(
    result: LocateResult, kind: str, grid: Grid, planted: dict[str, str], fig_id: str, name: str
) -> str:
    marked = sum(1 for row in grid.planted for p in row if p)
    what = "edges between sites" if kind == "edge" else f"{kind} sites"
    cells = sum(v is not None for row in grid.values for v in row)
    if grid.planted_share > STRIP_SHARE and cells >= STRIP_MIN:
        items = [
            Ranked(s.target.label, s.score.mean, planted.get(s.target.label))
            for s in result.scores
            if _kind(s.target) == kind
        ]
        svg = figures.strip(
            items,
            fig_id=fig_id,
            title=f"{result.meaning}{name}, ranked",
            description=f"{len(items)} scores over {what} in rank order; {marked} planted.",
            unit=result.metric,
        )
        caption = (
            f"{text(result.meaning)}{text(name)}: every {text(what.rstrip('s'))} by rank, "
            f"{marked} of {len(items)} planted (coloured): a heat-map would be mostly outlines."
        )
    else:
        axes = f"{grid.row_title} × {grid.col_title}" if grid.col_title else grid.row_title
        svg = figures.heatmap(
            grid,
            fig_id=fig_id,
            title=f"{result.meaning}{name} ({what})",
            description=f"Heat-map of scores over {what}, {grid.row_title} by "
            f"{grid.col_title}; {marked} planted cells outlined.",
            unit=result.metric,
        )
        caption = (
            f"{text(result.meaning)}{text(name)}: {text(what)}, {text(axes)}; "
            f"{marked} planted cell{'s' if marked != 1 else ''} outlined."
        )
    return _figure(svg, f"{caption} Setting: {text(result.setting)}.")


def _kind(target: Site | Edge) -> str:
    return "edge" if isinstance(target, Edge) else target.kind


def grids(result: LocateResult, planted: dict[str, str]) -> Iterator[tuple[str, Grid]]:
    """One grid per target kind: (kind, grid); edges give one upstream x downstream grid."""
    by_kind: dict[str, list] = {}
    for s in result.scores:
        by_kind.setdefault(_kind(s.target), []).append(s)
    for kind, members in by_kind.items():
        if kind == "edge":
            yield kind, _edge_grid(members, planted)
            continue
        sites = [s.target for s in members]
        varying = [f for f in FIELDS if len({getattr(t, f) for t in sites}) > 1]
        # the field with the most values runs across (a wide figure reads better than a tall one)
        col = max(
            varying, key=lambda f: (len({getattr(t, f) for t in sites}), f != "layer"), default=None
        )
        row_fields = [f for f in varying if f != col]
        cols = sorted({getattr(t, col) for t in sites}, key=_order) if col else [None]
        rows = sorted({tuple(getattr(t, f) for f in row_fields) for t in sites}, key=_order)
        if len(rows) * len(cols) > MAX_CELLS:
            continue
        r_of = {r: k for k, r in enumerate(rows)}
        c_of = {c: k for k, c in enumerate(cols)}
        values: list[list[float | None]] = [[None] * len(cols) for _ in rows]
        marks: list[list[str | None]] = [[None] * len(cols) for _ in rows]
        for s in members:
            t = s.target
            r, c = (
                r_of[tuple(getattr(t, f) for f in row_fields)],
                c_of[getattr(t, col) if col else None],
            )
            values[r][c] = s.score.mean
            marks[r][c] = planted.get(t.label)
        yield (
            kind,
            Grid(
                rows=[_label(row_fields, r) or kind for r in rows],
                cols=[_label([col], (c,)) if col else "" for c in cols],
                values=values,
                planted=marks,
                row_title=" ".join(TITLES[f] for f in row_fields) or kind,
                col_title=TITLES[col] if col else "",
            ),
        )


def _edge_grid(members: list, planted: dict[str, str]) -> Grid:
    def ordered(ends: list[Site]) -> list[str]:  # by layer, head, index, position
        ends = sorted(ends, key=lambda t: _order(tuple(getattr(t, f) for f in FIELDS)))
        return list(dict.fromkeys(t.label for t in ends))

    ups = ordered([s.target.upstream for s in members])
    downs = ordered([s.target.downstream for s in members])
    values: list[list[float | None]] = [[None] * len(downs) for _ in ups]
    marks: list[list[str | None]] = [[None] * len(downs) for _ in ups]
    for s in members:
        r, c = ups.index(s.target.upstream.label), downs.index(s.target.downstream.label)
        values[r][c] = s.score.mean
        marks[r][c] = planted.get(s.target.label)
    return Grid(ups, downs, values, marks, "upstream (writes)", "downstream (reads)")


def _order(value) -> tuple:
    items = value if isinstance(value, tuple) else (value,)
    # None first: an embedding (no layer) comes before layer 0
    return tuple((v is not None, v if isinstance(v, int) else str(v)) for v in items)


def _label(fields: list[str], values: tuple) -> str:
    return " ".join(f"{PREFIX[f]}{v}" for f, v in zip(fields, values, strict=True) if v is not None)


def _ranking_table(result: LocateResult, planted: dict[str, str], name: str) -> str:
    shown = result.scores[:TOP_ROWS]
    # then the planted components that rank lowest: where a method misses, if it does
    shown += [s for s in result.scores[TOP_ROWS:] if s.target.label in planted][-4:]
    rows = []
    for s in shown:
        role = planted.get(s.target.label)
        tag = f' <span class="mi-planted-tag">planted: {text(role)}</span>' if role else ""
        rows.append(
            f'<tr class="{"mi-planted-row" if role else ""}"><td>{s.rank}</td>'
            f"<td><code>{text(s.target.label)}</code>{tag}</td>"
            f'<td class="mi-num">{text(_estimate(s.score))}</td></tr>'
        )
    rec = result.recovery
    if rec is None:
        summary = "No planted component is among these targets, so no rank or AUROC is given."
    else:
        ordered = sorted(rec.ranks.items(), key=lambda x: x[1].mean)
        ranks = ", ".join(f"{label} {r}" for label, r in ordered[:10])
        if len(ordered) > 10:
            ranks += f", …, {ordered[-1][0]} {ordered[-1][1]}"
        auc = "n/a" if rec.auroc is None else text(str(rec.auroc))
        summary = (
            f"ROC AUC against the planted components: <strong>{auc}</strong>; precision at "
            f"k = {rec.k}: <strong>{text(str(rec.precision_at_k))}</strong>; planted ranks "
            f"(of {len(result.scores)}): {text(ranks)}."
        )
    return (
        f'<p class="mi-result-metric">{summary}</p>'
        '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        f"<caption>{text(result.meaning)}{text(name)} ({len(result.scores)} ranked)</caption>"
        '<thead><tr><th scope="col">rank</th><th scope="col">target</th>'
        f'<th scope="col">score</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


# -- steer and recipe ----------------------------------------------------------------------


def _measured(run: Run, result: SteerResult | RecipeResult, fig_id: str) -> tuple[str, str]:
    measures = (
        [result.metric, *result.collateral, *result.other]
        if isinstance(result, RecipeResult)
        else result.measures
    )
    control = control_words(result.control)
    groups = [
        (
            m.name + (f" ({m.data})" if m.data else ""),
            [
                Bar("before", m.before.mean, m.before.std, m.before.n, "before"),
                Bar("after (located)", m.after.mean, m.after.std, m.after.n, "after", True),
                Bar("control", m.control.mean, m.control.std, m.control.n, "control"),
            ],
        )
        for m in measures
    ]
    seeds = max((m.after.n for m in measures), default=1)
    figs = [
        _figure(
            figures.bars(
                groups,
                fig_id=f"{fig_id}-bars",
                title=f"{run.name}: before, after, control",
                description=f"Each measure before steering, after steering, and under the "
                f"control ({control}).",
            ),
            "Each measure before steering, after steering the <strong>located</strong> "
            f"targets, and under the control: {text(result.control.description)} "
            f"({text(control)})" + (f"; mean ± std over {seeds} seeds." if seeds > 1 else "."),
        )
    ]
    site_map = _site_map(run, result, f"{fig_id}-sites")
    if site_map:
        figs.append(site_map)
    body = "".join(
        f'<tr><th scope="row">{text(m.name)}</th><td class="mi-num">{text(_estimate(m.before))}</td>'
        f'<td class="mi-num">{text(_estimate(m.after))}</td>'
        f'<td class="mi-num">{text(_estimate(m.control))}</td>'
        f"<td>{'higher' if m.higher_is_better else 'lower'}</td>"
        f"<td>{'yes' if m.beats_control else 'no'}</td></tr>"
        for m in measures
    )
    facts = [("control", f"{result.control.description} ({control})")]
    if isinstance(result, RecipeResult):
        facts = [("locate", result.locate), ("steer", result.steer), *facts]
    facts.append(("model restored bit for bit afterwards", "yes" if result.restored else "no"))
    facts += _numbers(result.numbers) + [("note", n) for n in result.notes]
    table = (
        '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        "<caption>Each measure before, after and under the control</caption>"
        '<thead><tr><th scope="col">measure</th><th scope="col">before</th>'
        '<th scope="col">after</th><th scope="col">control</th>'
        '<th scope="col">better</th><th scope="col">beats the control</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div>" + _facts(facts)
    )
    if isinstance(result, RecipeResult) and result.located is not None:
        # the locate step's ranking, drawn as a locate method's is
        located_figs, located_table = _locate(run, result.located, f"{fig_id}-located")
        figs.append(located_figs)
        table += f"<h4>The locate step: {text(result.locate)}</h4>{located_table}"
    return "".join(figs), table


def control_words(control: Control) -> str:
    return CONTROL_WORDS[control.kind]  # every ControlKind has words (tests/test_runs.py)


def _site_map(run: Run, result: SteerResult | RecipeResult, fig_id: str) -> str | None:
    """Where the steer acted and where its control acted, with the planted sites outlined."""
    chosen = [t for t in result.targets if isinstance(t, Site)]
    control = [t for t in result.control.targets if isinstance(t, Site)]
    truth = [p for p in (run.truth.planted if run.truth else []) if isinstance(p.target, Site)]
    if not chosen and not control:
        return None
    kind = (chosen or control)[0].kind
    sites = [t for t in chosen + control + [p.target for p in truth] if t.kind == kind]
    col = next(
        (f for f in ("head", "index", "pos") if any(getattr(t, f) is not None for t in sites)), None
    )
    layered = any(t.layer is not None for t in sites)  # an SAE feature has no layer of its own
    n_layers = (run.model.n_layers or 1 + max((t.layer or 0) for t in sites)) if layered else 1
    if col == "head" and run.model.n_heads:
        cols = list(range(max(run.model.n_heads, 1 + max(t.head or 0 for t in sites))))
    else:
        cols = sorted({getattr(t, col) for t in sites} - {None}) if col else [None]
    where = {c: k for k, c in enumerate(cols)}
    values: list[list[float | None]] = [[0.0] * len(cols) for _ in range(n_layers)]
    marks: list[list[str | None]] = [[None] * len(cols) for _ in range(n_layers)]

    def cell(t: Site) -> tuple[int, int] | None:
        c = where.get(getattr(t, col) if col else None)
        return (t.layer or 0, c) if c is not None and 0 <= (t.layer or 0) < n_layers else None

    for group, value in ((control, -1.0), (chosen, 1.0)):
        for t in group:
            if t.kind == kind and (rc := cell(t)):
                values[rc[0]][rc[1]] = value
    for p in truth:
        if p.target.kind == kind and (rc := cell(p.target)):
            marks[rc[0]][rc[1]] = p.role
    grid = Grid(
        rows=[f"L{layer}" for layer in range(n_layers)] if layered else [kind],
        cols=[f"{PREFIX[col]}{c}" for c in cols] if col else [kind],
        values=values,
        planted=marks,
        row_title="layer" if layered else "",
        col_title=TITLES[col] if col else kind,
    )
    keys = [(1.0, "chosen"), (-1.0, "control")] if control else [(1.0, "chosen")]
    svg = figures.sitemap(
        grid,
        keys,
        fig_id=fig_id,
        title=f"{run.name}: where it acted on the model's {kind} sites",
        description=f"{len(chosen)} chosen sites and {len(control)} control sites; planted "
        "sites outlined.",
    )
    said = f" and the control's sites ({text(result.control.description)})" if control else ""
    return _figure(
        svg, f"Where it acted: the chosen {text(kind)} sites{said}; planted sites outlined."
    )


# -- checks and pieces ---------------------------------------------------------------------


def _checks(checks: list[Check]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{text(c.name)}</th><td>{"passed" if c.passed else "failed"}</td>'
        f'<td class="mi-num">{fmt(c.value)}</td><td>{text(c.detail)}</td></tr>'
        for c in checks
    )
    return (
        '<div class="mi-table-wrap"><table class="mi-table mi-result-table">'
        '<caption>Checks</caption><thead><tr><th scope="col">check</th><th scope="col">'
        'outcome</th><th scope="col">value</th><th scope="col">detail</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _numbers(numbers: dict[str, Estimate]) -> list[tuple[str, str]]:
    return [(k, str(e)) for k, e in numbers.items()]


def _estimate(e: Estimate) -> str:
    return fmt(e.mean) if e.n == 1 else f"{fmt(e.mean)} ± {fmt(e.std)}"


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="mi-result-figure">{svg}<figcaption>{caption}</figcaption></figure>'


def _facts(items: list[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{text(k)}</dt><dd>{text(v)}</dd>" for k, v in items if v)
    return f'<dl class="mi-result-facts">{rows}</dl>' if rows else ""
