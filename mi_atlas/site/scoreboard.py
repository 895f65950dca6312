"""The scoreboard page: every registered method and recipe x every model it was run on.

A cell shows what the run document says against the planted truth: ROC AUC, precision at k and
the worst rank of a planted component (locate methods), or the headline measure before → after
with the gain against the control's (steer methods, recipes), marked ✓ / ~ / ✗ by those scores
(`result_view.verdict`). Runs that do badly are listed again under the table with the reason.
Taxonomy nodes with nothing registered are listed too, so the page accounts for the taxonomy.
"""

from __future__ import annotations

from . import routes
from .context import Site
from .html import link, text
from .impl_section import RESULTS_ROUTE, missing_note, node_of
from .result_view import verdict
from .runfolder import RunFolder

ROUTE = "scoreboard.md"
TITLE = "Scoreboard"


def scoreboard_page(site: Site, src: str) -> str:
    folder: RunFolder | None = site.runs
    parts = [
        f'<h1 id="title">{TITLE}</h1>',
        '<p class="mi-lead">Every reference implementation on the model it is built for, scored '
        "against the structure planted there (stated by the model's task, never by the "
        "methods). Locate methods: ROC AUC of their scores against the planted components, "
        "precision at k (k = the planted count) and the worst planted rank. Steer methods and "
        "recipes: the headline measure before → after, and its gain against the control's. "
        "✓ good, ~ partial, ✗ bad, by those numbers.</p>",
    ]
    if folder is None or folder.index is None:
        parts.append(missing_note(folder, None))
        parts.append(_not_runnable(site, src, set()))
        return "\n".join(parts)
    entries = [e for e in folder.entries if e.kind in ("method", "recipe")]
    models = list(dict.fromkeys([*folder.models, *(e.model for e in entries if e.model)]))
    head = "".join(f'<th scope="col"><code>{text(m)}</code></th>' for m in models)
    rows, bad = [], []
    for entry in sorted(entries, key=lambda e: (e.kind != "method", e.name)):
        cells = []
        for model in models:
            run = folder.runs.get(entry.name)
            if entry.model != model:
                cells.append(
                    f'<td class="mi-score mi-score--na" data-model="{text(model)}">'
                    '<span class="mi-muted" title="not run on this model">—</span></td>'
                )
            elif run is None:
                state = f"failed: {entry.error}" if entry.error else "not computed yet"
                cells.append(
                    f'<td class="mi-score mi-score--missing" data-model="{text(model)}">'
                    f'<span class="mi-muted">{text(state)}</span></td>'
                )
            else:
                v = verdict(run)
                if v.level in ("bad", "fair"):
                    bad.append((entry, v))
                href = site.href(src, RESULTS_ROUTE.format(name=entry.name))
                cells.append(
                    f'<td class="mi-score mi-score--{v.level}" data-model="{text(model)}" '
                    f'data-verdict="{v.level}"><span class="mi-verdict mi-verdict--{v.level}" '
                    f'title="{v.level}" aria-label="{v.level}">{v.mark}</span> '
                    f"<strong>{text(v.headline)}</strong>"
                    f'<br><span class="mi-muted">{text(v.why)}</span><br>{link(href, "JSON")}</td>'
                )
        rows.append(
            f'<tr data-method="{text(entry.name)}"><th scope="row" class="mi-nowrap">'
            f'{_name(site, src, entry)}<br><span class="mi-muted">{text(entry.kind)}</span></th>'
            f"{''.join(cells)}</tr>"
        )
    parts.append(
        '<div class="mi-table-wrap"><table class="mi-table mi-scoreboard">'
        f'<thead><tr><th scope="col">method / recipe</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    if bad:
        items = "".join(
            f'<li><span class="mi-verdict mi-verdict--{v.level}">{v.mark}</span> '
            f"{_name(site, src, e)}: {text(v.headline)}; {text(v.why)}</li>"
            for e, v in bad
        )
        parts.append(
            '<h2 id="does-badly">Where a method does badly</h2><p>Runs whose own scores fall '
            f'short of the planted truth or of their control:</p><ul class="mi-bad-list">{items}</ul>'
        )
    errors = folder.index.import_errors
    if errors:
        items = "".join(
            f"<li><code>{text(m)}</code>: <code>{text(e)}</code></li>"
            for m, e in sorted(errors.items())
        )
        parts.append(f'<h2 id="import-errors">Modules that failed to import</h2><ul>{items}</ul>')
    parts.append(_not_runnable(site, src, {e.method for e in folder.entries}))
    return "\n".join(parts)


def _name(site: Site, src: str, entry) -> str:
    where = node_of(site, entry)
    name = f"<code>{text(entry.name)}</code>"
    return link(site.href(src, routes.node(*where)), name) if where else name


def _not_runnable(site: Site, src: str, registered: set[str]) -> str:
    """Taxonomy methods and sub-goals with nothing registered under their id."""
    items = []
    tax = site.catalog.taxonomy
    for axis in ("locate", "steer", "goals"):
        for node in tax[axis].nodes.values():
            if (axis == "goals" and node.children) or node.id in registered:
                continue  # a goal is the sum of its sub-goals
            href = site.href(src, routes.node(axis, node.id))
            items.append(f"<li>{link(href, text(node.name))} (<code>{text(node.id)}</code>)</li>")
    if not items:
        return ""
    known = site.runs is not None and site.runs.index is not None
    title = "Not runnable yet" if known else "Taxonomy nodes"
    why = (
        "Nothing is registered under these taxonomy ids yet; each page says why."
        if known
        else "Their results are not in this build."
    )
    return f'<h2 id="not-runnable">{title}</h2><p>{why}</p><ul class="mi-node-list">{"".join(items)}</ul>'
