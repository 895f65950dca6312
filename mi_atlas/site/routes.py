"""Where each generated file lives in the site, and relative links between them.

Every generated page is addressed by its source path (`papers/<id>.md`), as if it were in
`docs/`; its URL follows `use_directory_urls` exactly as mkdocs computes it, and links between
pages are relative, so the built site works from any folder, from a server or from disk.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urlencode

from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

HOME = "index.md"
EXPLORER = "explorer.md"
MATRIX = "matrix.md"
DOWNLOADS = "downloads.md"
TAXONOMY = "taxonomy/index.md"
ASSETS = "assets/mi-atlas"
EXPLORER_DATA = f"{ASSETS}/papers.js"
EXPLORER_BIBTEX = f"{ASSETS}/bibtex.js"
FEED_RECENT = "feeds/recent.xml"
DOWNLOAD = "downloads/mi-atlas.{ext}"


def paper(paper_id: str) -> str:
    return f"papers/{paper_id}.md"


def axis_index(axis: str) -> str:
    return f"taxonomy/{axis}/index.md"


def node(axis: str, node_id: str) -> str:
    return f"taxonomy/{axis}/{node_id}.md"


def node_feed(axis: str, node_id: str) -> str:
    return f"feeds/{axis}/{node_id}.xml"


class Router:
    """Relative hrefs between site files, given by their source paths."""

    def __init__(self, use_directory_urls: bool) -> None:
        self.use_directory_urls = use_directory_urls
        self._url = cache(self._compute_url)

    def _compute_url(self, src_uri: str) -> str:
        return File(src_uri, None, "", self.use_directory_urls).url

    def url(self, src_uri: str) -> str:
        """The site-relative URL mkdocs gives the file `src_uri`."""
        return self._url(src_uri)

    def href(
        self,
        from_src: str,
        to_src: str,
        *,
        query: dict[str, str] | None = None,
        fragment: str = "",
    ) -> str:
        """A link from the page `from_src` to the file `to_src`, relative to the page."""
        target = get_relative_url(self.url(to_src), self.url(from_src))
        if query:
            target += "?" + urlencode(query, safe=",")
        if fragment:
            target += "#" + fragment
        return target
