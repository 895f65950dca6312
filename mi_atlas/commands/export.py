"""`mi-atlas export`: the whole index as BibTeX, JSON or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from ..exporters import FORMATS
from ..index import load_index
from ..taxonomy import TaxonomyError
from ..yamlio import write_atomic
from .options import fail, papers_option, report_problems


@click.command()
@click.argument("format_", metavar="bib|json|csv", type=click.Choice(sorted(FORMATS)))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (replaced atomically) instead of standard output.",
)
@papers_option
def export(format_: str, out: Path | None, papers_dir: Path) -> None:
    """Export every paper entry as BibTeX, JSON (validated by schema/paper.schema.json) or CSV.

    Refuses (exit 1, each problem listed) while the index has problems.

    Example: mi-atlas export bib --out mi-atlas.bib
    """
    try:
        index = load_index(papers_dir)
    except TaxonomyError as exc:
        fail(str(exc))
    if not index.ok:
        report_problems(index.problems)
        fail(
            f"{len(index.problems)} problem(s) in {papers_dir}; fix them (mi-atlas check) before exporting"
        )
    text = FORMATS[format_](index.papers)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomic(out, text, overwrite=True)
    except OSError as exc:
        fail(f"cannot write {out} ({exc.strerror})")
    click.echo(f"Wrote {len(index.papers)} papers to {out}.", err=True)
