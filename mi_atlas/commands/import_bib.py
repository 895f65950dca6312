"""`mi-atlas import-bib`: create or fill paper entries from a BibTeX file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..importers.bibtex import IndexNotClean
from ..importers.bibtex import import_bib as run_import
from ..taxonomy import AXES, AXIS_NOUNS, TaxonomyError, load_taxonomy
from .options import emit_json, fail, import_options, json_option, report_problems


def _tags(axis: str):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
        if not value:
            return []
        known = load_taxonomy()[axis]
        ids = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            node = part if part in known.nodes else None
            if node is None:
                suggestion = known.suggest(part)
                hint = (
                    f"; did you mean '{suggestion}'?"
                    if suggestion
                    else f"; valid ids: {', '.join(known.ids)}"
                )
                raise click.BadParameter(f"'{part}' is not {AXIS_NOUNS[axis]}{hint}")
            ids.append(node)
        return list(dict.fromkeys(ids))

    return click.option(
        f"--{axis}",
        callback=convert,
        metavar="IDS",
        help=f"Comma-separated {axis} ids for new entries that carry none (primary first).",
    )


def _venue(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    venues = load_taxonomy().venues
    name = value if value in venues.by_name else venues.resolve(value)
    if name is None:
        suggestion = venues.suggest(value)
        hint = f"; did you mean '{suggestion}'?" if suggestion else " (see taxonomy/venues.yaml)"
        raise click.BadParameter(f"'{value}' is not a venue of the list{hint}")
    return name


@click.command("import-bib")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@import_options("Folder of paper entries to create and fill.")
@_tags("objects")
@_tags("locate")
@_tags("steer")
@_tags("goals")
@click.option(
    "--venue",
    callback=_venue,
    help="Venue for entries whose journal/booktitle is not on the list (instead of keeping it "
    "as written) or that name none.",
)
@json_option
def import_bib(
    file, out_dir, dry_run, overwrite, added, objects, locate, steer, goals, venue, as_json
):
    """Import the entries of a .bib FILE: each is created, merged into the entry of the same
    paper (filling what it lacks, never its tags) or skipped with a reason.

    A venue missing from taxonomy/venues.yaml is kept as written (reported); an entry with no
    link is created with 'needs: [link]'; a year or venue the entry only implies (an arXiv id in
    journal = {arXiv preprint arXiv:...}, a date, a publisher) is listed as inferred.

    \b
    Exit status (the same rule as import-awesome): 0 when every entry is accounted for
    (created, merged, or skipped with its reason); 1 when some entry could not be read at all
    (unbalanced braces, a missing comma the reader could not repair), the file holds no entry,
    or --out holds invalid entries; 2 on a usage error. Entries that could be read are written
    even then; after fixing the file, running again merges instead of duplicating. Existing
    files are never replaced; a merge that would fill in an existing entry rewrites its file
    only with --overwrite.

    Example: mi-atlas import-bib refs.bib --out papers --locate probing --dry-run
    """
    tags = dict(zip(AXES, (objects, locate, steer, goals), strict=True))
    try:
        report = run_import(
            file,
            out_dir,
            tags=tags,
            venue=venue,
            today=added.date() if added else None,
            overwrite=overwrite,
        )
    except IndexNotClean as exc:
        report_problems(exc.problems)
        fail(
            f"{out_dir} has {len(exc.problems)} problem(s); fix them (mi-atlas check) before importing"
        )
    except (TaxonomyError, OSError) as exc:
        fail(str(exc))
    try:
        written = [] if dry_run else report.write(out_dir)
    except OSError as exc:  # report.write removes the new files it made before failing
        fail(
            f"cannot write the entries into {out_dir} ({exc.strerror or exc}); no new entry was written"
        )
    if as_json:
        emit_json({**report.to_json(), "dry_run": dry_run, "written": [str(p) for p in written]})
    else:
        _human(report, out_dir, dry_run)
    sys.exit(report.exit_code)


def _human(report, papers_dir: Path, dry_run: bool) -> None:
    """One line per entry in file order on stdout, then the summary; problems on stderr."""
    source = report.source
    lines = [(i.line, f"created {papers_dir / (i.id + '.yaml')}") for i in report.created]
    lines += [(i.line, f"merged into {i.id}: {i.reason}") for i in report.merged]
    lines += [(i.line, f"skipped '{i.title}': {i.reason}") for i in report.skipped]
    for line, text in sorted(lines, key=lambda pair: pair[0]):
        click.echo(f"{source}:{line}: {text}")
    for problem in report.problems:
        click.echo(problem.render(source), err=True)
    for value in report.inferred:
        click.echo(value.render(source), err=True)
    if not report.items:
        click.echo(f"Error: no BibTeX entries found in {source}", err=True)
    tail = " (dry run: nothing written)" if dry_run else ""
    click.echo(
        f"{report.items} entries: {len(report.created)} created, {len(report.merged)} merged, "
        f"{len(report.skipped)} skipped{tail}."
    )
