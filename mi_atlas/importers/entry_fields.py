"""Reading one entry's fields out of its pieces: title, year, venue, authors, links, tags.

A table row arrives as cells named by their column; a list item or paragraph as its first
line plus labelled detail lines ("Venue: NeurIPS 2024"). Both become a mapping from field
to pieces, and `build_candidate` reads every field the same way, reporting what it had to
interpret (an alias, a "-" placeholder, a venue the link contradicts) to a `ProblemLog`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from ..taxonomy import AXES, Taxonomy
from ..taxonomy import label_key as _label_key
from .awesome_report import ProblemLog
from .inline import Piece
from .paper_links import PaperLink, arxiv_year, understand_link
from .venue import resolve_venue as resolve_label

# The same few labels come back on every row: remember their normal form.
label_key = lru_cache(maxsize=16384)(_label_key)

PLACEHOLDERS = {"", "-", "–", "—", "n/a", "na", "none", "null", "tbd", "?", "/", "x"}
# Column headers (and detail-line labels) -> field, compared by `label_key`.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "title": ("paper", "papers", "title", "paper title", "name", "paper name", "article", "work"),
    "authors": ("author", "authors", "author s", "first author", "by", "writers"),
    "venue": (
        "venue", "conference", "conf", "journal", "published", "published in", "publication",
        "publisher", "venue year", "conference journal", "proceedings", "where",
    ),
    "year": ("year", "date", "time", "published date", "publication date", "pub date", "when"),
    "link": (
        "link", "links", "url", "pdf", "paper link", "paper url", "arxiv", "openreview", "doi",
        "resource", "resources", "materials", "paper pdf", "source", "paper links",
    ),
    "code": (
        "code", "github", "repo", "repository", "implementation", "official code", "code link",
        "github repo", "project", "project page", "homepage", "website",
    ),
    "summary": (
        "tldr", "tl dr", "summary", "description", "highlight", "highlights", "contribution",
        "contributions", "note", "notes", "comment", "comments", "remark", "remarks",
        "key idea", "idea", "abstract", "one sentence summary",
    ),
    "objects": (
        "object", "objects", "interpretable object", "interpretable objects", "component",
        "components", "unit", "units", "module", "modules", "target component",
    ),
    "locate": (
        "localizing method", "localising method", "locating method", "localization method",
        "localisation method", "localization", "localisation", "locate", "locating",
        "localizing", "locate method", "localization methods", "localizing methods",
    ),
    "steer": (
        "steering method", "steering", "steer", "steering methods", "intervention",
        "intervention method", "steer method", "manipulation", "editing method",
    ),
    "goals": (
        "goal", "goals", "sub goal", "sub goals", "subgoal", "application", "applications",
        "improvement", "improve", "improvement goal", "objective", "use case",
    ),
    "tags": (
        "tags", "tag", "keywords", "keyword", "category", "categories", "type", "topic",
        "topics", "method", "methods", "area", "label", "labels", "taxonomy",
    ),
    "ignore": ("stars", "star", "citations", "cited by", "no", "index", "idx", "rank", "id"),
}  # fmt: skip
_FIELD_OF = {label_key(name): key for key, names in FIELD_NAMES.items() for name in names}
# Substrings that decide a header no exact name matched, tried in this order.
_FIELD_HINTS = (
    ("locat", "locate"), ("localiz", "locate"), ("localis", "locate"), ("steer", "steer"),
    ("object", "objects"), ("goal", "goals"), ("author", "authors"), ("code", "code"),
    ("github", "code"), ("link", "link"), ("url", "link"), ("pdf", "link"), ("venue", "venue"),
    ("conference", "venue"), ("journal", "venue"), ("year", "year"), ("date", "year"),
    ("title", "title"), ("paper", "title"), ("tag", "tags"), ("summary", "summary"),
)  # fmt: skip
GENERIC_LINK_TEXTS = {
    "here", "link", "links", "paper", "papers", "pdf", "arxiv", "code", "github", "project",
    "project page", "website", "homepage", "blog", "url", "openreview", "html", "abs",
    "abstract", "slides", "video", "poster", "demo", "doi", "repo", "repository", "official",
    "dataset", "data", "model", "models", "benchmark", "page", "site", "acl", "bib", "bibtex",
    "cite", "citation", "talk", "supp", "supplementary", "this", "source", "download", "read",
    "preprint", "proceedings", "publication", "article", "huggingface", "hf", "twitter",
    "tweet", "thread", "zhihu", "medium", "note", "notes", "review", "reviews", "more",
    "details", "anthology", "acl anthology", "semantic scholar", "google scholar", "colab",
    "notebook", "tutorial", "post", "paper link", "code link", "arxiv link", "full paper",
    "official code", "pytorch", "jax", "tensorflow", "openreview link", "local",
}  # fmt: skip
YEAR = re.compile(r"(?<![\d.])(19[5-9]\d|20\d\d)(?![\d])(?!\.\d)")
_SHORT_YEAR = re.compile(r"['’](\d{2})\b")
_DATE_STAMP = re.compile(r"^\W*\[?\s*(?:19|20)\d\d\s*[-/.]\s*\d{1,2}(?:\s*[-/.]\s*\d{1,2})?\s*\]?")
_FRAGMENT_SPLIT = re.compile(r"[,;|()\[\]{}·•]|\s[-–—]\s|(?<![A-Z])\.\s|\n|[:：]\s")
_SENTENCE_SPLIT = re.compile(r"\s[-–—|·•]\s|(?<![A-Z])\.\s|\n")
_NAME_PART = re.compile(r"^(?:[^\W\d_][\w'’.-]*)$")
_PARTICLES = {"van", "von", "der", "den", "de", "da", "di", "la", "le", "du", "del", "dos", "bin"}
_DECOR = re.compile(r"^[\W\d_]*$")  # no letters: bullets, emoji, numbering, separators
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]{}\"']+[^\s<>()\[\]{}\"'.,;:]")
_LABELLED = re.compile(r"^\s*([A-Za-z][A-Za-z ;/&().#-]{0,30}?)\s*[:：]\s*(.*)$", re.DOTALL)


def field_of(header: str) -> str | None:
    """The field a column header (or detail label) names, or None."""
    key = label_key(header)
    if not key:
        return "ignore" if header.strip() in {"#", "№"} else None
    if key in _FIELD_OF:
        return _FIELD_OF[key]
    for hint, name in _FIELD_HINTS:
        if hint in key:
            return name
    return None


def text_of(pieces: list[Piece], *, links: bool = True) -> str:
    """Plain text: link text included (unless `links=False`), images left out, breaks as
    newlines, spacing collapsed within each line."""
    parts: list[str] = []
    for piece in pieces:
        if piece.kind == "text" or (piece.kind == "link" and links):
            parts.append(piece.text)
        elif piece.kind == "break":
            parts.append("\n")
    text = "".join(parts)
    return "\n".join(re.sub(r"\s+", " ", line).strip() for line in text.split("\n")).strip()


def split_lines(pieces: list[Piece]) -> list[list[Piece]]:
    lines: list[list[Piece]] = [[]]
    for piece in pieces:
        if piece.kind == "break":
            lines.append([])
        else:
            lines[-1].append(piece)
    return [line for line in lines if any(p.kind != "text" or p.text.strip() for p in line)]


def is_placeholder(text: str) -> bool:
    return label_key(text) in PLACEHOLDERS or text.strip() in PLACEHOLDERS


def is_generic(text: str) -> bool:
    """Link text that names a kind of link, not a paper: "pdf", "[code]", "arXiv:2401.1"."""
    key = label_key(text)
    if key in GENERIC_LINK_TEXTS or not key:
        return True
    return bool(re.fullmatch(r"(?:arxiv )?\d{4} \d{4,5}(?: v\d+)?|\d+", key))


def clean_title(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > 2 and text[0] in "\"“'" and text[-1] in "\"”'":
        text = text[1:-1].strip()  # a quoted title
    text = re.sub(r"^[\W_]+(?=[\w\"“'(])", "", text)  # leading bullets, emoji, numbering
    text = re.sub(r"^\(?\d{1,3}[.)]\s+", "", text)  # "1) Title", "(2) Title"
    text = text.strip(" \t-–—|,;:").rstrip(" [(")
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return text.strip("*_ ")


def looks_like_title(text: str, taxonomy: Taxonomy) -> bool:
    """Two letters at least, and not a link label, a date, a bare venue or a bare year."""
    if sum(ch.isalpha() for ch in text) < 2 or len(text) > 500:
        return False
    if is_generic(text) or _DATE_STAMP.match(text) or text.lower().startswith(("http:", "https:")):
        return False
    return taxonomy.venues.resolve(text) is None


def is_news_line(text: str) -> bool:
    """'**[2026-1-21]** Our paper is out' and '2024/05: released' are news, not entries."""
    return bool(_DATE_STAMP.match(text.strip()))


@dataclass
class TitleFind:
    title: str
    link: Piece | None  # the link whose text is the title
    rest: list[Piece]  # every piece that is not the title


def find_title(pieces: list[Piece], taxonomy: Taxonomy, *, whole_cell: bool = False) -> TitleFind:
    """The title of an entry: the first title-like link text, emphasised run, quoted text or
    leading text on its first line. In a title cell (`whole_cell`), the first line is the
    title when nothing marks one."""
    # The first line with something in it: a badge line above the title does not count.
    lines = [line for line in split_lines(pieces) if not all(_is_decor(p) for p in line)]
    if not lines:
        return TitleFind("", None, pieces)
    first = lines[0]
    for index, piece in enumerate(first):
        if piece.kind == "image" or (piece.kind == "text" and _DECOR.match(piece.text)):
            continue
        if piece.kind == "link":
            text, packed = unpack_title(clean_title(piece.text))
            if looks_like_title(text, taxonomy):
                return TitleFind(text, piece, packed + _without(pieces, [piece]))
            if piece.image_only or is_generic(piece.text):
                continue
            break
        if piece.strong or piece.em:
            text, packed = unpack_title(clean_title(piece.text))
            if looks_like_title(text, taxonomy):
                return TitleFind(text, None, packed + _without(pieces, [piece]))
            continue
        # Plain leading text: up to the first link, cut at the first separator.
        lead = ""
        used: list[Piece] = []
        for p in first[index:]:
            if p.kind != "text":
                break
            lead += p.text
            used.append(p)
        text, cut = (clean_title(lead), len(lead)) if whole_cell else ("", 0)
        if not whole_cell or len(text) > 250:
            # A title cell that runs on into a summary ("1) Title  This paper...") is cut too.
            head = _leading_title(lead)
            text, cut = clean_title(head), len(head)
        if looks_like_title(text, taxonomy):
            rest_text = lead[cut:]
            rest = _without(pieces, used)
            if rest_text.strip():
                rest.insert(0, Piece("text", rest_text))
            return TitleFind(text, None, rest)
        break
    return TitleFind("", None, pieces)


_PACKED_YEAR = re.compile(r"[\s,]*[(\[]((?:19|20)\d\d)[)\]]\s*$")
# A lab after the title ("Toy Models of Superposition, Anthropic: ..."): a known lab or a
# name that says it is an organisation. A title's own last comma part ("Dead, N-gram,
# Positional") is neither.
_LABS = {
    "anthropic", "openai", "deepmind", "google", "meta", "microsoft", "redwood", "eleutherai",
    "apollo", "mit", "stanford", "berkeley", "harvard", "oxford", "cambridge", "fair", "nvidia",
    "ibm", "amazon", "apple", "conjecture", "metr", "cohere", "mila", "epfl", "eth", "cmu",
    "nyu", "ai2", "tsinghua", "goodfire", "transluce", "timaeus", "mats", "miri", "chai",
}  # fmt: skip
_ORG = re.compile(r"\b(?:research|lab|labs|university|institute|inc|brain|college)\b", re.I)


def unpack_title(text: str) -> tuple[str, list[Piece]]:
    """A title line that packs in a lab, authors and a year, as some lists write it in one
    bold run: 'Toy Models of Superposition, Anthropic: Elhage, Hume et al. (2022)' ->
    ('Toy Models of Superposition', pieces 'Elhage, Hume et al.' and '(2022)' to be read as
    free text). Other titles come back unchanged."""
    year = _PACKED_YEAR.search(text)
    if not year:
        return text, []
    title, packed = text[: year.start()], [Piece("text", f"({year.group(1)})"), Piece("break")]
    if ": " in title:
        head, tail = title.rsplit(": ", 1)
        if parse_authors(tail):  # two names or more, or "et al.": not a subtitle
            title = head
            packed = [Piece("text", tail), Piece("break"), *packed]
    if ", " in title:
        head, lab = title.rsplit(", ", 1)
        words = lab.split()
        if len(words) <= 4 and ({w.lower() for w in words} & _LABS or _ORG.search(lab)):
            title = head
    return title.strip(), packed


def _is_decor(piece: Piece) -> bool:
    if piece.kind == "image" or piece.image_only:
        return True
    return piece.kind == "text" and bool(_DECOR.match(piece.text))


def _leading_title(text: str) -> str:
    """The part of leading text that is the title, as written: 'Title. Authors. Venue 2023.'
    -> 'Title'; '"Title" (ICLR 2024)' -> '"Title"'. The rest is read for the other fields."""
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    quoted = re.match(r"^[\"“](.+?)[\"”]", stripped)
    if quoted:
        return text[: offset + quoted.end()]
    match = re.search(r"\s[-–—|]\s|(?<![A-Z])\.\s|\s[(\[]|\s{2,}", stripped + " ")
    return text[: offset + (match.start() if match else len(stripped))]


def _without(pieces: list[Piece], drop: list[Piece]) -> list[Piece]:
    ids = {id(p) for p in drop}
    return [p for p in pieces if id(p) not in ids]


def find_year(text: str) -> int | None:
    match = YEAR.search(text)
    if match:
        return int(match.group(1))
    match = _SHORT_YEAR.search(text)
    return 2000 + int(match.group(1)) if match else None


def find_venue(text: str, taxonomy: Taxonomy) -> tuple[str, str] | None:
    """The first fragment of free text that is a known venue: (canonical, as written)."""
    for fragment in _FRAGMENT_SPLIT.split(text):
        fragment = re.sub(r"^(?:in|at|accepted (?:at|by|to))\s+", "", fragment.strip(), flags=re.I)
        fragment = _SHORT_YEAR.sub("", fragment).strip(" .*_")
        if len(fragment) < 2:
            continue
        venue = resolve_venue(fragment, taxonomy)
        if venue:
            return venue, fragment
    return None


def resolve_venue(label: str, taxonomy: Taxonomy) -> str | None:
    """A venue label as lists write it: 'EMNLP 2024 Findings' (a year inside), or
    'MechInterp@ICML' (a workshop at a conference)."""
    venue = taxonomy.venues.resolve(label)
    if venue is None:
        venue = taxonomy.venues.resolve(re.sub(r"\b(?:19|20)\d\d\b", " ", label))
    if venue is None and (match := re.match(r"^(.*?)\s*@\s*([A-Za-z]+)", label)):
        venue = taxonomy.venues.resolve(f"{match.group(2)} Workshop")
        venue = venue or taxonomy.venues.resolve(match.group(1))
    return venue


def parse_authors(text: str, *, labelled: bool = False) -> list[str]:
    """'A. Smith, B. Jones and C. Lee' -> three names; [] when the text is not an author list.

    Unlabelled text must look like one: two names or more, or one name with "et al.".
    """
    text = re.sub(r"\s+", " ", text).strip(" -–—:").rstrip(".")
    text = re.sub(r"[\s,]*\(?(?:19|20)\d\d\)?$", "", text)  # "Hewitt and Liang (2019)"
    et_al = bool(re.search(r"\bet\.? al\b\.?", text))
    text = re.sub(r",?\s*\bet\.? al\b\.?", "", text)
    parts = [p.strip(" *_") for p in re.split(r",|;|\band\b|&", text) if p.strip(" *_")]
    if not parts or not all(_is_name(p) for p in parts):
        return []
    if not labelled and len(parts) < 2 and not et_al:
        return []
    return parts


def _is_name(text: str) -> bool:
    words = text.split()
    if not 1 <= len(words) <= 5 or any(ch.isdigit() for ch in text):
        return False
    if not all(_NAME_PART.match(w) for w in words):
        return False
    capitals = [w for w in words if w.lower() not in _PARTICLES]
    return bool(capitals) and all(w[0].isupper() for w in capitals)


def labelled_line(pieces: list[Piece]) -> tuple[str, list[Piece]] | None:
    """'**Venue**: NeurIPS 2024' -> ("venue", pieces after the colon), if the label is a field."""
    if not pieces or pieces[0].kind != "text":
        return None
    match = _LABELLED.match(pieces[0].text)
    if not match:
        return None
    name = field_of(match.group(1))
    if name is None or name == "ignore":
        return None
    rest = [Piece("text", match.group(2), strong=pieces[0].strong, em=pieces[0].em)]
    tail = pieces[1:]
    # "**Venue**: X" puts the colon in the next piece; the label ends at the colon.
    return name, [p for p in rest if p.text.strip()] + tail


def labelled_split(pieces: list[Piece]) -> tuple[str, list[Piece]] | None:
    """Like `labelled_line`, but also reads '**Venue:** X' and '**Venue**: X' (label emphasised)."""
    found = labelled_line(pieces)
    if found:
        return found
    if len(pieces) >= 2 and pieces[0].kind == "text" and (pieces[0].strong or pieces[0].em):
        label = pieces[0].text.strip().rstrip(":：").strip()
        name = field_of(label)
        after = pieces[1]
        colon_in_label = pieces[0].text.strip().endswith((":", "："))
        colon_after = after.kind == "text" and after.text.lstrip().startswith((":", "："))
        if name and name != "ignore" and (colon_in_label or colon_after):
            tail = list(pieces[1:])
            if colon_after:
                tail[0] = Piece("text", after.text.lstrip()[1:], strong=after.strong, em=after.em)
            return name, tail
    return None


@dataclass
class Candidate:
    """One item of a list, read: what it says about a paper, before it becomes an entry."""

    line: int
    where: str  # "table row", "list item", "paragraph", "HTML table row", "HTML list item"
    section: str
    title: str = ""
    year: int | None = None
    venue: str | None = None
    authors: list[str] = field(default_factory=list)
    links: list[PaperLink] = field(default_factory=list)  # paper links, best first
    code: str | None = None
    tags: dict[str, list[str]] = field(default_factory=dict)
    given_axes: set[str] = field(default_factory=set)  # axes the item itself speaks to
    summary: str | None = None
    skip: str | None = None  # why this item cannot become an entry
    notes: list[str] = field(default_factory=list)
    inferred: dict[str, str] = field(default_factory=dict)  # field -> what it was read from

    def ids(self) -> dict[str, str]:
        """Strong identifiers from every paper link (the first link wins per kind)."""
        found: dict[str, str] = {}
        for link in self.links:
            for kind, value in link.strong_ids.items():
                found.setdefault(kind, value)
        return found


@dataclass
class Section:
    """Where an item sits: its heading path, and what the headings imply."""

    path: tuple[str, ...] = ()
    tags: dict[str, list[str]] = field(default_factory=dict)
    year: int | None = None

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""


def build_candidate(
    *,
    line: int,
    where: str,
    section: Section,
    fields: dict[str, list[list[Piece]]],
    rest: list[Piece],
    title: TitleFind | None,
    taxonomy: Taxonomy,
    log: ProblemLog,
    column_names: dict[str, str] | None = None,
) -> Candidate:
    """Read every field of one item. `fields` maps a field to the cells (or detail lines)
    that hold it; `rest` is the unlabelled text; `title` was found by the caller."""
    names = column_names or {}
    cand = Candidate(line, where, section.name)
    title_link: Piece | None = None
    if title is None and fields.get("title"):
        title = find_title(fields["title"][0], taxonomy, whole_cell=True)
        # The rest of a title cell ("Title<br>Authors, NeurIPS 2023") is read like free text.
        rest = title.rest + [Piece("break")] + rest
    if title is not None:
        cand.title, title_link = title.title, title.link
    if not cand.title:
        cand.skip = "no title: nothing in the item reads as a paper title"
        return cand
    free_text = text_of(rest)

    _read_links(cand, fields, rest, title_link, log)
    _read_authors(cand, fields, free_text)
    _read_year(cand, fields, free_text, section, log, names)
    _read_venue(cand, fields, free_text, taxonomy, log, names)
    _read_tags(cand, fields, rest, section, taxonomy, log, names)
    _check_preprint_year(cand, log)
    cand.skip = cand.skip or _why_not_an_entry(cand, section)
    if fields.get("summary"):
        summary = " ".join(text_of(cell) for cell in fields["summary"]).strip()
        cand.summary = summary if summary and not is_placeholder(summary) else None
    return cand


def _read_links(cand, fields, rest, title_link, log) -> None:
    ordered: list[tuple[Piece, bool]] = []  # (link piece, from a code column)
    if title_link is not None:
        ordered.append((title_link, False))
    for name in ("link", "title", "venue", "code"):
        for cell in fields.get(name, []):
            ordered.extend((p, name == "code") for p in cell if p.kind == "link")
    ordered.extend((p, False) for p in rest if p.kind == "link")
    # A bare address in the text ("- https://openreview.net/forum?id=...") is a link too.
    for piece in rest:
        if piece.kind == "text" and not piece.code:
            ordered.extend(
                (Piece("link", href=url), False) for url in _BARE_URL.findall(piece.text)
            )
    for name, cells in fields.items():
        if name not in {"link", "title", "venue", "code"}:
            for cell in cells:
                ordered.extend((p, False) for p in cell if p.kind == "link")
    seen: set[str] = set()
    for piece, from_code in ordered:
        href = piece.href.strip()
        if href in seen:
            continue
        seen.add(href)
        link = understand_link(href)
        if link.kind in {"anchor"} or not href:
            continue
        if link.kind in {"relative", "invalid"}:
            log.add(
                "link",
                cand.line,
                "url",
                f"link '{href}' is not a web address (http:// or https://); it is not used",
            )
            continue
        if link.kind == "code" or (from_code and not link.strong_ids):
            cand.code = cand.code or href
            continue
        cand.links.append(link)


def _read_authors(cand, fields, free_text) -> None:
    for cell in fields.get("authors", []):
        text = text_of(cell)
        if not is_placeholder(text):
            cand.authors = parse_authors(text, labelled=True) or [
                p.strip() for p in re.split(r",|;|\band\b", text) if p.strip()
            ]
            return
    for fragment in _SENTENCE_SPLIT.split(free_text):
        authors = parse_authors(fragment)
        if authors:
            cand.authors = authors
            return


def _read_year(cand, fields, free_text, section, log, names) -> None:
    """The year the item states (a Year column or label, a venue such as 'NeurIPS 2023'), else
    the year it implies, recorded in `cand.inferred`: a date ('2024-06', 'Mar 2024'), a year
    in its text ('Authors (2023)'), a year heading above it, or its arXiv id (2301.* -> 2023)."""
    column = names.get("year", "Year")
    for cell in fields.get("year", []):
        text = text_of(cell)
        if is_placeholder(text):
            log.add("year", cand.line, "year", f"{column} is '{text or 'empty'}'")
            break
        year = find_year(text)
        if year:
            cand.year = year
            if text.strip() != str(year):
                label = names.get("year", "date").lower()
                cand.inferred["year"] = f"from the {label} '{text}'"
            return
        log.add("year", cand.line, "year", f"{column} '{text}' is not a year")
        break
    for cell in fields.get("venue", []):
        if year := find_year(text_of(cell)):
            cand.year = year
            return
    if year := find_year(free_text):
        cand.year = year
        shown = f"({year})" if f"({year})" in free_text else str(year)
        cand.inferred["year"] = f"from '{shown}' in the item's text"
        return
    if section.year:
        cand.year = section.year
        cand.inferred["year"] = "from the year heading above the item"
        return
    for link in cand.links:
        if link.arxiv and (year := arxiv_year(link.arxiv)):
            cand.year = year
            cand.inferred["year"] = f"from the arXiv id {link.arxiv} (the year it was first posted)"
            return


# What a Venue cell says when the paper has no venue yet: read the venue from the link instead.
NO_VENUE_YET = {"under review", "in submission", "submitted", "to appear", "in press", "tba"}


def _read_venue(cand, fields, free_text, taxonomy, log, names) -> None:
    """The venue the item states (a Venue column or label, kept as written when the venue list
    lacks it), else the one it implies, recorded in `cand.inferred`: a venue named in its text,
    the proceedings its link belongs to (ACL Anthology, NeurIPS...), an arXiv link (arXiv
    preprint) or a blog host (transformer-circuits.pub, distill.pub, LessWrong, company blogs)."""
    column = names.get("venue", "Venue")
    listed: str | None = None
    for cell in fields.get("venue", []):
        written = re.sub(r"\s+", " ", text_of(cell, links=True)).strip()
        if is_placeholder(written) or label_key(written) in NO_VENUE_YET:
            break
        # Long labels as .bib files write them ("ICLR 2025 Workshop on X", "Proceedings of...").
        listed = resolve_venue(written, taxonomy) or resolve_label(taxonomy, written)
        if listed is None:
            shorter = find_venue(written, taxonomy)
            listed = shorter[0] if shorter else None
        if listed is None:
            listed = _as_written(written)
            message, suggestion = taxonomy.venues.note(listed) or ("", None)
            log.add("unknown-venue", cand.line, "venue", f"{column} {message}", suggestion)
        elif _is_alias(written, listed, taxonomy):
            log.add_grouped(
                ("venue", label_key(written)),
                "alias",
                cand.line,
                "venue",
                lambda n, w=written, v=listed: (
                    f"{column} '{w}' read as '{v}' through the venue list's aliases ({rows_text(n)})"
                ),
                listed,
            )
        break
    else:
        if found := find_venue(free_text, taxonomy):
            listed = found[0]
            cand.inferred["venue"] = f"from '{found[1]}' in the item's text"
    known = taxonomy.venues.by_name
    implied = next(
        (lk for lk in cand.links if lk.venue in known and not lk.host_venue_is_weak), None
    )
    if implied and listed and implied.venue != listed and listed in known:
        where = f"ACL Anthology id {implied.acl}" if implied.acl else f"link {implied.url}"
        log.add(
            "venue-from-link",
            cand.line,
            "venue",
            f"venue '{listed}' disagrees with the {where}, which is {implied.venue}; "
            f"using {implied.venue}",
            implied.venue,
        )
        listed = implied.venue
        cand.inferred.pop("venue", None)
    if listed is None:
        listed = _venue_from_links(cand, known)
    cand.venue = listed


def _as_written(label: str) -> str:
    """A venue the list lacks, as the item writes it, less a year ('Nature Neuroscience 2019')."""
    bare = re.sub(r"[\s,]*\b(?:19|20)\d\d\b[\s,]*", " ", label).strip(" ,;.")
    return bare or label


def _venue_from_links(cand: Candidate, known) -> str | None:
    """The venue the item's links imply (reported as inferred): proceedings, arXiv, a blog."""
    for link in cand.links:
        if link.venue in known and not link.host_venue_is_weak:
            cand.inferred["venue"] = f"from the link {link.url} (its proceedings)"
            return link.venue
    for link in cand.links:
        if link.arxiv:
            cand.inferred["venue"] = f"from the arXiv link {link.url} (an arXiv preprint)"
            return "arXiv"
    for link in cand.links:
        if link.venue in known:
            host = urlsplit(link.url).netloc.lower().removeprefix("www.")
            cand.inferred["venue"] = f"from the link's host {host} (a blog or research note)"
            return link.venue
    return None


