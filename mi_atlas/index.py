"""Loading and validating the whole index: every `papers/*.yaml`, checked alone and together.

`load_index` never raises on bad input: each problem becomes a `Problem` with the file, line
and field, so `mi-atlas check` can list them all at once and other tools can refuse to run on a
broken index.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from . import identity
from .problems import Problem
from .schema import Paper
from .taxonomy import Taxonomy, load_taxonomy
from .yamlio import YamlError, key_lines, load_text, read_text


@dataclass
class Index:
    """The valid entries, in file-name order, every problem (error) and every warning found."""

    papers: list[Paper] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # paper id -> file
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def validate_entry(
    data: object, taxonomy: Taxonomy, *, file: str, text: str | None = None, stem: str | None = None
) -> tuple[Paper | None, list[Problem]]:
    """Validate one entry's data; problems carry the line of the offending key when `text` is
    given. The paper is None when any problem is an error; warnings (`entry_warnings`) come
    after the errors and leave the paper valid."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return None, [
            Problem(
                file,
                None,
                f"the file is {kind}, not a mapping of fields such as 'id: ...' and 'title: ...'",
                1,
            )
        ]
    problems: list[Problem] = []
    lines: dict[str, int] | None = None

    def line_of(key: str) -> int | None:
        nonlocal lines
        if text is None:
            return None
        if lines is None:
            lines = key_lines(text)
        return lines.get(key) or lines.get(key.split(".")[0])

    if stem is not None and isinstance(data.get("id"), str) and data["id"] != stem:
        problems.append(
            Problem(
                file,
                "id",
                f"id '{data['id']}' differs from the file name '{stem}.yaml'; rename the file or set id: {stem}",
                line_of("id"),
                stem,
            )
        )
    try:
        paper = Paper.model_validate(data, context={"taxonomy": taxonomy})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.append(_problem(file, error, line_of))
        return None, problems
    if problems:
        return None, problems
    return paper, entry_warnings(paper, taxonomy, file, line_of)


def entry_warnings(paper: Paper, taxonomy: Taxonomy, file: str, line_of=lambda key: None):
    """What a valid entry still lacks or says loosely: a venue missing from venues.yaml (or
    written as an alias), a link still to be found."""
    warnings = []
    if paper.venue is None:  # a venue to find: an error under --strict-venues, as unknown ones
        warnings.append(
            Problem(
                file,
                "venue",
                "no venue yet (needs: [venue]): add it and remove 'venue' from needs",
                line_of("needs"),
                None,
                "warning",
            )
        )
    elif note := taxonomy.venues.note(paper.venue):
        message, suggestion = note
        warnings.append(Problem(file, "venue", message, line_of("venue"), suggestion, "warning"))
    if "link" in paper.needs:
        warnings.append(
            Problem(
                file,
                "needs",
                "no link yet: the paper is identified by its title, authors, year and venue; "
                "add its url (mi-atlas enrich can find it) and remove 'link' from needs",
                line_of("needs"),
                None,
                "warning",
            )
        )
    return warnings


