"""The "Reference implementation" section of a node page: source, command, and zoo results.

Taxonomy ids are registry names: a locate or steer node runs the method of the same name, a
sub-goal the recipe of the same name. Such a page shows what the method found on its zoo model
(figures and numbers from `result_view`, computed by `results`), the command that prints the
same JSON, and the module's source, highlighted and linked to the repository. An object page
shows the part of `reference_impls/addressing.py` that names the object, which zoo models
plant one, and which methods' results act on it. A goal page sums up its sub-goals' recipes.
Whatever is missing is said plainly: no module yet, nothing registered, results switched off,
the `impls` extra not installed, not computed in a cache-only build, or a failed run.
"""

from __future__ import annotations

import ast
from functools import cache
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ..taxonomy import Node
from . import figures, recovery, result_view, routes
from .context import Site
from .html import external, link, text
from .pages import Section
from .results import INSTALL_HINT, Outcome, ResultStore, run_command

RESULTS_ROUTE = "results/{name}--{model}.json"  # the JSON of each run, downloadable
# addressing.py's functions that build sites of each object (the rest of the module is shared)
OBJECT_CONSTRUCTORS = {
    "token-embedding": ("embed",),
    "residual-stream": ("resid",),
    "attention-head": ("head", "attn_out", "heads"),
    "ffn": ("mlp_out",),
    "neuron": ("neuron", "neurons"),
    "sae-feature": ("sae_feature",),
    "circuit": ("Site",),
}


def implementation_section(site: Site, axis: str, node: Node, src: str) -> Section:
    """The node's reference implementation: what runs, how to run it, and what it found."""
    store: ResultStore | None = getattr(site, "results", None)
    if axis == "objects":
        body = _object_body(site, store, node, src)
    elif axis == "goals" and node.children:
        body = _goal_body(site, store, node, src)
    else:
        body = _runnable_body(site, store, axis, node, src)
    return Section("Reference implementation", body, "reference-implementation")


# -- methods and recipes -------------------------------------------------------------------


def _runnable_body(site: Site, store: ResultStore | None, axis: str, node: Node, src: str) -> str:
    files = [path for path in node.impls if site.repo.exists(path)]
    runnables = _runnables_of(site, store, node)
    listing = store.listing() if store else None
    if not files and not runnables:
        planned = ", ".join(f"<code>{text(p)}</code>" for p in node.impls)
        where = f" It will live in {planned}." if planned else ""
        return (
            '<div class="mi-impl mi-impl--missing" role="note">'
            f"<p><strong>Reference implementation: not yet implemented.</strong>{where}</p>"
            f"{_why_not(site, node)}</div>"
        )
    what = "recipe" if axis == "goals" else "method"
    parts = ['<div class="mi-impl mi-impl--ready">']
    for runnable in runnables:
        model = runnable.default_model
        variant = "" if runnable.name == node.id else "variant "
        parts += [
            f'<div class="mi-run" data-method="{text(runnable.name)}" data-model="{text(model)}">',
            f'<p class="mi-impl-summary">{text(runnable.summary)} '
            f'<span class="mi-muted">({variant}{what} <code>{text(runnable.name)}</code>, '
            f"zoo model <code>{text(model or '—')}</code>)</span></p>",
            _command(runnable.name, model),
            _result_block(site, store, store.outcome(runnable.name), src),
            "</div>",
        ]
    if not runnables:
        if listing is not None:
            error = _import_error(listing, files)
            reason = (
                f"it failed to import: <code>{text(error)}</code>"
                if error
                else f"<code>mi-atlas list</code> has no {what} <code>{text(node.id)}</code> yet"
            )
            parts.append(
                f'<p class="mi-impl-state" role="note"><strong>Not runnable yet:</strong> the '
                f"module is in the repository, but {reason}, so there is no result on the zoo "
                "to show.</p>"
            )
        else:
            parts.append(_command(node.id, None))
            parts.append(_state_note(store, run_command(node.id, None)))
    shown = list(files)
    for runnable in runnables:
        if runnable.path and runnable.path not in shown:
            shown.append(runnable.path)
    parts += [_source(site, path) for path in shown]
    parts.append("</div>")
    return "".join(parts)


def _runnables_of(site: Site, store: ResultStore | None, node: Node) -> list[Any]:
    """The runnable named by the node's id, then its variants (`<id>-<suffix>`, see registry)."""
    listing = store.listing() if store else None
    if listing is None:
        return []
    taken = {i for axis in ("locate", "steer", "goals") for i in site.catalog.taxonomy[axis].ids}
    exact = [listing.runnables[node.id]] if node.id in listing.runnables else []
    variants = [
        r
        for name, r in sorted(listing.runnables.items())
        if name.startswith(node.id + "-") and name not in taken
    ]
    return exact + variants