# Headings under which an item without a paper identifier or year is a tool, a person, a
# course or a data set, not a paper.
_NOT_PAPERS = re.compile(
    r"\b(?:tools?|toolkits?|librar(?:y|ies)|software|frameworks?|packages?|courses?|tutorials?|"
    r"lectures?|people|researchers?|labs?|groups?|datasets?|benchmarks?|videos?|podcasts?|"
    r"talks?|newsletters?|communit(?:y|ies)|related (?:lists|repos|awesome)|awesome lists?)\b",
    re.IGNORECASE,
)


def _why_not_an_entry(cand: Candidate, section: Section) -> str | None:
    """Why an item that was read cannot become an entry: it is not a paper (a tool, person,
    course or data set: nothing identifies a paper and it is listed as such), or nothing in
    it gives the year or the venue an entry needs."""
    identified = any(link.strong_ids for link in cand.links)
    if not identified and (cand.year is None or cand.venue is None):
        heading = next((h for h in reversed(section.path) if _NOT_PAPERS.search(h)), None)
        if heading:
            return (
                f"not a paper: listed under '{heading}' with no paper identifier "
                f"(arXiv, DOI, OpenReview, ACL) and no {'year' if cand.year is None else 'venue'}"
            )
        if not cand.links and cand.code:
            return "not a paper: its only link is a code repository and it gives no year or venue"
    if cand.year is None:
        return (
            "no year: the item gives none (no year or date, no arXiv id, no year heading); add one"
        )
    if cand.venue is None and not (cand.links or cand.code or cand.authors):
        return (
            "not enough to identify the paper: no venue, no link and no authors with its title "
            "and year; add a venue or a link"
        )
    return None  # (an entry without a venue says needs: [venue])


