"""Shared fixtures: valid entry data and papers folders built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mi_atlas.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    folder.mkdir()
    return folder
