"""The "Reference implementation" section of a node page: source, command and its run.

Everything shown comes from the runs folder (`runfolder.RunFolder`, written by `mi-atlas run
--all`): a locate or steer node shows the run documents whose `method` is its id, a sub-goal
its recipe's, a goal a summary of its sub-goals', an object the planted components and the
runs that act on it. The module's source is shown highlighted and linked to the repository.
Whatever is missing is said plainly with the command that makes it: no module yet, nothing
registered, no runs folder, no document for this runnable, or a failed run.
"""

from __future__ import annotations

from functools import cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ..runs import Edge, IndexEntry, LocateResult, Run, Site
from ..taxonomy import Node
from . import result_view, routes
from .context import Site as SiteContext
from .html import external, link, text
from .pages import Section
from .runfolder import RunFolder

RESULTS_ROUTE = "results/{name}.json"  # each run document, downloadable as it was read


def implementation_section(site: SiteContext, axis: str, node: Node, src: str) -> Section:
    """The node's reference implementation: what runs, how to run it, and what it found."""
    if axis == "objects":
        body = _object_body(site, node, src)
    elif axis == "goals" and node.children:
        body = _goal_body(site, node, src)
    else:
        body = _runnable_body(site, axis, node, src)
    return Section("Reference implementation", body, "reference-implementation")


def node_of(site: SiteContext, entry: IndexEntry) -> tuple[str, str] | None:
    """(axis, node id) of the page that shows `entry`: the taxonomy node of its `method`."""
    axes = ("goals",) if entry.kind == "recipe" else ("locate", "steer", "objects")
    tax = site.catalog.taxonomy
    return next(((axis, entry.method) for axis in axes if entry.method in tax[axis].nodes), None)


def missing_note(
    folder: RunFolder | None, name: str | None, entry: IndexEntry | None = None
) -> str:
    """Why there is no run document here, and the command that makes it."""
    run_all = folder.run_all if folder else "mi-atlas run --all"
    where = f"<code>{text(folder.shown_path)}</code>" if folder else "the runs folder"
    if entry is not None and entry.error:
        state, message = (
            "failed",
            (
                f"<strong>The run failed:</strong> <code>{text(entry.error)}</code>. Reproduce it "
                f"with <code>{text(entry.command)}</code>."
            ),
        )
    elif folder is None or folder.index is None:
        state, message = (
            "missing",
            (
                f"<strong>No results in this build:</strong> {where} has no run documents yet. "
                f"<code>{text(run_all)}</code> writes them (with the <code>impls</code> extra "
                "installed); then rebuild the site."
            ),
        )
    else:
        one = f"<code>mi-atlas run {text(name)} --json</code> prints it, " if name else ""
        state, message = (
            "missing",
            (
                f"<strong>Not computed yet:</strong> {where} holds no run document for "
                f"{'<code>' + text(name) + '</code>' if name else 'this'}. {one}"
                f"<code>{text(run_all)}</code> writes it; then rebuild the site."
            ),
        )
    return f'<p class="mi-impl-state mi-impl-state--{state}" role="note">{message}</p>'


# -- methods and recipes -------------------------------------------------------------------


def _runnable_body(site: SiteContext, axis: str, node: Node, src: str) -> str:
    folder: RunFolder | None = site.runs
    files = [path for path in node.impls if site.repo.exists(path)]
    entries = folder.of_method(node.id) if folder else []
    if not files and not entries:
        planned = ", ".join(f"<code>{text(p)}</code>" for p in node.impls)
        where = f" It will live in {planned}." if planned else ""
        return (
            '<div class="mi-impl mi-impl--missing" role="note">'
            f"<p><strong>Reference implementation: not yet implemented.</strong>{where}</p>"
            f"{_why_not(site, node)}</div>"
        )
    what = "recipe" if axis == "goals" else "method"
    parts = ['<div class="mi-impl mi-impl--ready">']
    for entry in entries:
        variant = "" if entry.name == node.id else "variant "
        parts += [
            f'<div class="mi-run" data-method="{text(entry.name)}" data-model="{text(entry.model or "")}">',
            f'<p class="mi-impl-summary">{text(entry.summary)} '
            f'<span class="mi-muted">({variant}{what} <code>{text(entry.name)}</code>, '
            f"model <code>{text(entry.model or '—')}</code>)</span></p>",
            _command(entry.command),
            _result_block(site, folder, entry, src),
            "</div>",
        ]
    if not entries:
        error = _import_error(folder, files) if folder else None
        parts.append(
            f'<p class="mi-impl-state mi-impl-state--failed" role="note"><strong>Not runnable:'
            f"</strong> the module failed to import: <code>{text(error)}</code>.</p>"
            if error
            else missing_note(folder, node.id)
        )
    shown = list(dict.fromkeys([*files, *(e.source for e in entries if e.source)]))
    parts += [_source(site, path) for path in shown if site.repo.exists(path)]
    parts.append("</div>")
    return "".join(parts)


