"""Pages and blocks about the whole index: home blocks, taxonomy, matrices, downloads, explorer.

Hand-written pages ask for a block with a marker comment, e.g. `<!-- mi-atlas:pipeline -->` in
`docs/index.md`; `BLOCKS` maps each marker name to the function that renders it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..taxonomy import AXES, Node
from . import routes
from .catalog import added_date
from .context import Site
from .html import link, text, url_attr
from .pages import AXIS_PLURALS, author_list

PIPELINE = (
    ("locate", "Locate", "Find the objects inside the model that carry a behaviour."),
    ("steer", "Steer", "Change those objects: scale them, optimise them, add vectors."),
    ("goals", "Improve", "Use it to make models safer, more capable and cheaper."),
)


# Meta descriptions of the overview pages (paper and node pages describe themselves).
DESCRIPTIONS = {
    routes.TAXONOMY: "The survey's taxonomy: interpretable objects, locating methods, steering "
    "methods and improvement goals, each with its papers and reference implementation.",
    routes.MATRIX: "Paper counts for object × locate method, locate × steer method, steer "
    "method × goal and method × sub-goal; each cell opens its papers in the explorer.",
    routes.DOWNLOADS: "The whole mi-atlas index as BibTeX, JSON and CSV, and Atom feeds of "
    "recently added papers.",
    routes.EXPLORER: "Filter every paper in the index by object, method, goal, venue and year, "
    "and search titles, authors and abstracts, in your browser.",
}


def axis_description(site: Site, axis: str) -> str:
    ax = site.catalog.taxonomy[axis]
    names = ", ".join(node.name for node in ax.roots)
    return (
        f"{ax.title} in the survey's taxonomy: {names}; {site.catalog.tagged(axis)} tagged papers."
    )


def _count_label(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- home page blocks ----------------------------------------------------------------------


def pipeline_block(site: Site, src: str) -> str:
    """Locate -> Steer -> Improve, each stage with its methods and live paper counts."""
    catalog = site.catalog
    stages = []
    for axis, title, blurb in PIPELINE:
        top = [n for n in catalog.taxonomy[axis].roots]
        items = "".join(
            f"<li>{link(site.href(src, routes.node(axis, n.id)), text(n.name))}"
            f' <span class="mi-count">{catalog.count(axis, n.id)}</span></li>'
            for n in top
        )
        tagged = catalog.tagged(axis)
        stages.append(
            f'<section class="mi-stage mi-stage--{axis}">'
            f'<h3><a href="{site.href(src, routes.axis_index(axis))}">{title}</a></h3>'
            f'<p class="mi-stage__count"><strong>{tagged}</strong> papers</p>'
            f"<p>{blurb}</p><ul>{items}</ul></section>"
        )
    arrow = '<div class="mi-arrow" aria-hidden="true">→</div>'
    return f'<div class="mi-pipeline">{arrow.join(stages)}</div>'


def counts_block(site: Site, src: str) -> str:
    """The headline numbers: papers, venues, years, taxonomy nodes."""
    catalog = site.catalog
    years = catalog.years
    nodes = sum(len(catalog.taxonomy[axis].nodes) for axis in AXES)
    facts = [
        (len(catalog.papers), "papers", routes.EXPLORER),
        (len(catalog.venues), "venues", routes.EXPLORER),
        (nodes, "taxonomy nodes", routes.TAXONOMY),
    ]
    cells = "".join(
        f'<a class="mi-count-card" href="{site.href(src, target)}"><strong>{n}</strong> {label}</a>'
        for n, label, target in facts
    )
    if years:
        cells += f'<span class="mi-count-card"><strong>{years[0]}–{years[1]}</strong> years</span>'
    return f'<div class="mi-counts">{cells}</div>'


def recent_block(site: Site, src: str, limit: int = 8) -> str:
    papers = site.catalog.recent(limit)
    if not papers:
        return '<p class="mi-empty">No paper has been added yet.</p>'
    items = "".join(
        f"<li>{link(site.href(src, routes.paper(p.id)), text(p.title))}"
        f'<br><span class="mi-muted">{author_list(p.authors, limit=3)}'
        f"{' · ' if p.authors else ''}{text(p.venue or '')} {p.year} · added {added_date(p).isoformat()}</span></li>"
        for p in papers
    )
    feed = link(site.href(src, routes.FEED_RECENT), "Atom feed of recent additions", css="mi-feed")
    return f'<ul class="mi-recent">{items}</ul><p>{feed}</p>'


def tag_ids_block(site: Site, src: str) -> str:
    """Every valid tag id per axis, for contributors (the allow-list the validator uses)."""
    parts = []
    for axis in AXES:
        rows = "".join(
            f"<tr><td><code>{text(node.id)}</code></td>"
            f"<td>{link(site.href(src, routes.node(axis, node.id)), text(node.name))}</td></tr>"
            for node in site.catalog.nodes(axis)
        )
        parts.append(
            f'<h3 id="ids-{axis}">{AXIS_PLURALS[axis]} (<code>{axis}</code>)</h3>'
            f'<div class="mi-table-wrap"><table class="mi-table"><thead><tr><th>id</th><th>name</th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return "\n".join(parts)


# -- taxonomy overview pages ---------------------------------------------------------------


def _node_cards(site: Site, src: str, axis: str, nodes) -> str:
    cards = []
    for node in nodes:
        count = site.catalog.count(axis, node.id)
        children = ""
        if node.children:
            children = (
                '<ul class="mi-children">'
                + "".join(
                    f"<li>{link(site.href(src, routes.node(axis, c.id)), text(c.name))}"
                    f' <span class="mi-count">{site.catalog.count(axis, c.id)}</span></li>'
                    for c in node.children
                )
                + "</ul>"
            )
        cards.append(
            '<li class="mi-card">'
            f'<p class="mi-card__title">{link(site.href(src, routes.node(axis, node.id)), text(node.name))}'
            f' <span class="mi-count">{_count_label(count, "paper")}</span></p>'
            f"<p>{text(node.description)}</p>{children}</li>"
        )
    return f'<ul class="mi-cards">{"".join(cards)}</ul>'


def axis_page(site: Site, axis: str, src: str) -> str:
    ax = site.catalog.taxonomy[axis]
    return (
        f'<h1 id="title">{text(ax.title)}</h1>'
        f'<p class="mi-lead">{_count_label(len(ax.nodes), "node")}, '
        f"{site.catalog.tagged(axis)} tagged papers.</p>" + _node_cards(site, src, axis, ax.roots)
    )


def taxonomy_page(site: Site, src: str) -> str:
    parts = [
        '<h1 id="title">Taxonomy</h1>',
        '<p class="mi-lead">The survey sorts work by what it looks at (the object), how it '
        "finds it (locate), how it changes it (steer) and what for (the goal). Every paper is "
        "tagged on each axis; the first tag is its primary one.</p>",
    ]
    for axis in AXES:
        ax = site.catalog.taxonomy[axis]
        parts.append(
            f'<h2 id="{axis}">{link(site.href(src, routes.axis_index(axis)), text(ax.title))}</h2>'
        )
        parts.append(_node_cards(site, src, axis, ax.roots))
    return "\n".join(parts)


# -- matrices ------------------------------------------------------------------------------
#
# Each matrix crosses two taxonomy axes; a cell counts the papers tagged with both its row node
# and its column node, where a goal stands for itself and its sub-goals exactly as in the
# explorer, so a cell's link (`explorer.html?ROW_AXIS=row&COL_AXIS=col`) lists exactly the
# papers it counts. "Method" means the locate and the steer methods together: the method ×
# sub-goal matrix has both as rows, grouped by axis, and the sub-goals as columns, grouped
# under their goals. A method or sub-goal with a reference implementation carries a ▶ link to
# it on its node page.


@dataclass(frozen=True)
class Band:
    """The rows (or columns) of a matrix: nodes of one axis, under an optional group title."""

    axis: str
    nodes: tuple[Node, ...]
    title: str = ""


@dataclass(frozen=True)
class Matrix:
    anchor: str
    title: str
    rows: tuple[Band, ...]
    cols: tuple[Band, ...]
    blurb: str = ""


def _band(site: Site, axis: str, ids=None, title: str = "") -> Band:
    ax = site.catalog.taxonomy[axis]
    return Band(axis, tuple(ax.nodes[i] for i in (ids if ids is not None else ax.leaf_ids)), title)


def matrices(site: Site) -> list[Matrix]:
    """The matrices of the matrix page, in order."""
    goals = site.catalog.taxonomy["goals"]
    sub_goals = tuple(
        _band(site, "goals", [c.id for c in goal.children] or [goal.id], goal.name)
        for goal in goals.roots
    )
    return [
        Matrix(
            "objects-locate",
            "Objects × locate methods",
            (_band(site, "objects"),),
            (_band(site, "locate"),),
            "Which objects each locating method has been used to find.",
        ),
        Matrix(
            "locate-steer",
            "Locate × steer methods",
            (_band(site, "locate"),),
            (_band(site, "steer"),),
            "How what was located was then changed.",
        ),
        Matrix(
            "steer-goals",
            "Steer methods × goals",
            (_band(site, "steer"),),
            (_band(site, "goals", [g.id for g in goals.roots]),),
            "Which steering methods serve which goal (a goal counts its sub-goals' papers).",
        ),
        Matrix(
            "methods-goals",
            "Methods × sub-goals",
            (
                _band(site, "locate", title=AXIS_PLURALS["locate"]),
                _band(site, "steer", title=AXIS_PLURALS["steer"]),
            ),
            sub_goals,
            "Every locate and steer method against every sub-goal.",
        ),
        Matrix(
            "objects-steer",
            "Objects × steer methods",
            (_band(site, "objects"),),
            (_band(site, "steer"),),
            "Which objects each steering method changes.",
        ),
    ]


def _runnable(site: Site, axis: str, node: Node) -> bool:
    """Whether a method or sub-goal has its reference implementation in the repository."""
    return axis != "objects" and any(site.repo.exists(path) for path in node.impls)


def _node_label(site: Site, src: str, axis: str, node: Node) -> str:
    label = link(site.href(src, routes.node(axis, node.id)), text(node.name))
    if _runnable(site, axis, node):
        run = site.href(src, routes.node(axis, node.id), fragment="reference-implementation")
        label += (
            f' <a class="mi-runnable" href="{url_attr(run)}" '
            f'title="{text(f"Run the reference implementation of {node.name}")}">▶</a>'
        )
    return label


def matrix_table(site: Site, src: str, matrix: Matrix) -> str:
    """Counts per (row node, column node); each non-empty cell opens the explorer filtered to it."""
    catalog = site.catalog
    cols = [(band.axis, node) for band in matrix.cols for node in band.nodes]
    counts = {
        (r.axis, row.id, c_axis, col.id): catalog.count_both(r.axis, row.id, c_axis, col.id)
        for r in matrix.rows
        for row in r.nodes
        for c_axis, col in cols
    }
    peak = max(counts.values(), default=0)
    corner = " × ".join(dict.fromkeys(AXIS_PLURALS[b.axis] for b in (*matrix.rows, *matrix.cols)))
    corner_cell = f'<th scope="col" rowspan="{2 if _grouped(matrix.cols) else 1}"><span class="mi-sr-only">{corner}</span></th>'
    head = ""
    if _grouped(matrix.cols):
        head += (
            f"<tr>{corner_cell}"
            + "".join(
                f'<th scope="colgroup" colspan="{len(b.nodes)}" class="mi-group">{text(b.title)}</th>'
                for b in matrix.cols
            )
            + "</tr><tr>"
        )
    else:
        head += f"<tr>{corner_cell}"
    head += "".join(
        f'<th scope="col">{_node_label(site, src, axis, node)}</th>' for axis, node in cols
    )
    head += "</tr>"
    body = []
    for band in matrix.rows:
        if band.title:
            body.append(
                f'<tr class="mi-group"><th scope="rowgroup" colspan="{len(cols) + 1}">'
                f'<span class="mi-group__name">{text(band.title)}</span></th></tr>'
            )
        for row in band.nodes:
            cells = []
            for c_axis, col in cols:
                n = counts[(band.axis, row.id, c_axis, col.id)]
                where = (
                    f'data-row-axis="{band.axis}" data-row="{text(row.id)}" '
                    f'data-col-axis="{c_axis}" data-col="{text(col.id)}"'
                )
                if n == 0:
                    cells.append(
                        f'<td class="mi-cell mi-heat-0" {where}>'
                        '<span aria-label="no papers">0</span></td>'
                    )
                    continue
                heat = 1 + min(4, int(4 * n / peak))
                href = site.href(src, routes.EXPLORER, query={band.axis: row.id, c_axis: col.id})
                label = f"{n} paper{'' if n == 1 else 's'}: {row.name} and {col.name}"
                cells.append(
                    f'<td class="mi-cell mi-heat-{heat}" {where}>'
                    f'<a href="{url_attr(href)}" title="{text(label)}">{n}</a></td>'
                )
            header = _node_label(site, src, band.axis, row)
            body.append(f'<tr><th scope="row">{header}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="mi-table-wrap mi-matrix-wrap" data-search-exclude>'
        f'<table class="mi-table mi-matrix" id="matrix-{matrix.anchor}" '
        f'data-rows="{"+".join(b.axis for b in matrix.rows)}" '
        f'data-cols="{"+".join(b.axis for b in matrix.cols)}">'
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _grouped(bands: tuple[Band, ...]) -> bool:
    return any(band.title for band in bands)


def matrix_page(site: Site, src: str) -> str:
    all_matrices = matrices(site)
    contents = "".join(f'<li><a href="#{m.anchor}">{text(m.title)}</a></li>' for m in all_matrices)
    parts = [
        '<h1 id="title">Matrices</h1>',
        '<p class="mi-lead">How many papers pair each object, method and goal. A paper with '
        "two tags on an axis counts in each of their cells; a goal counts the papers of its "
        "sub-goals. Open a cell to see exactly its papers in the explorer; ▶ leads to a "
        "method's reference implementation.</p>",
        f'<ul class="mi-matrix-index">{contents}</ul>',
    ]
    for m in all_matrices:
        parts += [
            f'<h2 id="{m.anchor}">{text(m.title)}</h2>',
            f"<p>{text(m.blurb)}</p>" if m.blurb else "",
            matrix_table(site, src, m),
        ]
    return "\n".join(parts)


# -- downloads and explorer ----------------------------------------------------------------


def downloads_page(site: Site, src: str) -> str:
    n = len(site.catalog.papers)
    items = "".join(
        f"<li>{link(site.href(src, routes.DOWNLOAD.format(ext=d.ext)), text(d.label), css='md-button')} "
        f'<span class="mi-muted"><code>mi-atlas.{d.ext}</code>, {_size(len(d.content.encode()))}</span></li>'
        for d in site.downloads
    )
    feeds = (
        f"<li>{link(site.href(src, routes.FEED_RECENT), 'Recently added papers')} "
        '<span class="mi-muted">(Atom)</span></li>'
        "<li>One feed per taxonomy node: the <em>Atom feed</em> button on each node page "
        f"(e.g. {link(site.href(src, routes.TAXONOMY), 'the taxonomy')}).</li>"
    )
    return "\n".join(
        [
            '<h1 id="title">Downloads</h1>',
            f'<p class="mi-lead">The whole index, {_count_label(n, "paper")}, in three formats, '
            "made from the same entries as this site.</p>",
            f'<ul class="mi-downloads">{items}</ul>' if items else "",
            '<h2 id="feeds">Feeds</h2>',
            f"<ul>{feeds}</ul>",
        ]
    )


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


# What the explorer's search box searches (search.js), said where the reader types.
SEARCH_HINT = (
    "Search titles, authors, method names (ROME, SAE, activation patching), venues, abstracts"
)


def explorer_page(site: Site, src: str) -> str:
    """The explorer's skeleton; `explorer.js` builds the filters and results from the data file."""
    asset = lambda name: site.href(src, f"{routes.ASSETS}/{name}")  # noqa: E731
    paper_href = site.href(src, routes.paper("__ID__"))
    node_href = site.href(src, routes.node("__AXIS__", "__ID__"))
    return f"""<div class="mi-explorer" id="mi-explorer" data-paper-href="{text(paper_href)}" data-node-href="{text(node_href)}">
<h1 id="title">Explorer</h1>
<div class="mi-explorer__bar">
<label class="mi-sr-only" for="mi-q">{SEARCH_HINT}</label>
<input id="mi-q" class="mi-explorer__search" type="search" placeholder="{SEARCH_HINT}" autocomplete="off" spellcheck="false">
<button type="button" id="mi-filters-open" class="md-button mi-explorer__toggle" aria-controls="mi-filters-panel" aria-expanded="false">Filters<span id="mi-filters-active" class="mi-explorer__active"></span></button>
<label class="mi-explorer__sort">Sort <select id="mi-sort">
<option value="relevance">relevance</option><option value="newest">newest first</option>
<option value="oldest">oldest first</option><option value="title">title</option></select></label>
</div>
<div class="mi-explorer__body">
<div class="mi-explorer__panel" id="mi-filters-panel" aria-label="Filters">
<div class="mi-explorer__panel-head"><strong>Filters</strong>
<button type="button" id="mi-filters-close" class="mi-explorer__close" aria-label="Close the filters">×</button></div>
<form class="mi-explorer__filters" id="mi-filters" aria-label="Filters"></form>
<div class="mi-explorer__panel-foot"><button type="button" id="mi-filters-done" class="md-button md-button--primary">Show the papers</button></div>
</div>
<div class="mi-explorer__backdrop" id="mi-filters-backdrop" hidden></div>
<section class="mi-explorer__results" aria-live="polite">
<div class="mi-explorer__summary">
<p id="mi-count" class="mi-explorer__count">Loading papers…</p>
<button type="button" id="mi-copy" class="md-button md-button--primary" disabled>Copy BibTeX</button>
<button type="button" id="mi-clear" class="md-button">Clear filters</button>
<span id="mi-copied" class="mi-explorer__copied" role="status"></span>
</div>
<ol id="mi-results" class="mi-results"></ol>
<button type="button" id="mi-more" class="md-button" hidden>Show more</button>
</section>
</div>
<noscript><p>The explorer needs JavaScript. Every paper is also listed on its taxonomy pages.</p></noscript>
</div>
<script src="{asset("vendor/minisearch.js")}"></script>
<script src="{asset("papers.js")}"></script>
<script src="{asset("search.js")}"></script>
<script src="{asset("explorer.js")}"></script>
<script src="{asset("explorer-drawer.js")}"></script>
<script src="{asset("bibtex.js")}" defer></script>
"""


# Marker name -> block renderer for hand-written pages (`<!-- mi-atlas:NAME -->`).
BLOCKS: dict[str, Callable[[Site, str], str]] = {
    "pipeline": pipeline_block,
    "counts": counts_block,
    "recent": recent_block,
    "tag-ids": tag_ids_block,
}
