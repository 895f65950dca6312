"""The index as one JSON document: `{"$schema", "count", "papers": [entry, ...]}`.

Each entry has the fields of its YAML file (`schema.to_yaml_data`) and validates against the
shipped `schema/paper.schema.json`; `papers_schema()` is the schema of the whole document,
which refers to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..schema import Paper, to_yaml_data

SCHEMA_ID = "https://mi-atlas.dev/schema/papers.schema.json"
PAPER_SCHEMA_ID = "https://mi-atlas.dev/schema/paper.schema.json"


def to_json(papers: Iterable[Paper]) -> str:
    entries = [to_yaml_data(p) for p in papers]
    document = {"$schema": SCHEMA_ID, "count": len(entries), "papers": entries}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def papers_schema() -> dict[str, Any]:
    """JSON Schema of an export: a wrapper whose `papers` are paper entries."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mi-atlas index export",
        "type": "object",
        "required": ["count", "papers"],
        "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "papers": {"type": "array", "items": {"$ref": PAPER_SCHEMA_ID}},
        },
    }
