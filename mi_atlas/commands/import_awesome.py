"""`mi-atlas import-awesome`: turn an awesome-list README into paper entries."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..importers import awesome as importer
from ..index import display_path
from ..taxonomy import TaxonomyError
from .options import emit_json, fail, import_options, json_option, report_problems

HELP = """Create entries from an awesome-list README (markdown) in --out DIR.

\b
Items are the candidate paper entries of the file: each body row of a table with a
title column (Paper, Title, Name...) or with links; each list item (bulleted or
numbered, nested detail bullets included) with a link to a paper, or with a title,
year and venue; each paragraph that starts with a title and links to a paper.
Headings (and list items that only group entries) are categories: where one names
a taxonomy node, the entries under it get that tag.

\b
Every item is created, merged (the same paper again, or one already in DIR) or
skipped, each with its line and reason: items == created + merged + skipped.
Blocks with links that are not items (a table of contents, badges, news lines,
citation code blocks, HTML comments) are listed as ignored. Problems (aliases,
'-' placeholders, duplicates, shared links, unknown venues...) are reported.

\b
Years and venues the item implies rather than states (a date, '(2023)' after the
title, an arXiv id, an arXiv or blog link) are listed as inferred, for a curator
to check. An item with no link is created with 'needs: [link]'.

\b
Existing files are never replaced; a merge that would fill in an existing entry
rewrites its file only with --overwrite. Exit status: 0 when
every item found is accounted for (created, merged, or skipped with a reason),
1 when the file holds no item or cannot be read as a markdown list, DIR holds
invalid entries, or writing failed (nothing is then written); 2 on a usage
error. import-bib follows the same rule.

\b
Example:
  mi-atlas import-awesome Awesome-X/README.md --out papers --dry-run
"""


@click.command(name="import-awesome", help=HELP)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@import_options("Folder of paper entries to create entries in and merge with.")
@click.option(
    "--source-name",
    default=None,
    help="How entries' provenance names the list (default: its folder/file name).",
)
@json_option
def import_awesome(
    file: Path,
    out_dir: Path,
    dry_run: bool,
    overwrite: bool,
    source_name: str | None,
    added,
    as_json: bool,
) -> None:
    try:
        report = importer.import_awesome(
            file,
            out_dir,
            source_name=source_name,
            added=added.date() if added else None,
            overwrite=overwrite,
        )
    except importer.AwesomeImportError as exc:
        _fatal(str(exc), str(file), as_json)
    except importer.ExistingIndexError as exc:
        if not as_json:
            report_problems(exc.problems)
        _fatal(
            f"{display_path(out_dir)} holds entries that do not pass mi-atlas check "
            f"({len(exc.problems)} problem(s)); fix them before importing into it",
            str(file),
            as_json,
            [p.to_json() for p in exc.problems],
        )
    except TaxonomyError as exc:
        _fatal(str(exc), str(file), as_json)

    written = []
    if not dry_run:
        try:
            written = report.write(out_dir)
        except FileExistsError as exc:
            _fatal(
                f"{exc.filename} appeared while importing; nothing was written",
                str(file),
                as_json,
            )
        except OSError as exc:
            _fatal(
                f"cannot write to {display_path(out_dir)} ({exc.strerror}); nothing was written",
                str(file),
                as_json,
            )

    if as_json:
        emit_json(report.to_json())
        sys.exit(report.exit_code)
    for problem in report.problems:
        click.echo(problem.render(report.source), err=True)
    for value in report.inferred:
        click.echo(value.render(report.source), err=True)
    for item in report.skipped:
        click.echo(f"{report.source}:{item.line}: skipped '{item.title}': {item.reason}", err=True)
    if not report.items:
        click.echo(f"Error: no paper items found in {report.source}", err=True)
    click.echo(
        f"{report.source}: {report.items} items: {len(report.created)} created, "
        f"{len(report.merged)} merged, {len(report.skipped)} skipped; "
        f"{len(report.problems)} problem(s); {len(report.ignored)} block(s) with links ignored; "
        f"{len(report.inferred)} value(s) inferred"
    )
    if dry_run:
        click.echo("Dry run: nothing written.")
    else:
        click.echo(f"Wrote {len(written)} file(s) in {display_path(out_dir)}.")
    sys.exit(report.exit_code)


def _fatal(message: str, source: str, as_json: bool, problems: list | None = None) -> None:
    if as_json:
        emit_json({"source": source, "error": message, "problems": problems or []})
        sys.exit(1)
    fail(message)