def _command(name: str, model: str | None) -> str:
    return (
        '<p class="mi-impl-run">Run it (prints the JSON this page is made from):</p>'
        '<div class="highlight mi-command"><pre><span></span><code>'
        f"{text(run_command(name, model))}</code></pre></div>"
    )


def _result_block(site: Site, store: ResultStore | None, out: Outcome, src: str) -> str:
    if not out.ok:
        return _state_note(store, out.command, out)
    doc = out.doc or {}
    card = (store.listing().cards if store and store.listing() else {}).get(out.model or "")
    figs, table = result_view.render(doc, card, f"fig-{out.name}-{out.model}")
    truth = recovery.planted_description(doc.get("ground_truth") or {})
    recovered = doc.get("recovered")
    verdict = {True: "yes", False: "no", None: "not reported"}.get(recovered, str(recovered))
    json_href = site.href(src, RESULTS_ROUTE.format(name=out.name, model=out.model))
    timing = f"computed in {out.seconds:.1f} s" if out.seconds is not None else "computed"
    return (
        '<div class="mi-run-result">'
        f'<h3 id="result-{text(out.name)}">Result on the zoo model '
        f"<code>{text(out.model)}</code></h3>"
        + (
            f'<p class="mi-result-truth">Planted in <code>{text(out.model)}</code>: '
            f"{text('; '.join(truth))}.</p>"
            if truth
            else ""
        )
        + f'<p class="mi-result-verdict mi-recovered--{str(recovered).lower()}">'
        f"Recovered the planted structure (the run's own check): <strong>{verdict}</strong></p>"
        f'<div class="mi-result-figures" data-search-exclude>{figs}</div>'
        f'<div class="mi-result-numbers">{table}</div>'
        f'<p class="mi-muted mi-result-provenance">{timing} by '
        f"<code>{text(out.command)}</code>; "
        f"{link(json_href, 'the JSON of this run')}; cached by a hash of the code, the "
        "model's weights and the inputs.</p></div>"
    )


def _state_note(store: ResultStore | None, command: str, out: Outcome | None = None) -> str:
    state = out.status if out is not None else (store.state if store else "off")
    if state in ("cache", "compute"):
        state = "missing"  # no list of runnables for this code in the cache yet
    cmd = f"<code>{text(command)}</code>"
    if state == "failed" and out is not None:
        message = (
            f"<strong>The run failed:</strong> <code>{text(out.error)}</code>. "
            f"Reproduce it with {cmd}."
        )
    elif state == "no-impls":
        missing = ", ".join(store.missing_modules) if store else "torch"
        message = (
            "<strong>Results need the reference implementations</strong>, which are not "
            f"installed where this site was built (missing: {text(missing)}). Install them with "
            f"<code>{text(INSTALL_HINT)}</code> and rebuild the site, which computes the results "
            f"here; or run {cmd}."
        )
    elif state == "missing":
        cache_dir = text(_shown_path(store)) if store else ""
        message = (
            "<strong>Not computed yet.</strong> This build only reads cached results (as "
            "<code>mkdocs serve</code> does, to keep live reload quick), and the cache "
            f"(<code>{cache_dir}</code>) holds none for this code. <code>mkdocs build</code> "
            f"computes them; or run {cmd}."
        )
    elif state == "unavailable":
        message = (
            "<strong>Results are not available:</strong> the <code>reference_impls</code> "
            f"package is not importable where this site was built. Run {cmd} in a checkout."
        )
    else:  # off
        message = (
            "<strong>Results are switched off in this build</strong> (plugin option "
            "<code>results: off</code>). A build with <code>results: compute</code> (the default "
            f"of <code>mkdocs build</code>) shows the figure and numbers here; or run {cmd}."
        )
    return f'<p class="mi-impl-state mi-impl-state--{text(state)}" role="note">{message}</p>'


def _shown_path(store: ResultStore) -> str:
    try:
        return store.cache_dir.relative_to(store.repo_root).as_posix()
    except ValueError:
        return str(store.cache_dir)


def _import_error(listing: Any, files: list[str]) -> str | None:
    for path in files:
        module = path.removesuffix(".py").replace("/", ".")
        if module in listing.errors:
            return listing.errors[module]
    return None


