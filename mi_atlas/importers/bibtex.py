"""`import-bib`: papers from a .bib file, each entry created, merged or skipped with a reason.

`bibread` turns the file into records (decoded text, name lists, the line of every field);
this module turns a record into a paper entry: the venue from journal/booktitle/howpublished
(kept as written when the venue list lacks it, or the `--venue` fallback), the links (url, DOI,
arXiv eprint, web addresses in note or howpublished; none: `needs: [link]`), the identifiers
they carry, the remaining fields as BibTeX extras, and tags from the command line. What the
entry only implies (a year from its date or arXiv id, a venue from its url's host, an arXiv id
in Google Scholar's `journal = {arXiv preprint arXiv:X}`) is listed as inferred. An entry that
is already in the index (`mi_atlas.identity`) fills in what the curated entry lacks
(`merge.merge_entry`). Files written
by `mi-atlas export bib` carry `mi-atlas-*` fields (venue, tags, notes...) and import back to
the same entries.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from .. import identity, links, texcodec
from ..entries import make_id
from ..exporters.bibtex import default_entry_type
from ..index import display_path, load_index, validate_entry
from ..problems import Problem
from ..schema import SLUG, Paper
from ..taxonomy import AXES, Taxonomy, load_taxonomy
from .bibread import BibRecord, read_bib
from .merge import merge_entry
from .paper_links import arxiv_year, understand_link
from .report import ImportReport, Inferred, Item
from .venue import resolve_venue, suggest_venue

ATLAS = "mi-atlas-"  # prefix of the fields `mi-atlas export bib` adds
_PRIMARY_VENUE_FIELDS = ("journal", "booktitle", "howpublished")
# Consulted only when none of the above is given ("publisher = {arXiv}" in Zotero exports).
_OTHER_VENUE_FIELDS = ("publisher", "institution", "organization")
_WEB_TYPES = {"misc", "online", "electronic", "www", "techreport", "report", "unpublished"}
_VOLUME_TYPES = {"proceedings", "mvproceedings", "book", "mvbook", "collection", "mvcollection"}
_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv[:\s/]*|abs/|10\.48550/arxiv\.)(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?",
    re.IGNORECASE,
)
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_ARXIV_PREFIX = re.compile(r"^arxiv[:/]\s*", re.IGNORECASE)
_LINK_START = re.compile(r"https?://")


class IndexNotClean(Exception):
    """The target papers folder has problems; importing into it would hide or worsen them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the papers folder")
        self.problems = problems


@dataclass
class _Known:
    """The entries an import can merge into: the index, then what this import created."""

    papers: dict[str, Paper] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # id -> "papers/x.yaml" or "line 12"
    ids: identity.IdentityIndex[str] = field(default_factory=identity.IdentityIndex)

    def add(self, paper: Paper, where: str, keys: list[identity.Key] | None = None) -> None:
        self.papers[paper.id] = paper
        self.where[paper.id] = where
        self.ids.add(paper.id, keys if keys is not None else identity.keys_of(paper))

    def matches(self, keys: list[identity.Key]) -> list[tuple[str, str]]:
        """(kind, id) of each known entry with one of these identity keys, best evidence first."""
        return self.ids.find(keys)


def import_bib(
    path: Path,
    papers_dir: Path,
    taxonomy: Taxonomy | None = None,
    *,
    tags: dict[str, list[str]] | None = None,
    venue: str | None = None,
    today: dt.date | None = None,
    overwrite: bool = False,
) -> ImportReport:
    """Read `path` and decide, for every entry, whether it creates, merges into or is skipped.

    Nothing is written: `report.write(papers_dir)` does that. `tags` (axis -> ids) go to new
    entries that carry none of their own; `venue` is used where the file names no venue of the
    list; `today` is the `added` date of new entries. A merge fills an existing entry only
    with `overwrite` (otherwise it says what it would fill). Raises `IndexNotClean` when
    `papers_dir` holds invalid entries.
    """
    with _collector_paused():
        return _import(path, papers_dir, taxonomy or load_taxonomy(), tags, venue, today, overwrite)


@contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while a file is read: an import keeps every
    entry alive until it is written, and each full collection walks all of them again (a
    third of the time of a 10,000-entry import). Reference counting still frees everything
    the import drops; the collector runs again afterwards.

    Re-enabled as it was, the collector's next young collection would walk every object the
    import made and keeps (about 18 per entry, 4% of the import's time) only to find them
    alive; `freeze` and `unfreeze` move them to the oldest generation unwalked, where the
    next full collection sees them. Skipped when the caller has frozen objects of its own,
    which `unfreeze` would release."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _import(path, papers_dir, taxonomy, tags, venue, today, overwrite) -> ImportReport:
    known = _Known()
    if papers_dir.exists():
        index = load_index(papers_dir, taxonomy)
        if not index.ok:
            raise IndexNotClean(index.problems)
        for paper in index.papers:
            known.add(paper, display_path(index.files[paper.id]))
    bib = read_bib(path)
    report = ImportReport(display_path(path))
    builder = _Builder(
        taxonomy, report, path.name, tags or {}, venue, today or dt.date.today(), overwrite
    )
    for note in bib.notes:
        report.problem(note.line, note.field, note.message)
    for failure in bib.failures:  # entries the parser could not read at all: exit 1
        report.skipped.append(Item(failure.line, failure.title, None, failure.reason))
        report.unreadable += 1
    volumes = [r for r in bib.records if r.crossref_from and r.entry_type in _VOLUME_TYPES]
    made: dict[int, str] = {}  # record line -> entry id it created or merged into
    for record in bib.records:
        if any(record is v for v in volumes):
            continue
        for note in record.notes:
            report.problem(note.line, note.field, note.message)
        pid = builder.place(record, known)
        if pid is not None:
            made[record.line] = pid
    for record in volumes:
        for note in record.notes:
            report.problem(note.line, note.field, note.message)
        _volume(record, made, report)
    for items in (report.created, report.merged, report.skipped):
        items.sort(key=lambda item: item.line)
    report.problems.sort(key=lambda p: p.line or 0)
    return report


def _volume(record: BibRecord, made: dict[int, str], report: ImportReport) -> None:
    """A @proceedings volume cited by `crossref` was merged into the entries citing it."""
    title = record.fields.get("title", record.key)
    lines = ", ".join(str(n) for n in record.crossref_from)
    into = [made[n] for n in record.crossref_from if n in made]
    if into:
        report.merged.append(
            Item(
                record.line,
                title,
                into[0],
                f"crossref volume: its fields went into the entries at lines {lines}",
            )
        )
    else:
        report.skipped.append(
            Item(
                record.line,
                title,
                None,
                f"crossref volume cited only by entries that were skipped (lines {lines})",
            )
        )


class _Builder:
    """Turns records into entries, one `place` call per record, writing into the report."""

    def __init__(self, taxonomy, report, source, tags, venue, today, overwrite=False) -> None:
        self.tax = taxonomy
        self.report = report
        self.source = source
        self.tags = tags
        self.venue = venue
        self.today = today
        self.overwrite = overwrite
        self.exported = False  # whether the record at hand comes from `mi-atlas export bib`
        self.inferred: list[tuple[str, str, str]] = []  # (field, value, evidence) of the record
        self._venues: dict[str, str | None] = {}  # label -> venue; labels repeat a lot

    def skip(self, record: BibRecord, reason: str) -> None:
        title = record.fields.get("title") or record.key
        self.report.skipped.append(Item(record.line, title, None, reason))

    def problem(self, record: BibRecord, field_name: str | None, message: str, suggestion=None):
        line = record.lines.get(field_name or "", record.line)
        self.report.problem(line, field_name, message, suggestion)

    # -- one record -------------------------------------------------------------------------

    def place(self, record: BibRecord, known: _Known) -> str | None:
        """Create, merge or skip one record; returns the id it went into."""
        self.inferred = []
        data = self.paper_data(record)
        if data is None:
            return None
        # Identity keys come from the data (they do not depend on the id), so a new entry
        # gets its id first and is validated once.
        keys = identity.keys_of(data)
        matches = known.matches(keys)
        if matches:
            paper = self.validate(record, data)
            return None if paper is None else self.merge(record, paper, matches, known)
        taken = known.papers.keys()  # a live view: copying it per entry would be quadratic
        key = record.key.lower()
        year = data["year"]
        if SLUG.match(key) and len(key) <= 80 and key.startswith(f"{year}-") and key not in taken:
            data["id"] = key  # an mi-atlas id, as `export bib` writes keys
        else:
            data["id"] = make_id(data["title"], year, data["authors"], taken)
        paper = self.validate(record, data)
        if paper is None:
            return None
        new_id = paper.id
        known.add(paper, f"line {record.line}", keys)
        self.report.new_entries[new_id] = paper
        self.report.created.append(Item(record.line, paper.title, new_id))
        self.report_inferred(record, new_id)
        return new_id

    def report_inferred(self, record: BibRecord, pid: str, used=None) -> None:
        """The inferred values of the record that went into entry `pid` (all of them, or
        those in `used` for a merge, where the kept entry's values win)."""
        for name, value, evidence in self.inferred:
            if used is None or name in used:
                self.report.inferred.append(Inferred(record.line, name, value, evidence, pid))

    def merge(self, record, paper, matches, known: _Known) -> str:
        kind, pid = matches[0]
        for other_kind, other in matches[1:]:
            self.problem(
                record,
                other_kind,
                f"also the same {identity.KEY_NAMES[other_kind]} as {known.where[other]}; "
                f"merged into {known.where[pid]} only",
            )
        curated = known.papers[pid]
        new = pid in self.report.new_entries
        result = merge_entry(_data(curated), _data(paper), same_import=new)
        self.report_inferred(record, pid, result.filled)
        for conflict in result.conflicts:
            name = conflict.field.removeprefix("bibtex.")
            line = record.lines.get(_bib_field(name, record), record.line)
            self.report.problem(line, name, conflict.message)
        if not result.filled:
            filled = "nothing to fill"
        elif new or self.overwrite:
            filled = f"filled {', '.join(result.filled)}"
        else:
            filled = f"would fill {', '.join(result.filled)} (pass --overwrite to write it)"
        self.report.merged.append(
            Item(
                record.line,
                paper.title,
                pid,
                f"same {identity.KEY_NAMES[kind]} as {known.where[pid]}; {filled}",
            )
        )
        if result.changed and (new or self.overwrite):
            merged = Paper.model_validate(result.data, context={"taxonomy": self.tax})
            known.add(merged, known.where[pid])
            target = self.report.new_entries if new else self.report.updated_entries
            target[pid] = merged
        return pid

    def validate(self, record: BibRecord, data: dict) -> Paper | None:
        try:  # the common case, without collecting problems and warnings
            return Paper.model_validate(data, context={"taxonomy": self.tax})
        except ValidationError:
            pass
        paper, problems = validate_entry(data, self.tax, file=self.source)
        if paper is None:
            reasons = "; ".join(
                f"{p.field}: {p.message}" if p.field else p.message for p in problems
            )
            self.skip(record, reasons)
        return paper

    def paper_data(self, record: BibRecord) -> dict | None:
        fields = dict(record.fields)
        # A file written by `export bib` says everything explicitly: derive nothing from links.
        self.exported = ATLAS + "venue" in fields
        title = fields.pop("title", "")
        if not title:
            self.skip(record, "no title")
            return None
        arxiv = self.arxiv(record, fields)
        year = self.year(record, fields, arxiv)
        if year is None:
            return None
        doi = self.doi(record, fields)
        url = self.url(record, fields, doi, arxiv)
        data: dict = {
            "id": "0-pending",  # replaced once the entry is known to be new (a valid slug)
            "title": title,
            "year": year,
            "url": url,
            "authors": record.names.get("author", []),
            "provenance": [{"source": self.source, "line": record.line}],
        }
        if url is None:
            # Title, year, venue and authors identify it; `mi-atlas enrich` can find the link.
            data["needs"] = ["link"]
            self.problem(
                record,
                None,
                "no link (no url, doi or arXiv id, and no web address in note or howpublished): "
                "created with 'needs: [link]'",
            )
        if arxiv:
            data["arxiv"] = arxiv
        if doi:
            data["doi"] = doi
        self.identifiers(record, fields, url, data)
        if abstract := fields.pop("abstract", None):
            data["abstract"] = abstract
        self.atlas_fields(record, fields, data)
        venue = data.get("venue") or self.venue_of(record, fields, arxiv, url)
        if venue is None:  # title, year and authors (or a link) identify it
            data.setdefault("needs", []).append("venue")
        else:
            data["venue"] = venue
        data["bibtex"] = self.extras(record, fields, venue)
        return data

    # -- fields -----------------------------------------------------------------------------

    def year(self, record: BibRecord, fields: dict, arxiv: str | None) -> int | None:
        text = fields.pop("year", "")
        source = "year"
        if not text and fields.get("date"):
            text, source = fields["date"], "date"
        m = _YEAR.search(text)
        if not m and not text and arxiv and (posted := arxiv_year(arxiv)):
            self.infer(
                record, "year", posted, f"from the arXiv id {arxiv} (the year it was first posted)"
            )
            return posted
        if not m:
            what = (
                f"'{text}' is not a year"
                if text
                else "no year (neither year nor date, nor an arXiv id)"
            )
            self.skip(record, what)
            return None
        if source == "year" and text.strip() != m.group(1):
            self.problem(record, "year", f"read '{text}' as {m.group(1)}")
        if source == "date":
            self.infer(record, "year", m.group(1), f"from the date '{text}'")
        return int(m.group(1))

    def infer(self, record: BibRecord, field_name: str, value, evidence: str) -> None:
        self.inferred.append((field_name, str(value), evidence))

    def arxiv(self, record: BibRecord, fields: dict) -> str | None:
        eprint = fields.get("eprint")
        prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
        if eprint and prefix in ("", "arxiv"):
            cleaned = links.clean_arxiv(_ARXIV_PREFIX.sub("", eprint))
            if links.ARXIV_ID.match(cleaned):
                for name in ("eprint", "archiveprefix", "eprinttype"):
                    fields.pop(name, None)
                return cleaned
            if prefix == "arxiv":
                self.problem(
                    record, "eprint", f"'{eprint}' is not an arXiv id; kept it as a BibTeX field"
                )
        if self.exported:
            return None
        for name in ("url", "doi", "journal", "note", "number", "volume", "howpublished", "eid"):
            value = fields.get(name) or record.raw.get(name)
            if value and (m := _ARXIV_IN_TEXT.search(value)):
                found = links.clean_arxiv(m.group(1))
                if name not in ("url", "doi"):  # Google Scholar: journal = {arXiv preprint arXiv:X}
                    self.infer(record, "arxiv", found, f"from {name} '{value}'")
                return found
        return None

    def doi(self, record: BibRecord, fields: dict) -> str | None:
        value = fields.pop("doi", None)
        if not value:
            return None
        cleaned = links.clean_doi(value.split()[0])
        if not links.DOI.match(cleaned) and (m := links.DOI_IN_TEXT.search(value)):
            cleaned = links.clean_doi(m.group(1))  # a resolver link: http://doi.acm.org/10...
        if links.DOI.match(cleaned):
            return cleaned
        self.problem(record, "doi", f"'{value}' is not a DOI (10.1234/abc); left it out")
        return None

    def url(
        self, record: BibRecord, fields: dict, doi: str | None, arxiv: str | None
    ) -> str | None:
        value = fields.pop("url", "")
        candidates = value.split()
        if len(candidates) > 1:
            self.problem(
                record, "url", f"{len(candidates)} addresses in one url field; used the first"
            )
        for candidate in candidates[:1]:
            if candidate.lower().startswith("www."):
                candidate = "https://" + candidate
            if _good_url(candidate):
                return candidate
            self.problem(record, "url", f"'{candidate}' is not a web address; derived one instead")
        if doi:
            return f"https://doi.org/{doi}"
        if arxiv:
            return f"https://arxiv.org/abs/{arxiv}"
        for name in ("howpublished", "note", "addendum", "annote", "eprint", "pdf"):
            raw = record.raw.get(name) or ""
            for candidate in texcodec.url_candidates(raw):
                if _good_url(candidate):
                    return candidate
        return None

    def identifiers(self, record: BibRecord, fields: dict, url: str, data: dict) -> None:
        """OpenReview, ACL Anthology and code links: from the url and from links in text."""
        if self.exported:
            return
        found = [links.parse_link(url)] if url else []
        for raw in record.raw.values():
            found += [links.parse_link(u) for u in texcodec.url_candidates(raw) if _good_url(u)]
        for info in found:
            for name in ("openreview", "acl", "code"):
                if getattr(info, name) and name not in data:
                    data[name] = getattr(info, name)
            if info.doi and "doi" not in data:
                data["doi"] = info.doi
            if info.arxiv and "arxiv" not in data:
                data["arxiv"] = info.arxiv

    def atlas_fields(self, record: BibRecord, fields: dict, data: dict) -> None:
        """The `mi-atlas-*` fields of an exported file; tags from the command line otherwise."""
        for name in ("tldr", "notes", "code", "openreview", "acl"):
            if value := fields.pop(ATLAS + name, None):
                data[name] = value
        if added := fields.pop(ATLAS + "added", None):
            try:
                data["added"] = dt.date.fromisoformat(added)
            except ValueError:
                self.problem(
                    record, ATLAS + "added", f"'{added}' is not a date (YYYY-MM-DD); used today"
                )
        data.setdefault("added", self.today)
        if venue := fields.pop(ATLAS + "venue", None):
            if venue in self.tax.venues.by_name:
                data["venue"] = venue
            else:
                suggestion = self.tax.venues.resolve(venue) or self.tax.venues.suggest(venue)
                self.problem(
                    record, ATLAS + "venue", f"'{venue}' is not a venue of the list", suggestion
                )
        for axis in AXES:
            text = fields.pop(ATLAS + axis, None)
            if text is None:
                data[axis] = list(self.tags.get(axis, []))
                continue
            ids = []
            for tag in filter(None, (t.strip() for t in text.split(","))):
                if tag in self.tax[axis].nodes:
                    ids.append(tag)
                else:
                    suggestion = self.tax[axis].suggest(tag)
                    hint = f"; did you mean '{suggestion}'?" if suggestion else ""
                    self.problem(
                        record,
                        ATLAS + axis,
                        f"'{tag}' is not a {axis} id; left it out{hint}",
                        suggestion,
                    )
            data[axis] = list(dict.fromkeys(ids))

    def resolve(self, label: str) -> str | None:
        if label not in self._venues:
            self._venues[label] = resolve_venue(self.tax, label)
        return self._venues[label]

    def venue_of(self, record: BibRecord, fields: dict, arxiv: str | None, url) -> str | None:
        """The venue the entry names (journal, booktitle, howpublished): the list's name for
        it, else kept as written (reported, with the closest name of the list); `--venue`
        decides for a venue the list lacks. With none named: `--venue`, or what the entry
        implies (reported as inferred): publisher/institution/school, an arXiv id, a blog
        host, a web page."""
        labels = [
            (name, fields[name])
            for name in _PRIMARY_VENUE_FIELDS
            if fields.get(name) and not _LINK_START.match(fields[name])
        ]
        for _, label in labels:
            if name := self.resolve(label):
                return name
        if labels:
            where, label = labels[0]
            written = " ".join(label.split())
            closest = suggest_venue(self.tax, written)  # peels "Proceedings of the ..."
            message, suggestion = self.tax.venues.note(written, closest) or ("", None)
            if self.venue:
                hint = f" (closest: '{suggestion}')" if suggestion else ""
                message = f"'{written}' is not in taxonomy/venues.yaml{hint}"
                self.problem(
                    record, where, f"{message}; recorded as '{self.venue}' (--venue)", suggestion
                )
                return self.venue
            self.problem(record, where, message, suggestion)
            return written
        if self.venue:
            return self.venue
        for name in _OTHER_VENUE_FIELDS:
            if fields.get(name) and (venue := self.resolve(fields[name])):
                self.infer(record, "venue", venue, f"from {name} '{fields[name]}'")
                return venue
        if arxiv:
            self.infer(record, "venue", "arXiv", f"from the arXiv id {arxiv} (an arXiv preprint)")
            return "arXiv"
        if url and (link := understand_link(url)).venue and link.venue in self.tax.venues.by_name:
            host = urlsplit(url).netloc.lower().removeprefix("www.")
            self.infer(record, "venue", link.venue, f"from the url's host {host}")
            return link.venue
        if record.entry_type in _WEB_TYPES and "Blog" in self.tax.venues.by_name:
            self.infer(
                record, "venue", "Blog", f"from the entry type @{record.entry_type} with no venue"
            )
            return "Blog"  # a web page or report with no venue: what the Blog venue is for
        for name in ("school", *_OTHER_VENUE_FIELDS):
            if value := fields.get(name):
                written = " ".join(value.split())
                self.infer(record, "venue", written, f"from {name} (no journal or booktitle)")
                return written
        self.problem(
            record,
            None,
            "no venue (no journal, booktitle, howpublished, publisher or school, no arXiv id "
            "and no link that implies one): created with 'needs: [venue]'; or pass --venue",
        )
        return None

    def extras(self, record: BibRecord, fields: dict, venue: str) -> dict[str, str]:
        extras: dict[str, str] = {}
        for name, value in fields.items():
            if not _FIELD_NAME.match(name) or name.startswith(ATLAS):
                self.problem(
                    record,
                    name,
                    f"'{name}' is not a BibTeX field name the index can keep; left it out",
                )
                continue
            extras[name] = value
        for name, people in record.names.items():
            if name != "author" and people:
                extras[name] = " and ".join(people)
        known = self.tax.venues.by_name.get(venue)
        # A venue the list lacks is written back from the entry's `venue` (as howpublished).
        full, kind = (known.full, known.kind) if known else (venue, "other")
        for name in ("booktitle", "journal") if known else ("howpublished",):
            if full and extras.get(name) == full:  # what `export bib` writes for the venue
                del extras[name]
        if record.entry_type != default_entry_type(extras, kind):
            extras["entrytype"] = record.entry_type
        return extras


def _data(paper: Paper) -> dict:
    return paper.model_dump(exclude_none=True)


def _bib_field(name: str, record: BibRecord) -> str:
    """The .bib field an entry's field came from, for the line of a conflict."""
    if name == "venue":
        return next((f for f in _PRIMARY_VENUE_FIELDS if f in record.lines), "")
    if name in AXES:
        return ATLAS + name
    return {"authors": "author", "arxiv": "eprint"}.get(name, name)


def _good_url(url: str) -> bool:
    return bool(links.URL.match(url)) and not any(ch in url for ch in "<>\"' {}\\")
