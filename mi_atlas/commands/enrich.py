"""`mi-atlas enrich`: fill entries' authors, identifiers and code from a facts file or online."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..enrich.apply import EnrichReport, enrich
from ..enrich.facts import FactsError, load_facts
from ..index import display_path, load_index
from ..taxonomy import TaxonomyError, load_taxonomy
from .options import emit_json, fail, json_option, papers_option, report_problems

SOURCES = ("arxiv", "openalex")


def _sources(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    for name in names:
        if name not in SOURCES:
            raise click.BadParameter(f"'{name}' is not a source; use any of {', '.join(SOURCES)}")
    return names


@click.command("enrich")
@click.option(
    "--from",
    "facts_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A facts file (JSON list of records, as shared/data/paper-metadata/metadata.json); "
    "without it, facts are looked up online for entries that lack them.",
)
@papers_option
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option(
    "--sources",
    callback=_sources,
    default=",".join(SOURCES),
    show_default=True,
    help="Online sources to ask, in order (without --from).",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".mi-atlas-cache/enrich"),
    show_default=True,
    help="Where online answers are kept; a rerun reuses them (resumes).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Look up at most this many entries.")
@click.option(
    "--mailto",
    envvar="MI_ATLAS_MAILTO",
    help="Contact address sent to OpenAlex (its polite pool); or MI_ATLAS_MAILTO.",
)
@json_option
def enrich_command(facts_file, papers_dir, dry_run, sources, cache_dir, limit, mailto, as_json):
    """Fill what entries lack (authors, ORCID iDs, arXiv id, DOI, code) without changing what
    a curator wrote: every value that disagrees with an entry is reported as a conflict, and
    facts a source is not sure of are listed for review instead of written.

    Exit 0 when every record was read and accounted for, 1 when the input has problems
    (an unreadable file or record, an index that does not pass `mi-atlas check`, no network).

    Example: mi-atlas enrich --from ../shared/data/paper-metadata/metadata.json --dry-run
    """
    try:
        taxonomy = load_taxonomy()
    except TaxonomyError as exc:
        fail(str(exc))
    index = load_index(papers_dir, taxonomy)
    if not index.ok:
        report_problems(index.problems)
        fail(
            f"{display_path(papers_dir)} has {len(index.problems)} problem(s); fix them (mi-atlas check) before enriching"
        )
    if facts_file is not None:
        try:
            facts, problems = load_facts(facts_file)
        except FactsError as exc:
            fail(str(exc))
        source = display_path(facts_file)
        label = f"{facts_file.resolve().parent.name}/{facts_file.name}"
    else:
        try:
            from ..enrich.online import Offline, lookup, require_clients

            require_clients()
        except ImportError as exc:
            fail(
                f"online enrichment needs the enrich extra ({exc.name} is missing): pip install 'mi-atlas[enrich]'"
            )
        try:
            facts, problems = lookup(
                index.papers, sources=sources, cache_dir=cache_dir, limit=limit, mailto=mailto
            )
        except Offline as exc:
            fail(str(exc))
        source = label = "online: " + ", ".join(sources)
    report = enrich(facts, index, taxonomy, source=source, label=label)
    report.problems.extend(problems)
    try:
        written = [] if dry_run else report.write()
    except OSError as exc:
        fail(f"cannot write into {display_path(papers_dir)} ({exc.strerror or exc})")
    if as_json:
        emit_json(
            {**report.to_json(), "dry_run": dry_run, "written": [display_path(p) for p in written]}
        )
    else:
        _human(report, dry_run)
    sys.exit(1 if report.problems else 0)


def _human(report: EnrichReport, dry_run: bool) -> None:
    """Merges on stdout, one line each; conflicts, review items and problems on stderr."""
    for item in report.merged:
        click.echo(f"{item['file']}: filled {', '.join(item['fields'])}")
    for item in report.conflicts:
        click.echo(f"{item['file']}: {item['field']}: conflict: {item['message']}", err=True)
    for item in report.review:
        state = "written, check it" if item["written"] else "not written"
        click.echo(f"{item['file']}: {item['field']}: review ({state}): {item['reason']}", err=True)
    for item in report.unmatched:
        click.echo(f"{report.source}: {item['id']}: unmatched: {item['reason']}", err=True)
    for problem in report.problems:
        click.echo(problem, err=True)
    tail = " (dry run: nothing written)" if dry_run else ""
    click.echo(
        f"{report.records} records for {report.papers} entries: {len(report.merged)} merged, "
        f"{len(report.conflicts)} conflicts, {len(report.review)} for review, "
        f"{len(report.unmatched)} unmatched, {len(report.problems)} problems{tail}."
    )
