"""The `mi-atlas` mkdocs plugin: the site's pages, data, downloads and feeds, made at build time.

On every build it loads `taxonomy/` and validates `papers/` (a broken index stops the build
with each problem listed), then adds generated files to the build: a page per paper (kept out
of the navigation, which mkdocs renders into every page), a page per taxonomy node, the
taxonomy overview, the matrices, the explorer and its data scripts, the downloads made by
`mi_atlas.exporters`, and Atom feeds. Nothing is written into `docs/`: generated pages are
in-memory `File`s. Their markdown is a few marker comments; the HTML for each marker is
rendered after markdown has run (`on_page_content`), so no value from a YAML file is ever
read as markdown. Hand-written pages ask for blocks the same way (`<!-- mi-atlas:pipeline -->`).
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.nav import Link, Navigation
from mkdocs.structure.pages import Page

from ..index import load_index
from ..paths import taxonomy_dir as packaged_taxonomy_dir
from ..taxonomy import AXES, Taxonomy, TaxonomyError, load_taxonomy
from . import exports, feeds, impl_section, overview, pages, routes, scoreboard
from .catalog import Catalog
from .config import AtlasConfig
from .context import Repository, Site
from .explorer import bibtex_script, papers_script
from .html import text
from .runfolder import RunFolder, RunFolderError

log = logging.getLogger(f"mkdocs.plugins.{__name__}")

ASSET_DIR = Path(__file__).parent / "assets"
ASSETS = (
    "mi-atlas.css",
    "tables.js",
    "explorer.js",
    "explorer-drawer.js",
    "search-on-demand.js",
    "search.js",
    "vendor/minisearch.js",
    "vendor/LICENSE-minisearch.txt",
)
# Meta descriptions of the generated pages that are not about one paper or node.
DESCRIPTIONS = {
    **overview.DESCRIPTIONS,
    scoreboard.ROUTE: "Every reference implementation run on a zoo model with planted structure: "
    "what it found, its control, and whether it recovered the planted truth.",
}
SEARCH_BUNDLE = "assets/javascripts/bundle."  # Material's main script, in every page it renders
MARKER = re.compile(r"<!--\s*mi-atlas:([a-z0-9:-]+)\s*-->")
LATE = "late-"  # markers whose HTML is inserted into the finished page, not the content


@dataclass
class GeneratedPage:
    """A page this plugin made: its title (plain text), how to render its markers, and options."""

    title: str
    slots: Callable[[], dict[str, str]]
    edit_path: str | None = None
    hide: tuple[str, ...] = ()
    search: bool = True
    short_nav: bool = False  # render only the top level of the navigation
    description: str = ""  # the page's meta description (plain text); else the site's


class AtlasPlugin(BasePlugin[AtlasConfig]):
    def __init__(self) -> None:
        self.generated: dict[str, GeneratedPage] = {}  # src path -> page, for this build
        self.site: Site | None = None
        self.search_on_demand = False

    # -- mkdocs events, in the order mkdocs calls them ------------------------------------

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        root = Path(config.config_file_path or ".").resolve().parent
        self.root = root
        self.papers_dir = self._resolve_dir(root, self.config.papers_dir)
        self.taxonomy_dir = self._resolve_dir(root, self.config.taxonomy_dir)
        if not self.taxonomy_dir.is_dir():
            self.taxonomy_dir = packaged_taxonomy_dir()
        self.runs_dir = self._resolve_dir(root, self.config.runs_dir)
        try:
            # a rebuild under `mkdocs serve` must see an edited taxonomy
            self.taxonomy = load_taxonomy(self.taxonomy_dir, reload=True)
        except TaxonomyError as exc:
            raise PluginError(f"mi-atlas: {exc}") from None
        repo_url = self.config.repo_url or config.repo_url
        if repo_url and not (config.edit_uri or config.edit_uri_template):
            # Hand-written pages' edit links, from the same repo_url as every generated link.
            docs = self._repo_path(Path(config.docs_dir), "docs")
            config.edit_uri = f"{repo_url.rstrip('/')}/edit/{self.config.repo_branch}/{docs}/"
        config.extra_css.append(f"{routes.ASSETS}/mi-atlas.css")
        config.extra_javascript.append(f"{routes.ASSETS}/tables.js")
        # Material's bundle requests the search index as it runs: the script that holds the
        # request back goes in before it (on_post_page), not among the extra scripts after it.
        self.search_on_demand = self.config.search_on_demand and any(
            name in config.plugins for name in ("search", "material/search")
        )
        if config.nav is not None:
            config.nav = self._expand_nav(config.nav, self.taxonomy)
        return config

    def on_serve(self, server, *, config: MkDocsConfig, builder):
        # Editing a paper or the taxonomy rebuilds the site, like editing a page in docs/.
        for folder in (self.papers_dir, self.taxonomy_dir, self.runs_dir):
            if folder.is_dir():
                server.watch(str(folder))
        return server

    @event_priority(50)
    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files | None:
        if not self.config.enabled:
            return None
        start = time.perf_counter()
        index = load_index(self.papers_dir, self.taxonomy)
        if index.problems:
            listed = "\n".join(f"  {problem}" for problem in index.problems)
            raise PluginError(
                f"mi-atlas: the index in {self.papers_dir} has {len(index.problems)} "
                f"problem(s); run `mi-atlas check` for details:\n{listed}"
            )
        catalog = Catalog.build(index.papers, self.taxonomy, index.files)
        self.site = Site(
            catalog=catalog,
            router=routes.Router(config.use_directory_urls),
            repo=Repository(
                self.root, self.config.repo_url or config.repo_url or "", self.config.repo_branch
            ),
            papers_path=self._repo_path(self.papers_dir, "papers"),
            taxonomy_path=self._repo_path(self.taxonomy_dir, "taxonomy"),
            site_name=config.site_name,
            runs=self._read_runs(),
        )
        self.generated = {}
        loaded = time.perf_counter()
        exported = exports.export(catalog.papers, self.taxonomy)
        self.site.bibtex = exported.bibtex
        self.site.downloads = exported.downloads
        exported_at = time.perf_counter()
        for file in self._generate_files(config):
            if files.get_file_from_path(file.src_uri) is not None:
                raise PluginError(
                    f"mi-atlas: docs/{file.src_uri} clashes with a page the plugin generates; "
                    "rename or remove it"
                )
            files.append(file)
        log.info(
            "mi-atlas: %d papers from %s (loaded in %.1f s, exported in %.1f s, pages made in %.1f s)",
            len(catalog.papers),
            self.papers_dir,
            loaded - start,
            exported_at - loaded,
            time.perf_counter() - exported_at,
        )
        return files

    def on_nav(self, nav: Navigation, *, config: MkDocsConfig, files: Files) -> None:
        # Paper pages get only the top level of the navigation: Material renders the whole nav
        # into every page, and at 10,000 papers the taxonomy part of it would dominate the build.
        self.short_nav = Navigation(
            [Link(item.title, self._first_url(item)) for item in nav.items],
            [nav.homepage] if nav.homepage else [],
        )

    def on_page_markdown(self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files):
        generated = self.generated.get(page.file.src_uri)
        if generated is None:
            return markdown
        # Material prints page titles as HTML: the title of a generated page is escaped text.
        page.meta["title"] = text(generated.title)
        if generated.hide:
            page.meta["hide"] = list(generated.hide)
        if not generated.search:
            page.meta["search"] = {"exclude": True}
        if generated.description:
            # Material prints it into an attribute as it is: escaped here.
            page.meta["description"] = text(generated.description)
        return markdown

    def on_page_content(self, html: str, *, page: Page, config: MkDocsConfig, files: Files):
        generated = self.generated.get(page.file.src_uri)
        if generated is None and not page.is_homepage and not page.meta.get("description"):
            # A hand-written page describes itself by its first paragraph, not the site's line.
            summary = pages.first_paragraph(html)
            if summary:
                page.meta["description"] = text(summary)
        if self.site is None or "mi-atlas:" not in html:
            return html
        slots = generated.slots() if generated else {}

        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith(LATE):
                return match.group(0)  # filled in on_post_page
            if name in slots:
                return slots[name]
            block = overview.BLOCKS.get(name)
            if block is None:
                log.warning("%s: unknown block <!-- mi-atlas:%s -->", page.file.src_uri, name)
                return match.group(0)
            return block(self.site, page.file.src_uri)

        return MARKER.sub(fill, html)

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str:
        if self.search_on_demand:
            output = self._insert_search_on_demand(output)
        # Long paper tables go in after the template and the search indexer have seen the page:
        # neither needs them, and at 10,000 papers copying them costs more than the rest.
        generated = self.generated.get(page.file.src_uri)
        if generated is None or "mi-atlas:" + LATE not in output:
            return output
        slots = generated.slots()
        return MARKER.sub(lambda m: slots.get(m.group(1), m.group(0)), output)

    def on_post_template(self, output_content: str, *, template_name: str, config: MkDocsConfig):
        # The 404 page is a theme template, not a page: it has a search box too.
        if self.search_on_demand and template_name == "404.html":
            return self._insert_search_on_demand(output_content)
        return output_content

    def on_page_context(self, context, *, page: Page, config: MkDocsConfig, nav):
        generated = self.generated.get(page.file.src_uri)
        if generated is not None:
            page.edit_url = (
                self.site.repo.edit_url(generated.edit_path) if generated.edit_path else None
            )
            if generated.short_nav:
                context["nav"] = self.short_nav
        return context

    # -- generation -----------------------------------------------------------------------

    def _generate_files(self, config: MkDocsConfig):
        site = self.site
        catalog = site.catalog
        yield from self._generate_assets(config)
        for paper in catalog.papers:
            yield self._page(
                config,
                routes.paper(paper.id),
                GeneratedPage(
                    paper.title,
                    self._paper_slots(paper),
                    edit_path=f"{site.papers_path}/{paper.id}.yaml",
                    hide=("navigation", "toc"),
                    search=self.config.search_papers,
                    short_nav=True,
                    description=pages.paper_description(paper),
                ),
                in_nav=False,
            )
        for axis in AXES:
            ax = self.taxonomy[axis]
            src = routes.axis_index(axis)
            yield self._page(
                config,
                src,
                GeneratedPage(
                    ax.title,
                    lambda src=src, axis=axis: {"page": overview.axis_page(site, axis, src)},
                    edit_path=f"{site.taxonomy_path}/{axis}.yaml",
                    description=overview.axis_description(site, axis),
                ),
            )
            for node in ax.nodes.values():
                yield self._node_page(config, axis, node)
                yield self._feed(
                    routes.node_feed(axis, node.id),
                    f"mi-atlas: {node.name}",
                    catalog.recent(self.config.feed_size, catalog.papers_of(axis, node.id)),
                    routes.node(axis, node.id),
                    config,
                )
        for src, title, render, hide in (
            (routes.TAXONOMY, "Taxonomy", overview.taxonomy_page, ()),
            (routes.MATRIX, "Matrices", overview.matrix_page, ("navigation", "toc")),
            (routes.DOWNLOADS, "Downloads", overview.downloads_page, ()),
            (routes.EXPLORER, "Explorer", overview.explorer_page, ("navigation", "toc")),
            (scoreboard.ROUTE, scoreboard.TITLE, scoreboard.scoreboard_page, ("navigation", "toc")),
        ):
            yield self._page(
                config,
                src,
                GeneratedPage(
                    title,
                    lambda src=src, r=render: {"page": r(site, src)},
                    hide=hide,
                    description=DESCRIPTIONS.get(src, ""),
                ),
            )
        for path, content in impl_section.results_files(site.runs):
            yield File.generated(config, path, content=content)
        yield File.generated(config, routes.EXPLORER_DATA, content=papers_script(catalog))
        yield File.generated(config, routes.EXPLORER_BIBTEX, content=bibtex_script(site.bibtex))
        for download in site.downloads:
            yield File.generated(
                config, routes.DOWNLOAD.format(ext=download.ext), content=download.content
            )
        yield self._feed(
            routes.FEED_RECENT,
            "mi-atlas: recently added papers",
            catalog.recent(self.config.feed_size),
            routes.HOME,
            config,
        )

    def _generate_assets(self, config: MkDocsConfig):
        for name in ASSETS:
            yield File.generated(
                config, f"{routes.ASSETS}/{name}", abs_src_path=str(ASSET_DIR / name)
            )

    def _node_page(self, config: MkDocsConfig, axis: str, node) -> File:
        site = self.site
        src = routes.node(axis, node.id)
        sections = [
            impl_section.implementation_section(site, axis, node, src),
            *pages.node_sections(site, axis, node, src),
        ]
        # Section titles are markdown headings, so they reach the table of contents.
        names = [f"{LATE if s.late else ''}section-{k}" for k, s in enumerate(sections)]
        markdown = "<!-- mi-atlas:header -->\n\n" + "\n\n".join(
            f"## {html.escape(section.title)} {{ #{section.anchor} }}\n\n<!-- mi-atlas:{name} -->"
            for name, section in zip(names, sections, strict=True)
        )
        slots = {"header": pages.node_header(site, axis, node, src)}
        slots.update({name: s.html for name, s in zip(names, sections, strict=True)})
        return self._page(
            config,
            src,
            GeneratedPage(
                node.name,
                lambda: slots,
                edit_path=f"{site.taxonomy_path}/{axis}.yaml",
                description=pages.node_description(node, axis, site.catalog.count(axis, node.id)),
            ),
            markdown=markdown,
        )

    def _paper_slots(self, paper) -> Callable[[], dict[str, str]]:
        src = routes.paper(paper.id)
        return lambda: {"page": pages.paper_page(self.site, paper, src)}

    def _page(
        self,
        config: MkDocsConfig,
        src: str,
        generated: GeneratedPage,
        *,
        markdown: str = "<!-- mi-atlas:page -->\n",
        in_nav: bool = True,
    ) -> File:
        self.generated[src] = generated
        inclusion = InclusionLevel.UNDEFINED if in_nav else InclusionLevel.NOT_IN_NAV
        return File.generated(config, src, content=markdown, inclusion=inclusion)

    def _feed(self, src: str, title: str, papers, home: str, config: MkDocsConfig) -> File:
        router = self.site.router
        content = feeds.atom_feed(
            title=title,
            feed_path=router.url(src),
            papers=papers,
            page_url=lambda paper: router.url(routes.paper(paper.id)),
            site_url=config.site_url or "",
            home_path=router.url(home),
            summarise=lambda paper: feeds.paper_summary(paper, self.site.catalog.taxonomy),
        )
        return File.generated(config, src, content=content)

    # -- helpers --------------------------------------------------------------------------

    def _insert_search_on_demand(self, output: str) -> str:
        """`output` with assets/search-on-demand.js loaded just before Material's bundle."""
        bundle = output.find(SEARCH_BUNDLE)
        tag = output.rfind('<script src="', 0, bundle) if bundle >= 0 else -1
        if tag < 0:
            return output  # not a page Material rendered
        # The bundle's own URL prefix (relative on pages, absolute on the 404 page).
        base = output[tag + len('<script src="') : bundle]
        src = f"{base}{routes.ASSETS}/search-on-demand.js"
        return f'{output[:tag]}<script src="{src}"></script>{output[tag:]}'

    def _read_runs(self) -> RunFolder:
        try:
            return RunFolder.read(self.runs_dir, self._repo_path(self.runs_dir, str(self.runs_dir)))
        except RunFolderError as exc:
            raise PluginError(f"mi-atlas: {exc}") from None

    @staticmethod
    def _first_url(item) -> str:
        """The URL of a nav item: a page's own, a section's first page's."""
        while getattr(item, "children", None):
            item = item.children[0]
        return item.url

    @staticmethod
    def _resolve_dir(root: Path, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path

    def _repo_path(self, folder: Path, default: str) -> str:
        """`folder` as a path inside the repository, for edit links (its name if outside)."""
        try:
            return folder.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return default

    def _expand_nav(self, nav: list, taxonomy: Taxonomy) -> list:
        """Put every axis and node page under the nav entry that names `taxonomy/index.md`."""
        expanded = []
        for item in nav:
            title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
            if value == routes.TAXONOMY:
                expanded.append(
                    {title or "Taxonomy": [routes.TAXONOMY, *self._taxonomy_nav(taxonomy)]}
                )
            elif isinstance(value, list):
                expanded.append({title: self._expand_nav(value, taxonomy)})
            else:
                expanded.append(item)
        return expanded

    @staticmethod
    def _taxonomy_nav(taxonomy: Taxonomy) -> list:
        sections = []
        for axis in AXES:
            ax = taxonomy[axis]
            entries: list = [routes.axis_index(axis)]
            for node in ax.roots:
                if node.children:
                    entries.append(
                        {
                            html.escape(node.name): [
                                {"Overview": routes.node(axis, node.id)},
                                *(routes.node(axis, child.id) for child in node.children),
                            ]
                        }
                    )
                else:
                    entries.append(routes.node(axis, node.id))
            sections.append({html.escape(ax.title): entries})
        return sections
