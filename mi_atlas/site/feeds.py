"""Atom feeds (RFC 4287) of recently added papers: one for the site, one per taxonomy node.

Written with `xml.etree`, so every title and summary is escaped as XML text; titles are
`type="text"`, never HTML. Links are absolute when `site_url` is set, else relative to the feed.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ..schema import Paper
from ..taxonomy import AXES, Taxonomy
from .catalog import AXIS_LABELS, added_date

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def paper_summary(paper: Paper, taxonomy: Taxonomy) -> str:
    """An entry's summary: its one-line TL;DR or abstract, else what the index knows of it
    (authors, venue, year and tags), so a feed reader always has a line to show."""
    if paper.tldr or paper.abstract:
        return paper.tldr or paper.abstract or ""
    authors = paper.authors[:3]
    parts = [", ".join(authors) + (" et al." if len(paper.authors) > 3 else "")] if authors else []
    parts.append(f"{paper.venue} {paper.year}" if paper.venue else str(paper.year))
    for axis in AXES:
        names = [taxonomy[axis].nodes[tag].name for tag in getattr(paper, axis)]
        if names:
            parts.append(f"{AXIS_LABELS[axis]}: {', '.join(names)}")
    if paper.aka:
        parts.append("Also known as: " + ", ".join(paper.aka))
    return ". ".join(parts) + "."


def atom_feed(
    *,
    title: str,
    feed_path: str,
    papers: Iterable[Paper],
    page_url,
    site_url: str,
    home_path: str,
    subtitle: str = "",
    summarise=None,
) -> str:
    """The feed at `feed_path` (site-relative) listing `papers`; `page_url(paper)` is a paper's
    page path relative to the site root; `summarise(paper)` gives an entry's summary (by
    default its TL;DR or abstract, if any)."""
    papers = list(papers)

    def absolute(path: str) -> str:
        if site_url:
            return site_url.rstrip("/") + "/" + path
        return posixpath.relpath(path or ".", posixpath.dirname(feed_path) or ".")

    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    sub(feed, "title", title, type="text")
    if subtitle:
        sub(feed, "subtitle", subtitle, type="text")
    sub(feed, "id", absolute(feed_path) if site_url else f"urn:mi-atlas:{feed_path}")
    sub(feed, "link", rel="self", href=absolute(feed_path))
    sub(feed, "link", rel="alternate", href=absolute(home_path))
    newest = max((added_date(p) for p in papers), default=dt.date(1970, 1, 1))
    sub(feed, "updated", _stamp(newest))
    sub(sub(feed, "author"), "name", "mi-atlas")
    sub(feed, "generator", "mi-atlas")
    for paper in papers:
        entry = sub(feed, "entry")
        sub(entry, "title", paper.title, type="text")
        url = absolute(page_url(paper))
        sub(entry, "id", url if site_url else f"urn:mi-atlas:paper:{paper.id}")
        sub(entry, "link", rel="alternate", href=url)
        if paper.url:  # an entry that still needs its link has none
            sub(entry, "link", rel="related", href=paper.url)
        sub(entry, "updated", _stamp(added_date(paper)))
        for name in paper.authors:
            sub(sub(entry, "author"), "name", name)
        summary = summarise(paper) if summarise else (paper.tldr or paper.abstract)
        if summary:
            sub(entry, "summary", summary, type="text")
        if paper.venue:  # an entry that still needs its venue has none
            sub(entry, "category", term=paper.venue, label=f"{paper.venue} {paper.year}")
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"
