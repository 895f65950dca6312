"""Regenerate schema/paper.schema.json (from the pydantic model and the taxonomy) and
schema/run.schema.json (from the run document, mi_atlas/runs.py).

Run after changing mi_atlas/schema.py, taxonomy/*.yaml or mi_atlas/runs.py;
tests/test_schema_file.py fails while a shipped file is stale.
"""

import json
from pathlib import Path

from mi_atlas import runs
from mi_atlas.schema import SCHEMA_PATH, json_schema
from mi_atlas.taxonomy import load_taxonomy

RUN_SCHEMA_PATH = Path("schema") / "run.schema.json"


def render() -> str:
    return json.dumps(json_schema(load_taxonomy()), indent=2, ensure_ascii=False) + "\n"


def render_run() -> str:
    return json.dumps(runs.json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    for relative, text in ((SCHEMA_PATH, render()), (RUN_SCHEMA_PATH, render_run())):
        (root / relative).write_text(text, encoding="utf-8")
        print(f"wrote {root / relative}")
