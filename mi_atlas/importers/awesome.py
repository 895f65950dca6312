"""Importing an awesome list (a README of papers) into entries, accounting for every item.

`markdown_blocks` finds the items (table rows, list items, paragraph entries) and reads each
into a `Candidate`; this module decides what becomes of each one, in source order:

- skipped, with the reason, when it cannot be an entry (not a paper, no title, nothing that
  gives its year or venue);
- merged, when it is a paper already seen (`mi_atlas.identity`): an entry of the target
  folder or an earlier item of the list. The one merge (`merge.merge_entry`) unites the tags
  of two items of the list (the first item's primary tag stays first) and reports every
  difference; an existing entry only has what it lacks filled in, never a non-empty tag list
  replaced, and its file is rewritten only with `overwrite`;
- created otherwise: without a link it says `needs: [link]`; every year or venue the item
  implies rather than states is listed in the report's `inferred`.

Two identities that disagree are not a merge. A link already used by a paper with a different
title belongs to that paper, so it is not attached to the second one (reported as a shared
link); a title listed twice with two different identifiers of one kind (two arXiv ids) is kept
as two entries and reported, since one of the two rows is wrong and only a person can say which.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import identity
from ..entries import make_id
from ..index import display_path, load_index
from ..problems import Problem
from ..schema import Paper
from ..taxonomy import AXES, Taxonomy, load_taxonomy
from .awesome_report import AwesomeReport, Ignored, ProblemLog
from .entry_fields import Candidate, rows_text
from .label_cache import CachedTaxonomy
from .markdown_blocks import Walker
from .merge import merge_entry
from .paper_links import PaperLink
from .report import Inferred, Item

KEY_NAMES = identity.KEY_NAMES
_OPTIONAL = ("arxiv", "doi", "openreview", "acl", "code", "authors", "tldr")


class AwesomeImportError(ValueError):
    """The list cannot be read (missing, unreadable, binary or not UTF-8 text)."""


class ExistingIndexError(ValueError):
    """The target folder holds entries that do not pass `mi-atlas check`."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the existing entries")
        self.problems = problems


def read_list(path: Path) -> str:
    """The list's text; one clear sentence for a file that is not a readable markdown list."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AwesomeImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AwesomeImportError(f"{path} is a folder; give the list's README.md file") from None
    except OSError as exc:
        raise AwesomeImportError(f"{path} cannot be read ({exc.strerror})") from None
    if path.suffix.lower() in {".bib", ".bibtex"}:
        raise AwesomeImportError(
            f"{path} is a BibTeX file, not a markdown list; use mi-atlas import-bib"
        )
    if b"\x00" in data:
        raise AwesomeImportError(f"{path} is a binary file, not a markdown list")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AwesomeImportError(
            f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def existing_entries(papers_dir: Path, taxonomy: Taxonomy) -> tuple[list[Paper], set[str]]:
    """The valid entries of the target folder and every file stem taken there; refuses a
    folder whose entries do not pass the check (merging into them would be guesswork)."""
    if not papers_dir.exists():
        return [], set()
    index = load_index(papers_dir, taxonomy)
    if index.problems:
        raise ExistingIndexError(index.problems)
    taken = {path.stem for path in papers_dir.glob("*.yaml")}
    return index.papers, taken


def import_awesome(
    path: Path,
    papers_dir: Path,
    taxonomy: Taxonomy | None = None,
    *,
    source_name: str | None = None,
    added: dt.date | None = None,
    overwrite: bool = False,
) -> AwesomeReport:
    """Read the list at `path` against the entries in `papers_dir`; nothing is written
    (call `report.write(papers_dir)` for that)."""
    taxonomy = taxonomy or load_taxonomy()
    text = read_list(path)
    existing, taken = existing_entries(papers_dir, taxonomy)
    return import_text(
        text,
        source=str(path),
        source_name=source_name or default_source_name(path),
        existing=existing,
        taken=taken,
        taxonomy=taxonomy,
        added=added,
        overwrite=overwrite,
        papers_label=display_path(papers_dir),
    )


def default_source_name(path: Path) -> str:
    """'Awesome-X/README.md': the list's folder and file, which name most lists well."""
    parent = path.resolve().parent.name
    return f"{parent}/{path.name}" if parent else path.name