def _command(command: str) -> str:
    return (
        '<p class="mi-impl-run">Run it (prints the run document this page is made from):</p>'
        '<div class="highlight mi-command"><pre><span></span><code>'
        f"{text(command)}</code></pre></div>"
    )


def _result_block(site: SiteContext, folder: RunFolder | None, entry: IndexEntry, src: str) -> str:
    run = folder.runs.get(entry.name) if folder else None
    if run is None:
        return missing_note(folder, entry.name, entry)
    figs, table = result_view.render(run, f"fig-{entry.name}")
    v = result_view.verdict(run)
    json_href = site.href(src, RESULTS_ROUTE.format(name=entry.name))
    truth = ""
    if run.truth:
        planted = "; ".join(f"{p.target.label} ({p.role})" for p in run.truth.planted[:12])
        more = len(run.truth.planted) - 12
        truth = (
            f'<p class="mi-result-truth">Planted in <code>{text(run.model.name)}</code>: '
            f"{text(run.truth.description)} — {text(planted)}"
            + (f" and {more} more" if more > 0 else "")
            + ".</p>"
        )
    seeds = (
        f"{len(run.seeds)} seeds"
        if len(run.seeds) > 1
        else f"seed {run.seeds[0]}"
        if run.seeds
        else ""
    )
    return (
        '<div class="mi-run-result">'
        f'<h3 id="result-{text(entry.name)}">Result on <code>{text(run.model.name)}</code>, '
        f"task <code>{text(run.task.name)}</code></h3>{truth}"
        f'<p class="mi-result-verdict mi-verdict-line--{v.level}">'
        f'<span class="mi-verdict mi-verdict--{v.level}" aria-hidden="true">{v.mark}</span> '
        f"<strong>{text(v.headline)}</strong> — {text(v.why)}.</p>"
        f'<div class="mi-result-figures" data-search-exclude>{figs}</div>'
        f'<div class="mi-result-numbers">{table}</div>'
        f'<p class="mi-muted mi-result-provenance">Made by <code>{text(run.command or entry.command)}</code>'
        f"{'; ' + text(seeds) if seeds else ''}; {link(json_href, 'the run document')}.</p></div>"
    )


def _import_error(folder: RunFolder, files: list[str]) -> str | None:
    errors = folder.index.import_errors if folder.index else {}
    for path in files:
        module = path.removesuffix(".py").replace("/", ".")
        if module in errors:
            return errors[module]
    return None


def _why_not(site: SiteContext, node: Node) -> str:
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


def _source(site: SiteContext, path: str) -> str:
    """The file, highlighted, linked to the repository."""
    code = (site.repo.root / path).read_text(encoding="utf-8")
    url = site.repo.source_url(path)
    label = f"<code>{text(path)}</code>"
    return (
        '<details class="mi-source" data-search-exclude>'
        f"<summary>Source: {label}, {code.count(chr(10)) + 1} lines</summary>"
        f'<p class="mi-source-link">{external(url, f"{label} in the repository") if url else label}</p>'
        f"{_highlighted(code)}</details>"
    )


# -- goals ---------------------------------------------------------------------------------


def _goal_body(site: SiteContext, node: Node, src: str) -> str:
    folder: RunFolder | None = site.runs
    rows = []
    for child in node.children:
        name = link(site.href(src, routes.node("goals", child.id)), text(child.name))
        entries = [e for e in (folder.of_method(child.id) if folder else []) if e.kind == "recipe"]
        run = folder.runs.get(entries[0].name) if entries else None
        if run is None:
            state = (
                "no recipe registered"
                if folder and folder.index and not entries
                else "not computed"
            )
            rows.append(f'<tr><td>{name}</td><td colspan="2">{state}</td></tr>')
            continue
        v = result_view.verdict(run)
        rows.append(
            f'<tr><td>{name}</td><td><span class="mi-verdict mi-verdict--{v.level}">{v.mark}</span> '
            f"{text(v.headline)}</td><td>{text(v.why)}</td></tr>"
        )
    note = "" if folder and folder.index else missing_note(folder, None)
    return (
        '<div class="mi-impl"><p>Each sub-goal has its own improve recipe (Locate, then Steer, '
        "then a measured improvement against a control):</p>"
        '<div class="mi-table-wrap"><table class="mi-table"><thead><tr>'
        '<th scope="col">sub-goal</th><th scope="col">result</th><th scope="col">against the '
        f"control</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>{note}</div>"
    )


