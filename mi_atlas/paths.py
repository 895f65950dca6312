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
