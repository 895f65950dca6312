"""The scoreboard page: every registered method and recipe x every zoo model, refreshed by the build.

A cell shows how well the run recovered what was planted in that model: the ROC AUC of its
scores against the planted sites (locate methods), the metric before -> after with the random
control (recipes), or the planted share of the sites it acted on, and, always, the runner's own
`recovered` verdict. The numbers are those of the cached or freshly computed runs the node
pages show (`results.ResultStore`); a method runs on the models it is registered for (today its
default model), and the other cells say so. Taxonomy nodes with nothing runnable are listed
under the table, so the page accounts for the whole taxonomy.
"""

from __future__ import annotations

from . import routes
from .context import Site
from .html import link, text
from .impl_section import RESULTS_ROUTE, _short_state, _state_note
from .recovery import summarise
from .results import ResultStore

ROUTE = "scoreboard.md"
TITLE = "Scoreboard"
VERDICT = {True: ("✓", "recovered"), False: ("✗", "not recovered"), None: ("?", "not reported")}


def scoreboard_page(site: Site, src: str) -> str:
    store: ResultStore | None = getattr(site, "results", None)
    parts = [
        f'<h1 id="title">{TITLE}</h1>',
        '<p class="mi-lead">Every reference implementation on the zoo model it is built for, '
        "scored against the structure planted there (the models' cards, never the methods "
        "themselves). ✓ / ✗ is the run's own check; the number beside it compares across "
        "methods: ROC AUC of a locate method's scores against the planted sites, a recipe's "
        "metric before → after (with the same-size random control), or how many of the sites "
        "a steer method acted on are planted. Refreshed by every build.</p>",
    ]
    listing = store.listing() if store else None
    if listing is None:
        parts.append(_state_note(store, "mi-atlas list --json"))
        parts.append(_not_runnable(site, src, set()))
        return "\n".join(parts)
    models = list(listing.models)
    head = "".join(f'<th scope="col"><code>{text(m)}</code></th>' for m in models)
    rows = []
    for runnable in sorted(listing.runnables.values(), key=lambda r: (r.kind != "method", r.name)):
        cells = []
        for model in models:
            if model not in runnable.models:
                cells.append(
                    f'<td class="mi-score mi-score--na" data-model="{text(model)}">'
                    '<span class="mi-muted" title="not registered for this model">—</span></td>'
                )
                continue
            out = store.outcome(runnable.name, model)
            cells.append(_cell(site, src, out, model))
        node = node_of(site, runnable)
        name = f"<code>{text(runnable.name)}</code>"
        label = link(site.href(src, routes.node(*node)), name) if node else name
        rows.append(
            f'<tr data-method="{text(runnable.name)}"><th scope="row" class="mi-nowrap">{label}'
            f'<br><span class="mi-muted">{text(runnable.kind)}</span></th>{"".join(cells)}</tr>'
        )
    parts.append(
        '<div class="mi-table-wrap"><table class="mi-table mi-scoreboard">'
        f'<thead><tr><th scope="col">method / recipe</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    if listing.errors:
        items = "".join(
            f"<li><code>{text(m)}</code>: <code>{text(e)}</code></li>"
            for m, e in sorted(listing.errors.items())
        )
        parts.append(f'<h2 id="import-errors">Modules that failed to import</h2><ul>{items}</ul>')
    parts.append(_not_runnable(site, src, set(listing.runnables)))
    return "\n".join(parts)


def _cell(site: Site, src: str, out, model: str) -> str:
    if not out.ok:
        state = "failed: " + (out.error or "") if out.status == "failed" else _short_state_of(out)
        return (
            f'<td class="mi-score mi-score--{text(out.status)}" data-model="{text(model)}">'
            f'<span class="mi-muted">{text(state)}</span></td>'
        )
    s = summarise(out.doc or {})
    mark, words = VERDICT.get(s.recovered, ("?", str(s.recovered)))
    href = site.href(src, RESULTS_ROUTE.format(name=out.name, model=model))
    return (
        f'<td class="mi-score" data-model="{text(model)}" '
        f'data-recovered="{str(s.recovered).lower()}">'
        f'<span class="mi-verdict mi-verdict--{str(s.recovered).lower()}" title="{words}" '
        f'aria-label="{words}">{mark}</span> <strong>{text(s.value)}</strong>'
        f'<br><span class="mi-muted">{text(s.metric)}</span>'
        + (f'<br><span class="mi-muted">{text(s.detail)}</span>' if s.detail else "")
        + f"<br>{link(href, 'JSON')}</td>"
    )


def _short_state_of(out) -> str:
    return {"missing": "not computed yet", "off": "results off", "no-impls": "needs impls"}.get(
        out.status, out.status
    )


def node_of(site: Site, runnable) -> tuple[str, str] | None:
    """(axis, node id) whose page shows `runnable`: its own id, or the id it is a variant of."""
    axes = ("goals",) if runnable.kind == "recipe" else ("locate", "steer")
    for axis in axes:
        nodes = site.catalog.taxonomy[axis].nodes
        if runnable.name in nodes:
            return axis, runnable.name
        for node_id in nodes:
            if runnable.name.startswith(node_id + "-"):
                return axis, node_id
    return None


def _not_runnable(site: Site, src: str, registered: set[str]) -> str:
    """Taxonomy methods and sub-goals with nothing registered under their id."""
    store = getattr(site, "results", None)
    known = store is not None and store.listing() is not None
    items = []
    tax = site.catalog.taxonomy
    for axis in ("locate", "steer", "goals"):
        for node in tax[axis].nodes.values():
            if axis == "goals" and node.children:
                continue  # a goal is the sum of its sub-goals
            if node.id in registered:
                continue
            href = site.href(src, routes.node(axis, node.id))
            items.append(f"<li>{link(href, text(node.name))} (<code>{text(node.id)}</code>)</li>")
    if not items:
        return ""
    title = "Not runnable yet" if known else "Taxonomy nodes"
    why = (
        "Nothing is registered under these taxonomy ids yet; each page says why."
        if known
        else f"Their results are not in this build ({text(_short_state(store))})."
    )
    return f'<h2 id="not-runnable">{title}</h2><p>{why}</p><ul class="mi-node-list">{"".join(items)}</ul>'
