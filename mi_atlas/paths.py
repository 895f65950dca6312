"""Where the data lives: the taxonomy ships inside the package; papers live in the checkout."""

from __future__ import annotations

import os
from pathlib import Path


def taxonomy_dir() -> Path:
    """The taxonomy folder: `$MI_ATLAS_TAXONOMY`, else the one installed with the package.

    `mi_atlas/taxonomy_data` is a link to the repository's `taxonomy/`: an editable install
    reads the checkout's files, and a wheel carries a copy (setuptools follows the link).
    """
    override = os.environ.get("MI_ATLAS_TAXONOMY")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "taxonomy_data"


def default_papers_dir() -> Path:
    return Path("papers")


def repo_root() -> Path:
    """The checkout this package was installed from (editable installs and the test suite)."""
    return Path(__file__).resolve().parent.parent


def published_urls() -> tuple[str | None, str | None]:
    """The site's and the repository's addresses, `site_url` and the mi-atlas plugin's
    `repo_url` in the checkout's mkdocs.yml, the one place they are written (with
    `$MI_ATLAS_SITE_URL` / `$MI_ATLAS_REPO_URL` applied, as a build does); None where there
    is no checkout or no value."""
    config = repo_root() / "mkdocs.yml"
    if not config.is_file():
        return os.environ.get("MI_ATLAS_SITE_URL"), os.environ.get("MI_ATLAS_REPO_URL")
    from mkdocs.utils.yaml import yaml_load  # reads `!ENV` as mkdocs does

    with config.open(encoding="utf-8") as file:
        data = yaml_load(file) or {}
    plugin = next(
        (p["mi-atlas"] for p in data.get("plugins", []) if isinstance(p, dict) and "mi-atlas" in p),
        None,
    )
    repo = (plugin or {}).get("repo_url") or None
    return data.get("site_url") or None, repo.rstrip("/") if repo else None
