"""The paper page and the taxonomy node page, rendered to HTML from a `Site`.

A node page is a header followed by sections. `NODE_SECTIONS` lists the functions that make
them, in order; each takes (site, axis, node, src) and returns a `Section` or None. The plugin puts
the reference implementation's section (`impl_section`, which imports this module) first.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..schema import Paper
from ..taxonomy import AXES, Node
from . import routes
from .catalog import AXIS_LABELS
from .context import Site
from .html import external, link, text, url_attr

AXIS_PLURALS = {
    "objects": "Objects",
    "locate": "Locate methods",
    "steer": "Steer methods",
    "goals": "Goals",
}
NO_AUTHORS = '<span class="mi-muted">Authors not recorded yet</span>'
LINK_FIELDS = (
    ("url", "Paper", lambda v: v),
    ("arxiv", "arXiv", lambda v: f"https://arxiv.org/abs/{v}"),
    ("doi", "DOI", lambda v: f"https://doi.org/{v}"),
    ("openreview", "OpenReview", lambda v: f"https://openreview.net/forum?id={v}"),
    ("acl", "ACL Anthology", lambda v: f"https://aclanthology.org/{v}"),
    ("code", "Code", lambda v: v),
)


@dataclass(frozen=True)
class Section:
    """One titled part of a node page: `title` is plain text, `html` is rendered HTML.

    `late` sections are put into the finished page after templating and search indexing
    (for long tables that the site search should not index)."""

    title: str
    html: str
    anchor: str
    late: bool = False


NodeSection = Callable[[Site, str, Node, str], "Section | None"]


# -- shared pieces -------------------------------------------------------------------------


def author_list(
    authors: list[str], limit: int | None = None, *, search: Callable[[str], str] | None = None
) -> str:
    """'A, B and C' (escaped); with `limit`, longer lists end in 'et al.'. With `search`
    (name -> explorer URL), each name links to a search for that author's papers."""
    if search is None:
        names = [text(name) for name in authors]
    else:
        names = [link(search(name), text(name), css="mi-author") for name in authors]
    if limit is not None and len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def tag_chip(site: Site, src: str, axis: str, node_id: str, *, primary: bool = False) -> str:
    node = site.catalog.taxonomy[axis].nodes[node_id]
    css = f"mi-tag mi-tag--{axis}" + (" mi-tag--primary" if primary else "")
    return link(site.href(src, routes.node(axis, node_id)), text(node.name), css=css)


def tag_chips(site: Site, src: str, paper: Paper, axis: str) -> str:
    tags = getattr(paper, axis)
    if not tags:
        return '<span class="mi-muted">none</span>'
    return " ".join(
        tag_chip(site, src, axis, tag, primary=index == 0) for index, tag in enumerate(tags)
    )


