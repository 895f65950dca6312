"""What a page says about itself: its own meta description (not the site-wide one), paper
pages without a second copy of the entry, node pages whose "Also called" never repeats the
node's name. Expected values are made here from the entries and the taxonomy."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

from site_support import REPO

from mi_atlas.taxonomy import AXES


class Head(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.description: str | None = None
        self.descriptions = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and attrs.get("name") == "description":
            self.descriptions += 1
            self.description = attrs.get("content")


def description(path: Path) -> str:
    head = Head()
    head.feed(path.read_text(encoding="utf-8"))
    assert head.descriptions == 1, path
    return head.description or ""


def site_description() -> str:
    from mkdocs.config import load_config

    return load_config(str(REPO / "mkdocs.yml")).site_description.strip()


def test_paper_pages_describe_the_paper(built_site, site_data):
    shared = site_description()
    for paper in site_data.papers:
        said = description(built_site / "papers" / f"{paper.id}.html")
        assert said != shared and len(said) <= 160, paper.id
        summary = " ".join((paper.tldr or paper.abstract or "").split())
        if summary:
            assert summary.startswith(said.rstrip("…")), (paper.id, said)
        else:  # no summary: who published it where
            assert said.startswith(f"{paper.title} ({paper.venue} {paper.year})"), said


def test_node_and_overview_pages_describe_themselves(built_site, site_data):
    shared = site_description()
    for axis in AXES:
        for node in site_data.taxonomy[axis].nodes.values():
            said = description(built_site / "taxonomy" / axis / f"{node.id}.html")
            assert said != shared and node.name in said, node.id
            first = " ".join(node.description.split())[:60]
            assert first in said or said.endswith("…"), (node.id, said)
    for page in ("explorer.html", "matrix.html", "taxonomy/index.html", "downloads.html"):
        assert description(built_site / page) != shared, page


def test_hostile_text_in_a_description_stays_text(built_site, site_data):
    # The parser unescapes the attribute: what a reader's browser sees is the text itself.
    for paper in site_data.hostile:
        raw = (built_site / "papers" / f"{paper.id}.html").read_text(encoding="utf-8")
        tag = re.search(r'<meta name="description" content="([^"]*)">', raw)
        assert tag and "<" not in tag.group(1)
        assert unescape(tag.group(1)).rstrip("…") in " ".join((paper.tldr or "").split())


def test_paper_pages_do_not_repeat_the_entry(built_site, site_data):
    for paper in site_data.papers:
        page = (built_site / "papers" / f"{paper.id}.html").read_text(encoding="utf-8")
        assert "The entry" not in page and "mi-fields" not in page
        assert page.count('id="title">') == 1
        if paper.added:
            assert f"<dt>Added</dt><dd>{paper.added.isoformat()}</dd>" in page


def test_also_called_never_repeats_the_node_name(built_site, site_data):
    def key(name: str) -> str:
        return re.sub(r"[^0-9a-z]+", "", name.casefold().replace("&", "and"))

    shown = 0
    for axis in AXES:
        for node in site_data.taxonomy[axis].nodes.values():
            page = (built_site / "taxonomy" / axis / f"{node.id}.html").read_text(encoding="utf-8")
            also = re.search(r'<p class="mi-aliases">Also called: (.*?)</p>', page)
            if not also:
                continue
            names = [unescape(n) for n in also.group(1).split(", ")]
            keys = [key(n) for n in names]
            assert key(node.name) not in keys, (node.id, names)
            assert len(set(keys)) == len(keys), (node.id, names)
            shown += 1
    assert shown > 10


def test_hand_written_pages_describe_themselves_by_their_first_paragraph(built_site):
    shared = site_description()
    for name in ("about", "contributing", "zoo", "deploying"):
        said = description(built_site / f"{name}.html")
        source = (REPO / "docs" / f"{name}.md").read_text(encoding="utf-8")
        # the first paragraph of the markdown, its markup dropped
        first = next(
            block for block in source.split("\n\n")[1:] if block.strip() and block[0] not in "#`-"
        )
        words = re.sub(r"[*`]|\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(first.split()))
        assert said != shared and words.startswith(said.rstrip("…")[:60]), (name, said, words)
    assert description(built_site / "index.html") == shared  # the home page is the site
