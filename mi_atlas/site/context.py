"""Everything a page renderer needs, gathered once per build: the catalog, links, BibTeX.

Renderers are plain functions of a `Site` and a page's source path; they return HTML in which
every value from a YAML file went through `html.text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Catalog
from .routes import Router
from .runfolder import RunFolder


@dataclass(frozen=True)
class Repository:
    """Links into the project's source: "edit this entry" and reference implementation files."""

    root: Path
    url: str = ""
    branch: str = "main"

    def exists(self, path: str) -> bool:
        return (self.root / path).is_file()

    def edit_url(self, path: str) -> str | None:
        return f"{self.url.rstrip('/')}/edit/{self.branch}/{path}" if self.url else None

    def source_url(self, path: str) -> str | None:
        return f"{self.url.rstrip('/')}/blob/{self.branch}/{path}" if self.url else None


@dataclass(frozen=True)
class Download:
    """One file of the whole index, made by an exporter."""

    label: str
    ext: str
    media_type: str
    content: str


@dataclass
class Site:
    catalog: Catalog
    router: Router
    repo: Repository
    papers_path: str  # the papers folder as a path inside the repository, for edit links
    taxonomy_path: str  # likewise for the taxonomy folder
    bibtex: Mapping[str, str] = field(default_factory=dict)  # paper id -> its BibTeX entry
    downloads: list[Download] = field(default_factory=list)
    site_name: str = "mi-atlas"
    runs: RunFolder | None = None  # the run documents of `mi-atlas run --all` (runfolder.py)

    def href(self, from_src: str, to_src: str, **kwargs) -> str:
        return self.router.href(from_src, to_src, **kwargs)