def paper_table(site: Site, src: str, papers: list[Paper], *, caption: str) -> str:
    """A sortable table of papers: title (linked to its page), authors, venue, year."""
    if not papers:
        return '<p class="mi-empty">No paper in the index has this tag yet.</p>'
    rows = []
    for paper in papers:
        href = site.href(src, routes.paper(paper.id))
        rows.append(
            "<tr>"
            f'<td data-sort="{text(paper.title.casefold())}">{link(href, text(paper.title))}</td>'
            f"<td>{author_list(paper.authors, limit=3)}</td>"
            f"<td>{text(paper.venue or '')}</td>"
            f'<td data-sort="{paper.year}">{paper.year}</td>'
            "</tr>"
        )
    head = "".join(
        f'<th scope="col" data-sort-type="{kind}">{label}</th>'
        for label, kind in (
            ("Title", "text"),
            ("Authors", "text"),
            ("Venue", "text"),
            ("Year", "number"),
        )
    )
    return (
        '<div class="mi-table-wrap" data-search-exclude>'
        f'<table class="mi-table mi-sortable"><caption class="mi-sr-only">{text(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# -- the paper page ------------------------------------------------------------------------


def paper_page(site: Site, paper: Paper, src: str) -> str:
    """Every field of one entry, its links, its BibTeX with a copy button, an edit link."""
    venue = site.catalog.taxonomy.venues.by_name.get(paper.venue)
    venue_title = f' title="{text(venue.full)}"' if venue else ""
    edit = site.repo.edit_url(f"{site.papers_path}/{paper.id}.yaml")
    edit_link = (
        f'<a class="mi-edit" href="{url_attr(edit)}" rel="noopener">Edit this entry</a>'
        if edit
        else ""
    )

    def by_author(name: str) -> str:
        return site.href(src, routes.EXPLORER, query={"search": name})

    links = " ".join(
        external(make(getattr(paper, name)), label, css="md-button mi-link")
        for name, label, make in LINK_FIELDS
        if getattr(paper, name)
    )
    parts = [
        '<article class="mi-paper">',
        f'<p class="mi-kicker"><span class="mi-venue"{venue_title}>{text(paper.venue or "venue not known yet")}</span>'
        f" · {paper.year}</p>",
        f'<h1 id="title">{text(paper.title)}</h1>',
        f'<p class="mi-authors">{author_list(paper.authors, search=by_author) or NO_AUTHORS}</p>',
        f'<p class="mi-links">{links} {edit_link}</p>',
    ]
    if paper.aka:
        aka = ", ".join(f"<strong>{text(name)}</strong>" for name in paper.aka)
        parts.append(f'<p class="mi-aka">Also known as: {aka}</p>')
    if runnable := runnable_links(site, src, paper):
        parts.append(f'<p class="mi-run-links">{runnable}</p>')
    if paper.tldr:
        parts.append(f'<p class="mi-tldr"><strong>TL;DR</strong> {text(paper.tldr)}</p>')
    if paper.abstract:
        parts += [
            '<h2 id="abstract">Abstract</h2>',
            f'<p class="mi-abstract">{text(paper.abstract)}</p>',
        ]
    parts += ['<h2 id="taxonomy">In the taxonomy</h2>', '<dl class="mi-axes">']
    for axis in AXES:
        parts.append(f"<dt>{AXIS_PLURALS[axis]}</dt><dd>{tag_chips(site, src, paper, axis)}</dd>")
    parts.append("</dl>")
    bibtex = site.bibtex.get(paper.id)
    if bibtex:
        parts += [
            '<h2 id="bibtex">BibTeX</h2>',
            f'<pre class="mi-bibtex"><code>{text(bibtex.strip())}</code></pre>',
        ]
    parts += [_entry_facts(paper), "</article>"]
    return "\n".join(parts)


RUNNABLE_AXES = ("locate", "steer")


def runnable_links(site: Site, src: str, paper: Paper) -> str:
    """ "▶ method" links to the node pages of the paper's locate and steer methods that have a
    reference implementation, where a reader can run it on the zoo models."""
    taxonomy = site.catalog.taxonomy
    items = []
    for axis in RUNNABLE_AXES:
        for tag in getattr(paper, axis):
            node = taxonomy[axis].nodes[tag]
            if any(site.repo.exists(path) for path in node.impls):
                items.append(
                    link(
                        site.href(src, routes.node(axis, tag)),
                        f"▶ runnable method: {text(node.name)}",
                        css="mi-run",
                    )
                )
    return " · ".join(items)


def _entry_facts(paper: Paper) -> str:
    """What the page shows nowhere else: the entry's notes, when it was added, its source.

    Title, authors, links, tags and BibTeX extras are already on the page above; repeating
    them as a raw field table made every paper page say everything twice."""
    facts = []
    if paper.notes:
        facts.append(("Notes", text(paper.notes)))
    if paper.added:
        facts.append(("Added", paper.added.isoformat()))
    if paper.provenance:
        facts.append(
            (
                "Imported from",
                "<br>".join(
                    text(
                        item.source
                        + (f", line {item.line}" if item.line else "")
                        + (f", under “{item.section}”" if item.section else "")
                    )
                    for item in paper.provenance
                ),
            )
        )
    if not facts:
        return ""
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return f'<h2 id="entry">About this entry</h2><dl class="mi-axes mi-entry" data-search-exclude>{rows}</dl>'


# -- meta descriptions ---------------------------------------------------------------------

DESCRIPTION_LIMIT = 160  # characters: about what search engines and link previews show


def clip(value: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """`value` on one line, cut at a word boundary to at most `limit` characters."""
    flat = " ".join(value.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "…"


def paper_description(paper: Paper) -> str:
    """A paper page's meta description: its TL;DR or abstract, else who published it where."""
    summary = paper.tldr or paper.abstract
    if summary:
        return clip(summary)
    names = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    by = f" by {names}" if paper.authors else ""
    where = f"{paper.venue} {paper.year}" if paper.venue else str(paper.year)
    return clip(f"{paper.title} ({where}){by}: BibTeX, links and tags.")


def node_description(node: Node, axis: str, count: int) -> str:
    """A node page's meta description: the node's own description and its paper count."""
    papers = f"{count} paper{'' if count == 1 else 's'}"
    return clip(f"{AXIS_LABELS[axis]}: {node.name}. {node.description} {papers}.")


_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)
_TAG = re.compile(r"<[^>]+>")


def first_paragraph(page_html: str) -> str:
    """A hand-written page's meta description: its first paragraph as plain text, clipped."""
    match = _PARAGRAPH.search(page_html)
    return clip(html.unescape(_TAG.sub("", match.group(1)))) if match else ""


def other_names(node: Node) -> list[str]:
    """The node's aliases worth showing as "Also called": not its own name again, and not
    spelling variants of a name already shown (case, '&' for 'and', punctuation, plurals,
    a typo: the importers need those, readers do not)."""
    shown = [_name_key(node.name)]
    names = []
    for alias in node.aliases:
        key = _name_key(alias)
        if any(key == seen or SequenceMatcher(None, key, seen).ratio() >= 0.9 for seen in shown):
            continue
        shown.append(key)
        names.append(alias)
    return names


def _name_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.casefold().replace("&", "and"))


# -- the node page -------------------------------------------------------------------------


def node_header(site: Site, axis: str, node: Node, src: str) -> str:
    taxonomy = site.catalog.taxonomy
    papers = site.catalog.papers_of(axis, node.id)
    parent = taxonomy[axis].parent.get(node.id)
    if parent:
        kicker = "Sub-goal of " + link(
            site.href(src, routes.node(axis, parent)), text(taxonomy[axis].nodes[parent].name)
        )
    else:
        kicker = AXIS_LABELS[axis]
    years = sorted({paper.year for paper in papers})
    facts = [
        f'<span class="mi-stat"><strong>{len(papers)}</strong> paper{"s" if len(papers) != 1 else ""}</span>'
    ]
    if years:
        span = f"{years[0]}–{years[-1]}" if years[0] != years[-1] else str(years[0])
        facts.append(f'<span class="mi-stat">{span}</span>')
    explore = site.href(src, routes.EXPLORER, query={axis: node.id})
    facts.append(link(explore, "Open in the explorer", css="md-button md-button--primary"))
    facts.append(
        link(site.href(src, routes.node_feed(axis, node.id)), "Atom feed", css="md-button mi-feed")
    )
    parts = [
        '<header class="mi-node">',
        f'<p class="mi-kicker">{kicker}</p>',
        f'<h1 id="title">{text(node.name)}</h1>',
        f'<p class="mi-lead">{text(node.description)}</p>',
    ]
    if node.notation:
        parts.append(f'<p class="mi-notation">Notation: <code>{text(node.notation)}</code></p>')
    aliases = other_names(node)
    if aliases:
        parts.append(f'<p class="mi-aliases">Also called: {", ".join(map(text, aliases))}</p>')
    parts += [f'<p class="mi-facts">{" ".join(facts)}</p>', "</header>"]
    return "\n".join(parts)


def implementation_section(site: Site, axis: str, node: Node, src: str) -> Section:
    """Links to the node's reference implementation files, or a clear "not yet" state."""
    items = []
    for path in node.impls:
        if site.repo.exists(path):
            url = site.repo.source_url(path)
            label = f"<code>{text(path)}</code>"
            items.append(f"<li>{external(url, label) if url else label}</li>")
    if items:
        body = (
            '<div class="mi-impl mi-impl--ready"><p>Reference implementation: '
            f"the source is in the repository.</p><ul>{''.join(items)}</ul></div>"
        )
    else:
        planned = ", ".join(f"<code>{text(path)}</code>" for path in node.impls)
        where = f" It will live in {planned}." if planned else ""
        body = (
            '<div class="mi-impl mi-impl--missing" role="note">'
            f"<p><strong>Reference implementation: not yet implemented.</strong>{where}</p></div>"
        )
    return Section("Reference implementation", body, "reference-implementation")


def subgoals_section(site: Site, axis: str, node: Node, src: str) -> Section | None:
    """For a goal with sub-goals: each sub-goal, its description and paper count."""
    if not node.children:
        return None
    items = "".join(
        f"<li>{link(site.href(src, routes.node(axis, child.id)), text(child.name))} "
        f'<span class="mi-count">{site.catalog.count(axis, child.id)}</span>'
        f"<br>{text(child.description)}</li>"
        for child in node.children
    )
    return Section("Sub-goals", f'<ul class="mi-node-list">{items}</ul>', "sub-goals")


def papers_section(site: Site, axis: str, node: Node, src: str) -> Section:
    papers = site.catalog.papers_of(axis, node.id)
    table = paper_table(site, src, papers, caption=f"Papers tagged {node.name}")
    return Section(f"Papers ({len(papers)})", table, "papers", late=True)


NODE_SECTIONS: list[NodeSection] = [subgoals_section, papers_section]


def node_sections(site: Site, axis: str, node: Node, src: str) -> list[Section]:
    sections = (make(site, axis, node, src) for make in NODE_SECTIONS)
    return [section for section in sections if section is not None]