def import_text(
    text: str,
    *,
    source: str,
    source_name: str,
    taxonomy: Taxonomy,
    existing: list[Paper] | None = None,
    taken: set[str] | None = None,
    added: dt.date | None = None,
    overwrite: bool = False,
    papers_label: str = "papers",
) -> AwesomeReport:
    """Import a list's text: the library core, with no file access."""
    log = ProblemLog()
    report = AwesomeReport(source)
    resolver = Resolver(
        taxonomy,
        log,
        report,
        source_name,
        added or dt.date.today(),
        overwrite,
        papers_label,
        set(taken or ()),
    )
    for paper in existing or ():
        resolver.add_existing(paper)
    for unit in Walker(text, CachedTaxonomy(taxonomy), log).walk():
        if isinstance(unit, Ignored):
            report.ignored.append(unit)
        else:
            resolver.add(unit)
    resolver.finish()
    report.problems = log.finish()
    return report


@dataclass(eq=False)
class Draft:
    """An entry being built: a new one from list items, or an existing one being filled."""

    data: dict[str, Any]
    line: int | None  # the first list line, None for an existing entry
    existing: Paper | None = None
    items: list[Item] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    queued: bool = False  # in `Resolver.drafts`, to be validated and written


@dataclass
class Resolver:
    taxonomy: Taxonomy
    log: ProblemLog
    report: AwesomeReport
    source_name: str
    added: dt.date
    overwrite: bool
    papers_label: str
    taken: set[str]
    index: identity.IdentityIndex[Draft] = field(default_factory=identity.IdentityIndex)
    drafts: list[Draft] = field(default_factory=list)

    # --- the identity index --------------------------------------------------------------

    def add_existing(self, paper: Paper) -> None:
        data = paper.model_dump(mode="json", exclude_none=True)
        draft = Draft(data, None, existing=paper)
        self.taken.add(paper.id)
        self._register(draft)

    def _register(self, draft: Draft) -> None:
        self.index.add(draft, identity.keys_of(draft.data))

    def _describe(self, draft: Draft) -> str:
        if draft.existing is not None:
            return f"{self.papers_label}/{draft.data['id']}.yaml"
        return f"line {draft.line}"

    # --- one candidate -------------------------------------------------------------------

    def add(self, cand: Candidate) -> None:
        if cand.skip:
            self.report.skipped.append(Item(cand.line, cand.title, None, cand.skip))
            return
        self._drop_links_of_other_papers(cand)
        data = self._candidate_data(cand)
        if data is None:
            return
        owner, key = self._match(cand, data)
        if owner is None:
            self._create(cand, data)
        elif owner.existing is not None:
            self._merge_existing(owner, cand, data, key)
        else:
            self._merge_listed(owner, cand, data, key)

    def _drop_links_of_other_papers(self, cand: Candidate) -> None:
        """A link that already identifies a paper with another title is not this paper's."""
        kept: list[PaperLink] = []
        dropped: list[tuple[PaperLink, Draft]] = []
        for link in cand.links:
            found = self.index.find(identity.link_keys(link.url, link.strong_ids))
            owner = found[0][1] if found else None
            if owner is None or identity.titles_match(owner.data["title"], cand.title):
                kept.append(link)
            else:
                dropped.append((link, owner))
        cand.links = kept
        for link, owner in dropped:
            fallback = (
                "; with no other link, it is created with needs: [link]"
                if not kept and not cand.code
                else ""
            )
            self.log.add(
                "shared-link",
                cand.line,
                "url",
                f"the link {link.url} is also given for '{owner.data['title']}' "
                f"({self._describe(owner)}): two different titles share it, so it is kept "
                f"for {self._describe(owner)} only, not attached to this entry{fallback}; "
                "check which paper it belongs to",
            )
            cand.notes.append(
                f"The list gives this paper the link {link.url}, which is the link of "
                f"'{owner.data['title']}'; it was not attached here."
            )

    def _candidate_data(self, cand: Candidate) -> dict[str, Any] | None:
        """The entry fields this item gives, validated; invalid optional fields are dropped
        (and reported), an invalid required field skips the item."""
        ids = cand.ids()
        url, needs = None, [] if cand.venue else ["venue"]
        if cand.links:
            url = cand.links[0].url
        elif cand.code:
            url = cand.code
            self.log.add("link", cand.line, "url", "only a code link: it is used as the url")
        else:
            needs.insert(0, "link")  # identified by title, year, authors or venue: enrich finds it
            if not cand.notes:  # (a dropped shared link was reported already)
                self.log.add_grouped(
                    ("no-link",),
                    "link",
                    cand.line,
                    "url",
                    lambda n: (
                        f"no link to the paper on {rows_text(n)}: created with 'needs: [link]' "
                        "(mi-atlas enrich or a curator adds it)"
                    ),
                )
        if cand.venue is None:
            self.log.add_grouped(
                ("no-venue",),
                "no-venue",
                cand.line,
                "venue",
                lambda n: (
                    f"no venue on {rows_text(n)} (none named, none implied by a link): created "
                    "with 'needs: [venue]' (mi-atlas enrich or a curator adds it)"
                ),
            )
        data: dict[str, Any] = {
            "id": "placeholder-id",
            "title": cand.title,
            "year": cand.year,
            "venue": cand.venue,
            "url": url,
            "needs": needs,
            **ids,
            "code": cand.code,
            "authors": cand.authors,
            "tldr": cand.summary,
            **{axis: cand.tags.get(axis, []) for axis in AXES},
            "added": self.added.isoformat(),
            "notes": " ".join(cand.notes) or None,
            "provenance": [self._provenance(cand)],
        }
        data = {k: v for k, v in data.items() if v not in (None, [], "")} | {
            axis: cand.tags.get(axis, []) for axis in AXES
        }
        for _ in range(len(_OPTIONAL) + 1):
            problems = _validation_errors(data, self.taxonomy)
            optional = [(f, m) for f, m in problems if f in _OPTIONAL]
            if not problems:
                return data
            if not optional:
                message = "; ".join(f"{f}: {m}" for f, m in problems)
                self._skip(cand, f"not a valid entry ({message})")
                return None
            for field_name, message in optional:
                self.log.add("link", cand.line, field_name, f"{message}; left out")
                data.pop(field_name, None)
        return None

    def _provenance(self, cand: Candidate) -> dict[str, Any]:
        prov: dict[str, Any] = {"source": self.source_name, "line": cand.line}
        if cand.section:
            prov["section"] = cand.section
        return prov

    def _skip(self, cand: Candidate, reason: str) -> None:
        self.report.skipped.append(Item(cand.line, cand.title, None, reason))

    def _match(self, cand: Candidate, data: dict[str, Any]) -> tuple[Draft | None, str | None]:
        for kind, value in identity.keys_of(data):
            owner = self.index.get((kind, value))
            if owner is None:
                continue
            if kind != "title" and not identity.titles_match(owner.data["title"], cand.title):
                continue  # not reached: links of other papers were dropped already
            conflict = identity.strong_conflict(owner.data, data)
            if conflict is None:
                return owner, kind
            other, mine = owner.data[conflict], data[conflict]
            self.log.add(
                "title-conflict",
                cand.line,
                conflict,
                f"same {KEY_NAMES[kind]} as {self._describe(owner)} but a different "
                f"{KEY_NAMES[conflict]} ({mine} here, {other} there): one of the two has the "
                "wrong title or link, so they are kept as two entries; mi-atlas check reports "
                "them until one is corrected",
            )
            return None, None
        return None, None

    # --- outcomes ------------------------------------------------------------------------

    def _create(self, cand: Candidate, data: dict[str, Any]) -> None:
        entry_id = make_id(cand.title, cand.year, cand.authors, self.taken)
        self.taken.add(entry_id)
        data["id"] = entry_id
        draft = Draft(data, cand.line, queued=True)
        item = Item(cand.line, cand.title, entry_id)
        draft.items.append(item)
        self.report.created.append(item)
        self._report_inferred(cand, entry_id)
        self.drafts.append(draft)
        self._register(draft)

    def _report_inferred(self, cand: Candidate, entry_id: str) -> None:
        for name, evidence in cand.inferred.items():
            inferred = Inferred(cand.line, name, str(getattr(cand, name)), evidence, entry_id)
            self.report.inferred.append(inferred)

    def _merge_listed(self, owner: Draft, cand: Candidate, data: dict[str, Any], key) -> None:
        before = {axis: list(owner.data.get(axis, [])) for axis in AXES}
        result = merge_entry(owner.data, data, same_import=True)
        owner.data = result.data
        notes = []
        conflicting = {conflict.field for conflict in result.conflicts}
        for name in result.filled:
            if name in AXES and name not in conflicting:
                extra = [t for t in owner.data[name] if t not in before[name]]
                notes.append(f"{name}: adds {', '.join(extra)}")
        for conflict in result.conflicts:
            if conflict.field == "title":
                notes.append(f"title written '{conflict.offered}' here")
            elif conflict.field in AXES:
                kept, offered = conflict.kept.split(", ")[0], conflict.offered.split(", ")[0]
                notes.append(
                    f"{conflict.field}: {kept} on line {owner.line}, {offered} here: both kept, "
                    f"{kept} first"
                )
            else:
                notes.append(
                    f"{conflict.field} {conflict.offered} here, {conflict.kept} on line "
                    f"{owner.line}: kept line {owner.line}'s"
                )
        self._register(owner)
        detail = "; ".join(notes) if notes else "no differences"
        self.log.add(
            "duplicate",
            cand.line,
            None,
            f"'{cand.title}' is listed again (same {KEY_NAMES[key]} as line {owner.line}): "
            f"merged into {owner.data['id']}; {detail}",
        )
        item = Item(
            cand.line,
            cand.title,
            owner.data["id"],
            f"same paper as line {owner.line} (same {KEY_NAMES[key]})",
        )
        owner.items.append(item)
        self.report.merged.append(item)

    def _merge_existing(self, owner: Draft, cand: Candidate, data: dict[str, Any], key) -> None:
        result = merge_entry(owner.data, data)
        owner.data = result.data
        owner.filled.extend(result.filled)
        self._register(owner)
        where = self._describe(owner)
        if result.conflicts:
            notes = [
                f"{c.field} {c.offered} in the list, {c.kept} in the entry"
                for c in result.conflicts
            ]
            self.log.add(
                "existing",
                cand.line,
                None,
                f"'{cand.title}' is already {where}, which differs: {'; '.join(notes)}; "
                "kept the entry's values",
            )
        if not result.filled:
            outcome = "nothing to add"
        elif self.overwrite:
            outcome = f"adds {', '.join(result.filled)}"
        else:
            outcome = f"would add {', '.join(result.filled)} (use --overwrite to update the file)"
        item = Item(
            cand.line,
            cand.title,
            owner.data["id"],
            f"already {where} (same {KEY_NAMES[key]}); {outcome}",
        )
        owner.items.append(item)
        self.report.merged.append(item)
        if not owner.queued:
            owner.queued = True
            self.drafts.append(owner)

    def finish(self) -> None:
        """Validate every new or filled entry; a draft that fails (it should not) turns its
        items into skipped ones, so the accounting stays exact."""
        for draft in self.drafts:
            try:
                paper = Paper.model_validate(draft.data, context={"taxonomy": self.taxonomy})
            except ValidationError:
                problems = _validation_errors(draft.data, self.taxonomy)
                message = "; ".join(f"{f}: {m}" for f, m in problems)
                for item in draft.items:
                    for bucket in (self.report.created, self.report.merged):
                        if item in bucket:
                            bucket.remove(item)
                    self.report.skipped.append(
                        Item(item.line, item.title, None, f"not a valid entry ({message})")
                    )
                continue
            if draft.existing is None:
                self.report.new_entries[paper.id] = paper
            elif draft.filled and self.overwrite:
                self.report.updated_entries[paper.id] = paper
        for bucket in (self.report.created, self.report.merged, self.report.skipped):
            bucket.sort(key=lambda item: item.line)


def _validation_errors(data: dict[str, Any], taxonomy: Taxonomy) -> list[tuple[str, str]]:
    try:
        Paper.model_validate(data, context={"taxonomy": taxonomy})
    except ValidationError as exc:
        return [
            (str(error["loc"][0]) if error["loc"] else "entry", error["msg"])
            for error in exc.errors(include_url=False)
        ]
    return []
