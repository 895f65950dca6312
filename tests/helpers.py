"""Test helpers importable from any test module (pyproject sets pythonpath = tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def valid_entry(**overrides) -> dict:
    """A valid entry; override fields to break it in one way."""
    entry = {
        "id": "2024-arditi-refusal",
        "title": "Refusal in Language Models Is Mediated by a Single Direction",
        "year": 2024,
        "venue": "NeurIPS",
        "url": "https://openreview.net/forum?id=pH3XAQME6c",
        "arxiv": "2406.11717",
        "authors": ["Andy Arditi", "Neel Nanda"],
        "objects": ["residual-stream"],
        "locate": ["causal-attribution"],
        "steer": ["vector-arithmetic"],
        "goals": ["safety-reliability"],
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not ...}


def write_yaml(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