# -- objects -------------------------------------------------------------------------------


def _targets(run: Run) -> list[Site]:
    """Every site a run scored or acted on (both ends of an edge)."""
    result = run.result
    found = (
        [s.target for s in result.scores]
        if isinstance(result, LocateResult)
        else list(getattr(result, "targets", []))
    )
    return [s for t in found for s in ((t.upstream, t.downstream) if isinstance(t, Edge) else (t,))]


def _object_body(site: SiteContext, node: Node, src: str) -> str:
    folder: RunFolder | None = site.runs
    files = [path for path in node.impls if site.repo.exists(path)]
    if not files:
        planned = ", ".join(f"<code>{text(p)}</code>" for p in node.impls)
        where = f" It will live in {planned}." if planned else ""
        return (
            '<div class="mi-impl mi-impl--missing" role="note">'
            f"<p><strong>Reference implementation: not yet implemented.</strong>{where}</p></div>"
        )
    parts = [
        '<div class="mi-impl mi-impl--ready">',
        "<p>Every method names this object with the shared addressing module: a "
        "<code>Site</code> knows its TransformerLens hook and its slice of the activation, so "
        "any method can score, patch or steer it.</p>",
    ]
    if folder is None or not folder.runs:
        parts.append(missing_note(folder, None))
    else:
        parts.append(_object_truth(folder, node))
        parts.append(_object_runs(site, folder, node, src))
    parts += [_source(site, path) for path in files]
    parts.append("</div>")
    return "".join(parts)


def _object_truth(folder: RunFolder, node: Node) -> str:
    planted: dict[str, dict[str, str]] = {}  # model -> label -> role
    # the zoo's truths as the index lists them, then those of runs on other models
    truths = (
        [(z.model.name, z.truth) for z in folder.index.models if z.truth] if folder.index else []
    )
    truths += [(run.model.name, run.truth) for run in folder.runs.values() if run.truth]
    for model, truth in truths:
        for p in truth.planted:
            ends = (
                (p.target.upstream, p.target.downstream)
                if isinstance(p.target, Edge)
                else (p.target,)
            )
            if (node.id == "circuit" and isinstance(p.target, Edge)) or any(
                e.object == node.id for e in ends
            ):
                planted.setdefault(model, {})[p.target.label] = p.role
    if not planted:
        return (
            '<p class="mi-impl-state">No model in this build plants a component in this object, '
            "so no result here can be checked against a ground truth.</p>"
        )
    items = "".join(
        f"<li><code>{text(model)}</code>: "
        + text(", ".join(f"{label} ({role})" for label, role in labels.items()))
        + "</li>"
        for model, labels in planted.items()
    )
    return f'<h3>Planted in the zoo</h3><ul class="mi-truth-list">{items}</ul>'


def _object_runs(site: SiteContext, folder: RunFolder, node: Node, src: str) -> str:
    rows = []
    for entry in folder.entries:
        run = folder.runs.get(entry.name)
        if run is None or not any(t.object == node.id for t in _targets(run)):
            continue
        where = node_of(site, entry)
        name = f"<code>{text(entry.name)}</code>"
        label = link(site.href(src, routes.node(*where)), name) if where else name
        v = result_view.verdict(run)
        rows.append(
            f"<tr><td>{label}</td><td class='mi-nowrap'><code>{text(run.model.name)}</code></td>"
            f'<td><span class="mi-verdict mi-verdict--{v.level}">{v.mark}</span> '
            f"{text(v.headline)}</td></tr>"
        )
    if not rows:
        return '<p class="mi-impl-state">No run in this build acts on this object yet.</p>'
    return (
        "<h3>Runs that act on this object</h3>"
        '<div class="mi-table-wrap"><table class="mi-table"><thead><tr>'
        '<th scope="col">method / recipe</th><th scope="col">model</th>'
        '<th scope="col">result</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def results_files(folder: RunFolder | None) -> list[tuple[str, str]]:
    """(site path, JSON text) of every run document, linked from the pages that show it."""
    if folder is None:
        return []
    return [
        (RESULTS_ROUTE.format(name=name), run.model_dump_json(indent=2))
        for name, run in folder.runs.items()
    ]