def _problem(file: str, error: dict, line_of) -> Problem:
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    ctx = error.get("ctx") or {}
    field_name = ".".join(loc) or ctx.get("field")  # model-level checks name their field
    # A tag error names the list; its line is the offending item's.
    dotted = ".".join([*loc, str(ctx["index"])]) if "index" in ctx else (field_name or "")
    kind = error["type"]
    message = error["msg"]
    if kind == "extra_forbidden":
        from rapidfuzz import process

        from .schema import FIELD_ORDER

        near = process.extractOne(loc[-1], FIELD_ORDER, score_cutoff=70)
        suggestion = near[0] if near and len(loc) == 1 else None
        message = f"'{loc[-1]}' is not a field of a paper entry" + (
            f"; did you mean '{suggestion}'?"
            if suggestion
            else f"; valid fields are: {', '.join(FIELD_ORDER)}"
        )
        return Problem(file, field_name, message, line_of(dotted), suggestion)
    if kind == "missing":
        message = "is required but missing"
    elif "input" in error and kind in {
        "string_type",
        "int_type",
        "int_parsing",
        "list_type",
        "dict_type",
        "date_from_datetime_parsing",
        "date_type",
        "date_parsing",
        "model_type",
        "int_from_float",
        "bool_type",
    }:
        message = f"{message[0].lower()}{message[1:]} (got {_show(error['input'])})"
    return Problem(file, field_name, message, line_of(dotted), ctx.get("suggestion"))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_entry_file(
    path: Path, taxonomy: Taxonomy, file: str | None = None
) -> tuple[Paper | None, list[Problem]]:
    """Read and validate one file; never raises for bad content. `file` is its display name."""
    file = file or display_path(path)
    try:
        text = read_text(path)
        data = load_text(text)
    except YamlError as exc:
        return None, [Problem(file, None, f"the file {exc}", exc.line)]
    except OSError as exc:
        return None, [Problem(file, None, f"cannot be read ({exc.strerror})")]
    return validate_entry(data, taxonomy, file=file, text=text, stem=path.stem)


def entry_files(papers_dir: Path) -> tuple[list[Path], list[Problem]]:
    """The entry files of a papers folder, and problems for files that are not entries."""
    problems: list[Problem] = []
    if not papers_dir.is_dir():
        return [], [
            Problem(
                display_path(papers_dir),
                None,
                "is not a folder of paper entries (use --papers DIR)",
            )
        ]
    files = []
    with os.scandir(papers_dir) as entries:
        listing = sorted((entry.name, entry.is_dir()) for entry in entries)
    for name, is_dir in listing:
        path = papers_dir / name
        if name.startswith(".") or is_dir or name in {"README.md", "_template.yaml"}:
            continue
        if path.suffix == ".yaml":
            files.append(path)
        else:
            hint = (
                "rename it to end in .yaml"
                if path.suffix == ".yml"
                else "only <id>.yaml entries belong here"
            )
            problems.append(
                Problem(
                    display_path(path),
                    None,
                    f"is not a paper entry: {hint}",
                    None,
                    path.stem + ".yaml" if path.suffix == ".yml" else None,
                )
            )
    return files, problems


def load_index(
    papers_dir: Path, taxonomy: Taxonomy | None = None, *, strict_venues: bool = False
) -> Index:
    """Validate every entry of `papers_dir` alone, then all of them together (duplicates).
    With `strict_venues`, a venue missing from taxonomy/venues.yaml is an error, not a warning."""
    taxonomy = taxonomy or load_taxonomy()
    files, problems = entry_files(papers_dir)
    index = Index(problems=problems, checked=len(files))
    shown_dir = display_path(papers_dir)
    for path in files:
        paper, entry_problems = load_entry_file(path, taxonomy, os.path.join(shown_dir, path.name))
        for problem in entry_problems:
            if problem.severity == "warning" and strict_venues and problem.field == "venue":
                problem = dataclasses.replace(problem, severity="error")
            (index.warnings if problem.severity == "warning" else index.problems).append(problem)
        if paper is not None:
            index.papers.append(paper)
            index.files[paper.id] = path
    index.problems.extend(find_duplicates(index.papers, index.files))
    return index


def find_duplicates(papers: list[Paper], files: dict[str, Path]) -> list[Problem]:
    """Two entries for one paper (`identity.keys_of`: same arXiv id, DOI, OpenReview id, ACL
    Anthology id, normalised URL or normalised title), reported on the later file."""
    problems: list[Problem] = []
    for first, paper, kind in identity.duplicates(papers):
        text = read_text(files[paper.id])
        problems.append(
            Problem(
                display_path(files[paper.id]),
                kind,
                f"same {identity.KEY_NAMES[kind]} as {display_path(files[first.id])}: two entries "
                "for one paper; merge them into one file",
                key_lines(text).get(kind),
                first.id,
            )
        )
    return problems
