"""The built site, read as files: every generated page, link, download and feed is checked
against the entries it was made from (no browser needed)."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from mkdocs.exceptions import Abort
from site_support import REPO, REPO_URL, SITE_PATH, build_site

from mi_atlas.exporters.bibtex import to_bibtex
from mi_atlas.exporters.csv import to_csv
from mi_atlas.exporters.json import to_json
from mi_atlas.site import routes
from mi_atlas.site.plugin import AtlasPlugin
from mi_atlas.taxonomy import AXES

ATOM = "{http://www.w3.org/2005/Atom}"


class Page(HTMLParser):
    """The links, resources, ids and text of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (tag, url)
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                self.links.append((tag, attrs[name]))


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def pages(built_site: Path) -> dict[Path, Page]:
    return {path: parse(path) for path in sorted(built_site.rglob("*.html"))}


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- structure ----------------------------------------------------------------------------


def test_every_paper_and_node_has_a_page(built_site, site_data):
    for paper in site_data.papers:
        assert (built_site / "papers" / f"{paper.id}.html").is_file()
    for axis in AXES:
        for node_id in site_data.taxonomy[axis].ids:
            assert (built_site / "taxonomy" / axis / f"{node_id}.html").is_file()
            assert (built_site / "feeds" / axis / f"{node_id}.xml").is_file()
    for name in ("index", "explorer", "matrix", "downloads", "contributing", "about"):
        assert (built_site / f"{name}.html").is_file()


