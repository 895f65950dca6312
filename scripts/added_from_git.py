"""Write each entry's `added` date from git history: the day its file was first committed.

The importers stamp `added` with the day they ran, which for the first curated batch was the day
the survey's list was converted, not the day the entries entered the index. Git knows the real
day. Entries whose file is not committed yet keep their date. Run once after a bulk import:

    python scripts/added_from_git.py [papers]
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from mi_atlas.entries import entry_text
from mi_atlas.index import load_index
from mi_atlas.yamlio import write_atomic


def first_commit_days(papers_dir: Path) -> dict[str, dt.date]:
    """File stem -> the day git first saw `papers_dir/<stem>.yaml` (renames followed)."""
    log = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=@%as", "--name-only", "--", str(papers_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    days: dict[str, dt.date] = {}
    day = None
    for line in log.splitlines():  # newest commit first: the last date seen is the first add
        if line.startswith("@"):
            day = dt.date.fromisoformat(line[1:])
        elif line.endswith(".yaml") and day is not None:
            days[Path(line).stem] = day
    return days


def main(papers_dir: Path) -> int:
    index = load_index(papers_dir)
    if not index.ok:
        print(f"Error: {papers_dir} has problems; run mi-atlas check first", file=sys.stderr)
        return 1
    days = first_commit_days(papers_dir)
    changed = 0
    for paper in index.papers:
        day = days.get(paper.id)
        if day is None or paper.added == day:
            continue
        write_atomic(
            index.files[paper.id],
            entry_text(paper.model_copy(update={"added": day})),
            overwrite=True,
        )
        changed += 1
    print(f"{changed} of {len(index.papers)} entries given their first-commit date")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "papers")))
