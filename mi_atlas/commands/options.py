"""Options shared by several commands, defined once (as sqlite-utils' `output_options`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..problems import Problem


def papers_option(func: Callable) -> Callable:
    return click.option(
        "--papers",
        "papers_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path("papers"),
        show_default=True,
        help="Folder of paper entries (<id>.yaml).",
    )(func)


def json_option(func: Callable) -> Callable:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document on stdout and nothing else there.",
    )(func)


def import_options(help_out: str) -> Callable[[Callable], Callable]:
    """--out DIR, --dry-run, --overwrite and --added, shared by every importer command."""

    def decorate(func: Callable) -> Callable:
        for option in reversed(
            [
                click.option(
                    "--out",
                    "out_dir",
                    type=click.Path(path_type=Path, file_okay=False),
                    default=Path("papers"),
                    show_default=True,
                    help=help_out,
                ),
                click.option(
                    "--dry-run", is_flag=True, help="Report what would happen; write nothing."
                ),
                click.option(
                    "--overwrite",
                    is_flag=True,
                    help="Let merges rewrite existing entry files to fill in what they lack.",
                ),
                click.option(
                    "--added",
                    type=click.DateTime(formats=["%Y-%m-%d"]),
                    default=None,
                    help="The 'added' date of new entries, YYYY-MM-DD (default: today).",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def report_problems(problems: list[Problem]) -> None:
    """Human output: one problem per line on stderr."""
    for problem in problems:
        click.echo(str(problem), err=True)


def fail(message: str, code: int = 1) -> None:
    """Stop with one sentence on stderr and an exit code (1: bad input, 2: usage)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)
