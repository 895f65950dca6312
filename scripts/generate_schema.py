"""Regenerate what is generated from the code and the taxonomy: schema/paper.schema.json (the
pydantic model and the taxonomy), schema/run.schema.json (the run document, mi_atlas/runs.py)
and the table of tag ids in CONTRIBUTING.md (taxonomy/*.yaml).

Run after changing mi_atlas/schema.py, taxonomy/*.yaml or mi_atlas/runs.py;
tests/test_schema_file.py fails while a shipped file is stale.
"""

import json
from pathlib import Path

from mi_atlas import runs
from mi_atlas.schema import SCHEMA_PATH, json_schema
from mi_atlas.taxonomy import load_taxonomy

RUN_SCHEMA_PATH = Path("schema") / "run.schema.json"
CONTRIBUTING = Path("CONTRIBUTING.md")
BEGIN = "<!-- tag ids: generated from taxonomy/*.yaml by python scripts/generate_schema.py -->"
END = "<!-- end of tag ids -->"


def render() -> str:
    return json.dumps(json_schema(load_taxonomy()), indent=2, ensure_ascii=False) + "\n"


def render_run() -> str:
    return json.dumps(runs.json_schema(), indent=2, ensure_ascii=False) + "\n"


def tag_table() -> str:
    """The markdown table of every axis's ids (goals with their sub-goals), from the taxonomy."""
    taxonomy = load_taxonomy()
    rows = ["| field | ids |", "|---|---|"]
    for axis in ("objects", "locate", "steer"):
        rows.append(f"| `{axis}` | {', '.join(taxonomy[axis].ids)} |")
    goals = [
        f"{root.id} ({', '.join(child.id for child in root.children)})"
        for root in taxonomy["goals"].roots
    ]
    rows.append(f"| `goals` | {'; '.join(goals)} |")
    return "\n".join(rows)


def render_contributing(text: str) -> str:
    """`text` (CONTRIBUTING.md) with its generated tag table replaced by the current one."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    indent = text[: text.index(BEGIN)].rsplit("\n", 1)[-1]
    table = "\n".join(indent + row for row in tag_table().splitlines())
    return text[:start] + "\n" + table + "\n" + indent + text[end:]


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    contributing = render_contributing((root / CONTRIBUTING).read_text(encoding="utf-8"))
    for relative, text in (
        (SCHEMA_PATH, render()),
        (RUN_SCHEMA_PATH, render_run()),
        (CONTRIBUTING, contributing),
    ):
        (root / relative).write_text(text, encoding="utf-8")
        print(f"wrote {root / relative}")
