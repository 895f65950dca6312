"""Regenerate schema/task.schema.json from the task-file model (mi_atlas/tasks.py).

Run after changing mi_atlas/tasks.py; tests/test_task_files.py fails while the shipped file is
stale. Task files point editors at it with a first line
`# yaml-language-server: $schema=../schema/task.schema.json`.
"""

import json
from pathlib import Path

from mi_atlas.tasks import json_schema

PATH = Path(__file__).resolve().parent.parent / "schema" / "task.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
