"""`mi-atlas add`: create one validated entry from flags."""

from __future__ import annotations

import sys

import click

from ..add import AddError, add_entry, fields_from_link
from ..entries import entry_text
from ..index import entry_warnings
from ..taxonomy import load_taxonomy
from .options import emit_json, json_option, papers_option, report_problems


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _bibtex(pairs: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"'{pair}' is not KEY=VALUE, e.g. pages=1--12", param_hint="--bibtex"
            )
        fields[key.strip().lower()] = value.strip()
    return fields


@click.command()
@click.argument("link", required=False)
@click.option("--id", "id_", help="Entry id (default: made from year, first author and title).")
@click.option("--title", help="Paper title.")
@click.option("--year", type=int, help="Publication year.")
@click.option(
    "--venue",
    help="Venue from taxonomy/venues.yaml (aliases such as 'Arxiv' are mapped; "
    "another venue is kept as written, with a warning).",
)
@click.option("--url", help="Paper page (default: derived from LINK).")
@click.option("--arxiv", help="arXiv id, e.g. 2406.11717.")
@click.option("--doi", help="DOI, e.g. 10.18653/v1/2024.acl-long.483.")
@click.option("--openreview", help="OpenReview forum id.")
@click.option("--acl", help="ACL Anthology id.")
@click.option("--code", help="Code repository URL.")
@click.option("--author", "authors", multiple=True, help="An author, in order (repeat the option).")
@click.option("--abstract", help="Abstract.")
@click.option("--tldr", help="One-sentence summary.")
@click.option("--objects", help="Comma-separated object ids, primary first.")
@click.option("--locate", help="Comma-separated locating-method ids, primary first.")
@click.option("--steer", help="Comma-separated steering-method ids, primary first.")
@click.option("--goals", help="Comma-separated sub-goal ids, primary first.")
@click.option(
    "--bibtex",
    "bibtex",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra BibTeX field (repeatable).",
)
@click.option("--added", help="Date added, YYYY-MM-DD (default: today).")
@click.option("--notes", help="Free-text notes.")
@click.option("--dry-run", is_flag=True, help="Validate and print the entry without writing it.")
@papers_option
@json_option
def add(
    link,
    id_,
    authors,
    objects,
    locate,
    steer,
    goals,
    bibtex,
    papers_dir,
    dry_run,
    as_json,
    **fields,
):
    """Create papers/<id>.yaml from flags, validated before it is written.

    LINK may be an arXiv id, a DOI or a URL; it fills --url and the matching id fields.
    An existing file is never overwritten.

    Example: mi-atlas add 2406.11717 --title "Refusal in Language Models Is Mediated by a
    Single Direction" --year 2024 --venue NeurIPS --objects residual-stream
    --locate causal-attribution --steer vector-arithmetic --goals safety-reliability
    """
    values = {**(fields_from_link(link) if link else {})}
    values.update({key: value for key, value in fields.items() if value is not None})
    values.update(
        id=id_,
        authors=list(authors),
        bibtex=_bibtex(bibtex),
        objects=_split(objects),
        locate=_split(locate),
        steer=_split(steer),
        goals=_split(goals),
    )
    taxonomy = load_taxonomy()
    try:
        paper, path = add_entry(values, taxonomy, papers_dir, dry_run=dry_run)
    except AddError as exc:
        if as_json:
            emit_json(
                {"ok": False, "written": None, "problems": [p.to_json() for p in exc.problems]}
            )
        else:
            report_problems(exc.problems)
            click.echo("Nothing was written.", err=True)
        sys.exit(1)
    warnings = entry_warnings(paper, taxonomy, str(path))
    if as_json:
        emit_json(
            {
                "ok": True,
                "written": None if dry_run else str(path),
                "entry": paper.model_dump(mode="json"),
                "warnings": [w.to_json() for w in warnings],
            }
        )
        return
    report_problems(warnings)
    if dry_run:
        click.echo(entry_text(paper), nl=False)
    else:
        click.echo(f"wrote {path}")