def _why_not(site: Site, node: Node) -> str:
    """A missing recipe's reason, where the recipes' docs give it: the first paragraph under a
    heading that names the node in `docs/*recipe*.md`, if it says why it is not there."""
    docs = site.repo.root / "docs"
    for path in sorted(docs.glob("*recipe*.md")) if docs.is_dir() else []:
        blocks = path.read_text(encoding="utf-8").split("\n\n")
        for k, block in enumerate(blocks[:-1]):
            heading = block.strip()
            if not heading.startswith("#") or "\n" in heading:
                continue
            title = heading.lstrip("#").strip().strip("`").casefold()
            if node.id not in title and node.name.casefold() not in title:
                continue
            paragraph = " ".join(blocks[k + 1].split())
            if " not " not in f" {paragraph} ":
                return ""
            url = site.repo.source_url(f"docs/{path.name}")
            where = external(url, f"docs/{text(path.name)}") if url else text(path.name)
            return (
                f'<blockquote class="mi-impl-why">{text(paragraph)}'
                f"<br><small>From {where}.</small></blockquote>"
            )
    return ""


# -- source --------------------------------------------------------------------------------


@cache
def _highlighted(code: str) -> str:
    return highlight(code, PythonLexer(), HtmlFormatter(wrapcode=True))


def _source(site: Site, path: str, only: tuple[str, ...] = ()) -> str:
    """The file (or only the named top-level definitions), highlighted, linked to the repo."""
    code = (site.repo.root / path).read_text(encoding="utf-8")
    shown = _definitions(code, only) if only else code
    lines = shown.count("\n") + 1
    url = site.repo.source_url(path)
    label = f"<code>{text(path)}</code>"
    named = f" ({', '.join(f'<code>{text(n)}</code>' for n in only)})" if only else ""
    return (
        '<details class="mi-source" data-search-exclude>'
        f"<summary>Source: {label}{named}, {lines} lines</summary>"
        f'<p class="mi-source-link">{external(url, f"{label} in the repository") if url else label}</p>'
        f"{_highlighted(shown)}</details>"
    )


def _definitions(code: str, names: tuple[str, ...]) -> str:
    tree = ast.parse(code)
    found = []
    for item in tree.body:
        if isinstance(item, ast.FunctionDef | ast.ClassDef) and item.name in names:
            start = min([d.lineno for d in item.decorator_list] + [item.lineno])
            found.append("\n".join(code.splitlines()[start - 1 : item.end_lineno]))
    return "\n\n\n".join(found) or code


# -- goals ---------------------------------------------------------------------------------


def _goal_body(site: Site, store: ResultStore | None, node: Node, src: str) -> str:
    rows = []
    for child in node.children:
        href = site.href(src, routes.node("goals", child.id))
        runnable = store.runnable(child.id) if store else None
        if runnable is None:
            state = "not registered" if store and store.listing() else _short_state(store)
            rows.append(
                f'<tr><td>{link(href, text(child.name))}</td><td colspan="3">{state}</td></tr>'
            )
            continue
        out = store.outcome(child.id)
        if out.ok:
            s = recovery.summarise(out.doc or {})
            rows.append(
                f"<tr><td>{link(href, text(child.name))}</td><td>{text(s.metric)}</td>"
                f'<td class="mi-num">{text(s.value)}</td><td>{text(s.detail)}</td></tr>'
            )
        else:
            rows.append(
                f"<tr><td>{link(href, text(child.name))}</td>"
                f'<td colspan="3">{text(out.status)}</td></tr>'
            )
    return (
        '<div class="mi-impl"><p>Each sub-goal has its own improve recipe (Locate, then Steer, '
        "then a measured improvement against a same-size random control):</p>"
        '<div class="mi-table-wrap"><table class="mi-table"><thead><tr>'
        '<th scope="col">sub-goal</th><th scope="col">metric</th><th scope="col">result</th>'
        f'<th scope="col">detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div></div>'
    )


def _short_state(store: ResultStore | None) -> str:
    state = store.state if store else "off"
    return {
        "off": "results off in this build",
        "no-impls": f"needs the impls extra ({INSTALL_HINT})",
        "cache": "not computed yet",
        "compute": "not computed",
        "unavailable": "reference_impls not importable",
    }.get(state, state)


# -- objects -------------------------------------------------------------------------------