def test_the_build_writes_nothing_into_docs(site_data, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (REPO / "docs").rglob("*")}
    build_site(site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site")
    after = {p: p.stat().st_mtime_ns for p in (REPO / "docs").rglob("*")}
    assert after == before


def navigation(html: str) -> str:
    """The primary sidebar of a page: the navigation Material renders into it."""
    start = html.index('class="md-sidebar md-sidebar--primary"')
    return html[start : html.index('class="md-sidebar md-sidebar--secondary"', start)]


def nav_targets(built_site: Path, page: str) -> set[str]:
    """The site paths the primary navigation of `page` links to."""
    html = text_of(built_site / page)
    start = html.index('class="md-sidebar md-sidebar--primary"')
    nav = html[start : html.index('class="md-sidebar md-sidebar--secondary"', start)]
    base = (built_site / page).parent
    return {
        (base / href).resolve().relative_to(built_site.resolve()).as_posix()
        for href in re.findall(r'href="([^"#?]+)"', nav)
    }


def test_paper_pages_are_not_in_the_navigation_but_node_pages_are(built_site, site_data):
    for page in ("index.html", "taxonomy/locate/probing.html", "explorer.html"):
        targets = nav_targets(built_site, page)
        assert not [t for t in targets if t.startswith("papers/")]
        for axis in AXES:
            for node_id in site_data.taxonomy[axis].ids:
                assert f"taxonomy/{axis}/{node_id}.html" in targets, (page, node_id)
    # A paper page carries only the top level of the navigation.
    targets = nav_targets(built_site, f"papers/{site_data.papers[0].id}.html")
    assert {"index.html", "explorer.html", "taxonomy/index.html", "matrix.html"} <= targets
    assert "taxonomy/locate/probing.html" not in targets


def test_a_broken_index_stops_the_build_naming_each_problem(site_data, tmp_path, caplog):
    papers = tmp_path / "papers"
    papers.mkdir()
    good = site_data.papers[0]
    text = (site_data.papers_dir / f"{good.id}.yaml").read_text(encoding="utf-8")
    (papers / f"{good.id}.yaml").write_text(
        text.replace("causal-attribution", "causal-atribution"), encoding="utf-8"
    )
    (papers / "bad.yaml").write_text("id: bad\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(Abort):
        build_site(papers, site_data.taxonomy_dir, tmp_path / "site")
    message = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "has 2 problem(s)" in message
    assert f"{good.id}.yaml" in message and "did you mean 'causal-attribution'" in message
    assert "bad.yaml" in message and "not valid YAML" in message
    assert not (tmp_path / "site" / "index.html").exists()


# -- links --------------------------------------------------------------------------------


def test_no_broken_internal_link_anywhere(built_site, pages):
    ids = {path.resolve(): page.ids for path, page in pages.items()}
    broken = []
    for path, page in pages.items():
        for tag, url in page.links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue
            if parts.path.startswith("/"):  # the 404 page links from the site's root path
                assert parts.path.startswith(SITE_PATH), url
                target = (built_site / unquote(parts.path[len(SITE_PATH) :])).resolve()
            elif parts.path:
                target = (path.parent / unquote(parts.path)).resolve()
            else:
                target = path.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(built_site)}: <{tag}> {url}")
            elif parts.fragment and target.suffix == ".html":
                known = ids.get(target) or parse(target).ids
                if unquote(parts.fragment) not in known:
                    broken.append(f"{path.relative_to(built_site)}: <{tag}> {url} (no such id)")
    assert not broken, "\n".join(broken[:20])


def test_the_site_loads_nothing_from_the_network(pages, built_site):
    outside = []
    for path, page in pages.items():
        for tag, attrs in page.tags:
            url = attrs.get("src") if tag in ("script", "img", "iframe") else None
            if tag == "link" and attrs.get("rel") not in ("canonical",):
                url = attrs.get("href")
            if url and (urlsplit(url).scheme or url.startswith("//")):
                outside.append(f"{path.relative_to(built_site)}: <{tag}> {url}")
    assert not outside, "\n".join(outside[:10])
    styles = "".join(text_of(p) for p in built_site.rglob("*.css"))
    assert "fonts.googleapis" not in styles and "@import url(http" not in styles


# -- pages --------------------------------------------------------------------------------


def test_paper_page_shows_every_field_links_and_edit_link(built_site, site_data):
    paper = site_data.by_id("2022-meng-locating-editing-factual")
    html = text_of(built_site / "papers" / f"{paper.id}.html")
    for value in (paper.title, paper.tldr, paper.url, paper.code, "17359--17372", "2026-01-29"):
        assert value in html
    for author in paper.authors:
        assert author in html
    assert 'href="https://arxiv.org/abs/2202.05262"' in html
    assert 'href="https://github.com/kmeng01/rome"' in html
    assert f'href="{REPO_URL}/edit/main/papers/2022-meng-locating-editing-factual.yaml"' in html
    for axis in AXES:
        for tag in getattr(paper, axis):
            assert f'href="../taxonomy/{axis}/{tag}.html"' in html


def test_paper_bibtex_block_is_the_exporters_entry(built_site, site_data):
    import html as html_lib

    for paper in site_data.papers[:6]:
        page = text_of(built_site / "papers" / f"{paper.id}.html")
        block = re.search(r'<pre class="mi-bibtex"><code>(.*?)</code></pre>', page, re.S)
        assert block, paper.id
        shown = html_lib.unescape(block.group(1))
        assert shown + "\n" == to_bibtex([paper], atlas_fields=False, taxonomy=site_data.taxonomy)


def test_node_page_lists_exactly_its_papers(built_site, site_data):
    tax = site_data.taxonomy
    for axis, node_id in (
        ("locate", "causal-attribution"),
        ("goals", "alignment"),
        ("objects", "ffn"),
    ):
        html = text_of(built_site / "taxonomy" / axis / f"{node_id}.html")
        listed = set(re.findall(r'href="\.\./\.\./papers/([a-z0-9-]+)\.html"', html))
        wanted = {
            p.id
            for p in site_data.papers
            if node_id in getattr(p, axis)
            or any(tax[axis].parent.get(tag) == node_id for tag in getattr(p, axis))
        }
        assert listed == wanted, node_id
        assert f"Papers ({len(wanted)})" in html


def test_node_page_links_implementation_only_when_it_exists(built_site, site_data):
    for axis in AXES:
        for node in site_data.taxonomy[axis].nodes.values():
            html = text_of(built_site / "taxonomy" / axis / f"{node.id}.html")
            existing = [p for p in node.impls if (REPO / p).is_file()]
            if axis == "goals" and node.children:
                # a goal has no code of its own: its page sums up its sub-goals' recipes
                assert "Each sub-goal has its own improve recipe" in html
            elif existing:
                for path in existing:
                    assert f'href="{REPO_URL}/blob/main/{path}"' in html
                assert "not yet implemented" not in html
            else:
                assert "Reference implementation: not yet implemented." in html


def test_matrix_cells_count_papers_and_open_the_explorer(built_site, site_data):
    html = text_of(built_site / "matrix.html")
    for cols in ("locate", "steer"):
        counts = Counter()
        for p in site_data.papers:
            for row in set(p.objects):
                for col in set(getattr(p, cols)):
                    counts[(row, col)] += 1
        cells = re.findall(
            rf'<a href="explorer\.html\?objects=([a-z-]+)&amp;{cols}=([a-z-]+)"[^>]*>(\d+)</a>',
            html,
        )
        assert {(r, c): int(n) for r, c, n in cells} == dict(counts)


def test_home_page_counts_are_live(built_site, site_data):
    html = text_of(built_site / "index.html")
    assert f"<strong>{len(site_data.papers)}</strong> papers" in html
    tagged = sum(1 for p in site_data.papers if p.locate)
    assert re.search(rf"mi-stage--locate.*?<strong>{tagged}</strong> papers", html, re.S)
    assert "<!-- mi-atlas:" not in html


# -- escaping -----------------------------------------------------------------------------


class Markup(HTMLParser):
    """What a page would run or load: inline scripts, event handlers, javascript: URLs, images."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.in_script = False
        self.h1: list[str] = []
        self.in_h1 = False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        self.in_h1 = tag == "h1" or self.in_h1
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and "__pwned" in value:
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src") and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if tag == "img" and name == "src" and value == "x":
                self.found.append("<img src=x>")
        if tag in ("svg", "iframe") and "__pwned" in str(attrs):
            self.found.append(f"<{tag}>")

    def handle_endtag(self, tag):
        self.in_script = False
        self.in_h1 = self.in_h1 and tag != "h1"

    def handle_data(self, data):
        if self.in_script and "__pwned" in data:
            self.found.append(f"<script>{data[:40]}")
        if self.in_h1:
            self.h1.append(data)


def test_no_hostile_text_becomes_markup_on_any_page(built_site):
    for path in built_site.rglob("*.html"):
        markup = Markup()
        markup.feed(text_of(path))
        assert not markup.found, (path, markup.found)


def test_hostile_text_is_shown_literally(built_site, site_data):
    import html as html_lib

    for paper in site_data.hostile:
        markup = Markup()
        markup.feed(text_of(built_site / "papers" / f"{paper.id}.html"))
        assert "".join(markup.h1).strip() == paper.title
        page = html_lib.unescape(text_of(built_site / "papers" / f"{paper.id}.html"))
        for value in (paper.abstract, paper.notes, paper.venue, *paper.authors):
            assert value in page
    node = Markup()
    node.feed(text_of(built_site / "taxonomy" / "objects" / "circuit.html"))
    assert "".join(node.h1).strip() == site_data.taxonomy["objects"].nodes["circuit"].name


def test_explorer_data_holds_the_text_verbatim_as_json(built_site, site_data):
    script = text_of(built_site / routes.EXPLORER_DATA)
    assert script.startswith("window.MI_ATLAS=") and script.endswith(";\n")
    data = json.loads(script[len("window.MI_ATLAS=") : -2])
    assert [p["i"] for p in data["papers"]] == sorted(
        (p.id for p in site_data.papers),
        key=lambda i: (-site_data.by_id(i).year, site_data.by_id(i).title.casefold(), i),
    )
    hostile = next(p for p in data["papers"] if p["i"] == "2024-hostile-entry-1")
    assert hostile["t"] == site_data.by_id("2024-hostile-entry-1").title
    bibtex = text_of(built_site / routes.EXPLORER_BIBTEX)
    entries = json.loads(bibtex[len("window.MI_ATLAS_BIBTEX=") : -2])
    assert set(entries) == {p.id for p in site_data.papers}
    for paper in site_data.papers:  # each is that paper's one-entry export
        assert entries[paper.id] == to_bibtex(
            [paper], atlas_fields=False, taxonomy=site_data.taxonomy
        )


# -- downloads and feeds ------------------------------------------------------------------


def test_downloads_are_the_exporters_output(built_site, site_data):
    from mi_atlas.site.catalog import newest_first

    papers = newest_first(site_data.papers)
    tax = site_data.taxonomy
    assert text_of(built_site / "downloads" / "mi-atlas.bib") == to_bibtex(
        papers, atlas_fields=False, taxonomy=tax
    )
    assert text_of(built_site / "downloads" / "mi-atlas.json") == to_json(papers)
    assert (built_site / "downloads" / "mi-atlas.csv").read_bytes().decode() == to_csv(papers)
    page = text_of(built_site / "downloads.html")
    for ext in ("bib", "json", "csv"):
        assert f'href="downloads/mi-atlas.{ext}"' in page


def test_feeds_are_atom_with_recent_papers_newest_first(built_site, site_data):
    feed = ET.parse(built_site / "feeds" / "recent.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == min(30, len(site_data.papers))
    dates = [e.findtext(f"{ATOM}updated") for e in entries]
    assert dates == sorted(dates, reverse=True)
    titles = {e.findtext(f"{ATOM}title") for e in entries}
    assert site_data.by_id("2024-hostile-entry-1").title in titles  # literal text, not markup
    node = ET.parse(built_site / "feeds" / "locate" / "probing.xml").getroot()
    links = {
        e.find(f"{ATOM}link[@rel='alternate']").get("href") for e in node.findall(f"{ATOM}entry")
    }
    wanted = {p.id for p in site_data.papers if "probing" in p.locate}
    assert {link.rsplit("/", 1)[1].removesuffix(".html") for link in links} == wanted


# -- serving ------------------------------------------------------------------------------


def test_serve_watches_papers_and_taxonomy(site_data):
    from mkdocs.config import load_config

    os.environ["MI_ATLAS_PAPERS"] = str(site_data.papers_dir)
    try:
        config = load_config(str(REPO / "mkdocs.yml"))
    finally:
        os.environ.pop("MI_ATLAS_PAPERS")
    plugin = config.plugins["mi-atlas"]
    assert isinstance(plugin, AtlasPlugin)
    plugin.on_config(config)

    class Server:
        watched: list[str] = []

        def watch(self, path):
            self.watched.append(path)

    server = Server()
    plugin.on_serve(server, config=config, builder=None)
    assert str(site_data.papers_dir) in server.watched
    assert str(REPO / "taxonomy") in server.watched


def test_mkdocs_serve_rebuilds_when_a_paper_changes(site_data, tmp_path):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    papers = tmp_path / "papers"
    papers.mkdir()
    chosen = site_data.papers[:4]
    for paper in chosen:
        name = f"{paper.id}.yaml"
        (papers / name).write_text((site_data.papers_dir / name).read_text(encoding="utf-8"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "MI_ATLAS_PAPERS": str(papers),
        "MI_ATLAS_TAXONOMY_DIR": str(site_data.taxonomy_dir),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-f", str(REPO / "mkdocs.yml"),
         "-a", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{SITE_PATH}papers/{chosen[0].id}.html"

    def wait_for(text: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if text in response.read().decode():
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{url} never showed {text!r}")

    try:
        wait_for(chosen[0].title)
        path = papers / f"{chosen[0].id}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(chosen[0].title, "A title edited while serving"))
        wait_for("A title edited while serving")
    finally:
        server.terminate()
        server.wait(timeout=30)