def _check_preprint_year(cand: Candidate, log: ProblemLog) -> None:
    """An arXiv preprint's year is when it was posted: a different year is worth a look."""
    if cand.venue != "arXiv" or cand.year is None:
        return
    arxiv = next((lk.arxiv for lk in cand.links if lk.arxiv), None)
    posted = arxiv_year(arxiv) if arxiv else None
    if posted and posted != cand.year:
        log.add(
            "year",
            cand.line,
            "year",
            f"year {cand.year} for an arXiv preprint first posted in {posted} ({arxiv}); "
            f"kept {cand.year}",
        )


def _is_alias(written: str, canonical: str, taxonomy: Taxonomy) -> bool:
    key = re.sub(r"\s*(?:(?:19|20)\d\d|\d\d)$", "", label_key(written))
    venue = taxonomy.venues.by_name[canonical]
    return key not in {label_key(venue.name), label_key(venue.full)}


def rows_text(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


def read_labels(
    cand: Candidate,
    axis: str,
    text: str,
    column: str,
    taxonomy: Taxonomy,
    log: ProblemLog,
) -> list[str]:
    """Tag ids from one cell, reporting placeholders, aliases and unknown labels."""
    text = re.sub(r"\s+", " ", text).strip()
    if is_placeholder(text):
        shown = text or "empty"
        log.add_grouped(
            ("placeholder", axis, column),
            "placeholder",
            cand.line,
            axis,
            lambda n, c=column, s=shown, a=axis: (
                f"{c} is '{s}' on {rows_text(n)}: read as an empty {a} list"
            ),
        )
        return []
    ids, unknown = taxonomy.resolve_labels(axis, text)
    if ids and _label_is_alias(text, ids, axis, taxonomy):
        log.add_grouped(
            (axis, label_key(text)),
            "alias",
            cand.line,
            axis,
            lambda n, t=text, i=ids, c=column: (
                f"{c} '{t}' read as {', '.join(i)} through the taxonomy's aliases ({rows_text(n)})"
            ),
            ids[0],
        )
    for part in unknown:
        suggestion = taxonomy[axis].suggest(part)
        hint = f"; did you mean '{suggestion}'?" if suggestion else ""
        log.add_grouped(
            ("unknown", axis, label_key(part)),
            "unknown-label",
            cand.line,
            axis,
            lambda n, p=part, h=hint, c=column, a=axis: (
                f"{c} '{p}' is not in the {a} taxonomy{h} ({rows_text(n)}; left out)"
            ),
            suggestion,
        )
    return ids


def _label_is_alias(text: str, ids: list[str], axis: str, taxonomy: Taxonomy) -> bool:
    """True unless every id is spelled as its own id or name in the text."""
    key = label_key(text)
    nodes = taxonomy[axis].nodes
    spelled = [
        label_key(nodes[i].name) in key or label_key(i.replace("-", " ")) in key for i in ids
    ]
    return not all(spelled)


def _read_tags(cand, fields, rest, section, taxonomy, log, names) -> None:
    tags: dict[str, list[str]] = {axis: [] for axis in AXES}
    for axis in AXES:
        for cell in fields.get(axis, []):
            cand.given_axes.add(axis)
            column = names.get(axis, axis)
            for node_id in read_labels(cand, axis, text_of(cell), column, taxonomy, log):
                if node_id not in tags[axis]:
                    tags[axis].append(node_id)
    unknown: list[str] = []
    for cell in fields.get("tags", []):
        for part in filter(None, (p.strip() for p in re.split(r"[,;/|\n]", text_of(cell)))):
            axis_id = _any_axis(part, taxonomy)
            if axis_id is None:
                unknown.append(part)
                continue
            cand.given_axes.add(axis_id[0])
            if axis_id[1] not in tags[axis_id[0]]:
                tags[axis_id[0]].append(axis_id[1])
    if unknown:
        _report_free_tags(cand, unknown, log, names.get("tags", "Tags"))
    # Code spans and badge images outside the title often hold tags: `SAE` ![Probing](...).
    for piece in rest:
        label = piece.text if piece.kind == "image" or piece.code else None
        if label:
            for axis in AXES:
                node_id = taxonomy[axis].resolve(label)
                if node_id and node_id not in tags[axis]:
                    tags[axis].append(node_id)
                    break
    for axis in AXES:
        if not tags[axis] and axis not in cand.given_axes and section.tags.get(axis):
            tags[axis] = list(section.tags[axis])
    cand.tags = tags


def _any_axis(label: str, taxonomy: Taxonomy) -> tuple[str, str] | None:
    for axis in AXES:
        node_id = taxonomy[axis].resolve(label)
        if node_id:
            return axis, node_id
    return None


def _report_free_tags(cand: Candidate, unknown: list[str], log: ProblemLog, column: str) -> None:
    """Keywords that name no taxonomy node: one problem per column, listing the values."""
    key = ("free-tags", column)
    values = log.group_values(key)
    values.extend(v for v in unknown if v not in values)

    def message(n: int) -> str:
        shown = ", ".join(f"'{v}'" for v in values[:6]) + (", ..." if len(values) > 6 else "")
        return (
            f"{column} values that name no taxonomy node were left out: {shown} "
            f"({len(values)} value(s) on {rows_text(n)})"
        )

    log.add_grouped(key, "unknown-label", cand.line, "tags", message)