def _object_body(site: Site, store: ResultStore | None, node: Node, src: str) -> str:
    files = [path for path in node.impls if site.repo.exists(path)]
    if not files:
        planned = ", ".join(f"<code>{text(p)}</code>" for p in node.impls)
        where = f" It will live in {planned}." if planned else ""
        return (
            '<div class="mi-impl mi-impl--missing" role="note">'
            f"<p><strong>Reference implementation: not yet implemented.</strong>{where}</p></div>"
        )
    constructors = OBJECT_CONSTRUCTORS.get(node.id, ())
    names = ", ".join(f"<code>{text(n)}</code>" for n in constructors)
    parts = [
        '<div class="mi-impl mi-impl--ready">',
        "<p>Every method names this object with the shared addressing module"
        + (f" ({names})" if names else "")
        + ": a <code>Site</code> knows its TransformerLens hook and its slice of the "
        "activation, so any method can score, patch or steer it.</p>",
    ]
    listing = store.listing() if store else None
    if listing is not None:
        parts.append(_object_truth(listing, node))
        parts.append(_object_methods(site, store, listing, node, src))
    else:
        parts.append(_state_note(store, "mi-atlas list --json"))
    for path in files:
        parts.append(_source(site, path, constructors))
    parts.append("</div>")
    return "".join(parts)


def _object_truth(listing: Any, node: Node) -> str:
    items, figs = [], []
    for model in listing.models:
        truth = (listing.cards.get(model) or {}).get("ground_truth") or {}
        said = recovery.planted_for_object(node.id, truth)
        if said:
            items.append(f"<li><code>{text(model)}</code>: {text(said)}</li>")
            fig = _truth_figure(node.id, model, listing.cards[model])
            if fig:
                figs.append(fig)
    if not items:
        return (
            '<p class="mi-impl-state">No zoo model plants a structure in this object, so no '
            "method's result here can be checked against a ground truth.</p>"
        )
    return (
        "<h3>Planted in the zoo</h3>"
        f'<ul class="mi-truth-list">{"".join(items)}</ul>'
        f'<div class="mi-result-figures" data-search-exclude>{"".join(figs)}</div>'
    )


def _truth_figure(object_id: str, model: str, card: dict[str, Any]) -> str | None:
    """The card's own measurement behind the ground truth, as a heat-map, where there is one."""
    truth = card.get("ground_truth") or {}
    if object_id in ("attention-head", "circuit") and truth.get("induction_scores"):
        rows, values, planted = [], [], []
        for key, label in (
            ("previous_token_scores", "previous-token"),
            ("induction_scores", "induction"),
        ):
            for layer, scores in enumerate(truth.get(key) or []):
                rows.append(f"L{layer} {label}")
                values.append([float(v) for v in scores])
                planted.append(
                    [
                        recovery.planted_label(
                            {"kind": "head_out", "layer": layer, "head": h}, truth
                        )
                        for h in range(len(scores))
                    ]
                )
        if not rows:
            return None
        grid = figures.Grid(
            rows, [f"H{h}" for h in range(len(values[0]))], values, planted, "layer, score", "head"
        )
        svg = figures.heatmap(
            grid,
            fig_id=f"truth-{object_id}-{model}",
            title=f"{model}: attention-pattern scores per head (from the model card)",
            description="Previous-token and induction attention scores of every head; the "
            "planted heads are outlined.",
        )
        return (
            f'<figure class="mi-result-figure">{svg}<figcaption>The zoo card\'s direct check on '
            f"<code>{text(model)}</code>: attention scores per head; planted heads outlined."
            "</figcaption></figure>"
        )
    return None


def _object_methods(site: Site, store: ResultStore, listing: Any, node: Node, src: str) -> str:
    rows = []
    for runnable in sorted(listing.runnables.values(), key=lambda r: (r.kind, r.name)):
        out = store.outcome(runnable.name)
        if not out.ok or node.id not in recovery.objects_of(out.doc or {}):
            continue
        from .scoreboard import node_of

        where = node_of(site, runnable)
        name = f"<code>{text(runnable.name)}</code>"
        label = link(site.href(src, routes.node(*where)), name) if where else name
        s = recovery.summarise(out.doc or {})
        rows.append(
            f"<tr><td>{label}</td><td><code>{text(out.model)}</code></td>"
            f'<td>{text(s.metric)}</td><td class="mi-num">{text(s.value)}</td></tr>'
        )
    if not rows:
        return '<p class="mi-impl-state">No result in this build acts on this object yet.</p>'
    return (
        "<h3>Methods whose results act on this object</h3>"
        '<div class="mi-table-wrap"><table class="mi-table"><thead><tr>'
        '<th scope="col">method / recipe</th><th scope="col">zoo model</th>'
        '<th scope="col">metric</th><th scope="col">value</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def results_files(store: ResultStore | None) -> list[tuple[str, str]]:
    """(site path, JSON text) of every successful run, linked from the pages that show it."""
    import json

    if store is None:
        return []
    return [
        (
            RESULTS_ROUTE.format(name=out.name, model=out.model),
            json.dumps(out.doc, indent=2, ensure_ascii=False),
        )
        for out in store.outcomes()
        if out.ok
    ]
