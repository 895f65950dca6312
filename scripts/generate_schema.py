"""Regenerate schema/paper.schema.json from the pydantic model and the taxonomy.

Run after changing mi_atlas/schema.py or taxonomy/*.yaml; tests/test_schema_file.py fails
while the shipped file is stale.
"""

import json
from pathlib import Path

from mi_atlas.schema import SCHEMA_PATH, json_schema
from mi_atlas.taxonomy import load_taxonomy


def render() -> str:
    return json.dumps(json_schema(load_taxonomy()), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    path = Path(__file__).resolve().parent.parent / SCHEMA_PATH
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")
