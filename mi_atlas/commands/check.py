"""`mi-atlas check`: validate every entry and the index as a whole."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..index import load_index
from ..taxonomy import TaxonomyError
from .options import emit_json, fail, json_option, papers_option, report_problems


@click.command()
@papers_option
@click.option(
    "--strict-venues",
    is_flag=True,
    help="Treat a venue missing from taxonomy/venues.yaml as an error (CI of the curated index).",
)
@json_option
def check(papers_dir: Path, strict_venues: bool, as_json: bool) -> None:
    """Validate all paper entries; exit 1 and list every problem if any is found.

    Warnings (a venue not in taxonomy/venues.yaml, an entry that still needs its link) are
    listed too but do not fail the check, unless --strict-venues makes venues errors.

    Example: mi-atlas check --papers papers --strict-venues
    """
    try:
        index = load_index(papers_dir, strict_venues=strict_venues)
    except TaxonomyError as exc:
        fail(str(exc))
    if as_json:
        emit_json(
            {
                "ok": index.ok,
                "papers": len(index.papers),
                "checked": index.checked,
                "problems": [p.to_json() for p in index.problems],
                "warnings": [p.to_json() for p in index.warnings],
            }
        )
    else:
        report_problems(index.problems + index.warnings)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            _annotate(index.problems + index.warnings)
        warned = f" ({len(index.warnings)} warning(s))" if index.warnings else ""
        if index.ok:
            click.echo(f"{len(index.papers)} papers, no problems{warned}.")
        else:
            click.echo(f"{len(index.problems)} problem(s) in {index.checked} files.", err=True)
    sys.exit(0 if index.ok else 1)


def _annotate(problems) -> None:
    """GitHub workflow commands, so each problem shows on the offending line of the pull request."""
    for problem in problems:
        where = f"file={problem.file}" + (f",line={problem.line}" if problem.line else "")
        title = f"mi-atlas check: {problem.field}" if problem.field else "mi-atlas check"
        message = problem.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        click.echo(f"::{problem.severity} {where},title={title}::{message}")
