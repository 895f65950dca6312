"""Finding the items of an awesome list: a markdown-it parse, walked block by block.

What is an item (a candidate paper entry), in document order:

- every body row of a table that has a title column (found by header name: Paper, Title,
  Name...) or links in its rows; markdown tables and raw HTML `<table>` rows alike;
- a list item (bulleted or numbered, at any depth) that carries a link to a paper, or a title
  and a year; its nested bullets and extra lines are its details (authors, venue, links). A
  list item without a link whose nested items are entries is a category, not an item;
- a paragraph that starts with a title (a title-like link, an emphasised run, or a first line
  of its own) and carries a paper link: paragraph and multi-line entries.

Everything else that carries a link is not an item but is still accounted for in `ignored`,
with its line and why: a table of contents (only in-page links), badges (only image links),
news lines (starting with a date), prose sentences that merely link somewhere, code blocks
(a BibTeX citation), HTML comments and raw HTML outside tables and lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..taxonomy import AXES, Taxonomy
from .awesome_report import Ignored, ProblemLog
from .entry_fields import (
    Candidate,
    Section,
    TitleFind,
    build_candidate,
    field_of,
    find_title,
    find_venue,
    find_year,
    is_generic,
    is_news_line,
    label_key,
    labelled_split,
    split_lines,
    text_of,
)
from .inline import HtmlUnit, Piece, pieces_from_tokens, read_html_block
from .paper_links import understand_link


@dataclass(slots=True)
class Block:
    """A block of the parse, with its children: markdown-it's flat token stream made a tree
    (a lighter `SyntaxTreeNode`: the walk needs only types, lines, content and children)."""

    type: str
    token: Token
    children: list[Block] = field(default_factory=list)

    @classmethod
    def tree(cls, tokens: list[Token]) -> Block:
        root = cls("root", Token("root", "", 0))
        stack = [root]
        for token in tokens:
            if token.nesting == 1:
                node = cls(token.type.removesuffix("_open"), token)
                stack[-1].children.append(node)
                stack.append(node)
            elif token.nesting == -1:
                stack.pop()
            else:
                stack[-1].children.append(cls(token.type, token))
        return root

    @property
    def map(self) -> list[int]:
        return self.token.map or [0, 0]

    @property
    def tag(self) -> str:
        return self.token.tag

    @property
    def content(self) -> str:
        return self.token.content

    def walk(self) -> Iterator[Block]:
        yield self
        for child in self.children:
            yield from child.walk()


def markdown_parser() -> MarkdownIt:
    """CommonMark with GFM tables and strikethrough; raw HTML kept as tokens."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_YEAR_HEADING = re.compile(r"^(?:year\s*)?((?:19|20)\d\d)(?:\s*papers?)?$", re.IGNORECASE)


@dataclass
class _Heading:
    level: int
    text: str
    tags: dict[str, str]
    year: int | None


@dataclass
class Walker:
    """Walks one document's block tree and yields candidates and ignored blocks in order."""

    text: str
    taxonomy: Taxonomy
    log: ProblemLog
    lines: list[str] = field(default_factory=list)
    headings: list[_Heading] = field(default_factory=list)
    _last_table_head: tuple[int, str, str] | None = None  # (end line, header src, delimiter src)

    def __post_init__(self) -> None:
        self.lines = self.text.split("\n")
        self._md = markdown_parser()

    # --- sections ------------------------------------------------------------------------

    def section(self, categories: tuple[str, ...] = ()) -> Section:
        """The current heading path (plus list categories) and the tags and year it implies;
        the deepest heading that names a taxonomy node wins on each axis."""
        tags: dict[str, list[str]] = {}
        year = None
        for heading in self.headings:
            for axis, node_id in heading.tags.items():
                tags[axis] = [node_id]
            year = heading.year or year
        for category in categories:
            for axis, node_id in self._tags_of(category).items():
                tags[axis] = [node_id]
        path = tuple(h.text for h in self.headings) + categories
        return Section(path, tags, year)

    def _tags_of(self, text: str) -> dict[str, str]:
        found = {}
        for axis in AXES:
            node_id = self.taxonomy[axis].resolve(text)
            if node_id:
                found[axis] = node_id
        return found

    def _heading(self, node: Block) -> None:
        level = int(node.tag[1])
        text = _clean_heading(text_of(_inline_pieces(node)))
        while self.headings and self.headings[-1].level >= level:
            self.headings.pop()
        year_match = _YEAR_HEADING.match(text)
        year = int(year_match.group(1)) if year_match else None
        self.headings.append(_Heading(level, text, self._tags_of(text), year))

    # --- the walk ------------------------------------------------------------------------

    def walk(self) -> Iterator[Candidate | Ignored]:
        root = Block.tree(self._md.parse(self.text))
        yield from self._blocks(root.children, ())

    def _blocks(self, nodes, categories: tuple[str, ...], offset: int = 0) -> Iterator:
        for node in nodes:
            kind = node.type
            if kind == "heading":
                self._heading(node)
            elif kind == "table":
                yield from self._table(node, categories, offset)
            elif kind == "paragraph":
                yield from self._paragraph(node, categories, offset)
            elif kind in {"bullet_list", "ordered_list"}:
                yield from self._list(node, categories, offset)
            elif kind == "blockquote":
                yield from self._blocks(node.children, categories, offset)
            elif kind == "html_block":
                yield from self._html(node, categories, offset)
            elif kind in {"fence", "code_block"}:
                if "http://" in node.content or "https://" in node.content:
                    yield Ignored(
                        _line(node, offset),
                        "code block",
                        "a code block (such as a BibTeX citation) is not read as entries",
                    )

    # --- tables --------------------------------------------------------------------------

    def _table(self, node: Block, categories, offset: int) -> Iterator:
        head = next(c for c in node.children if c.type == "thead")
        header_row = head.children[0]
        headers = [_inline_pieces(cell) for cell in header_row.children]
        start = node.map[0] + offset
        self._last_table_head = (
            node.map[1] + offset,
            self.lines[start],
            self.lines[start + 1] if start + 1 < len(self.lines) else "",
        )
        rows = []
        body = next((c for c in node.children if c.type == "tbody"), None)
        for row in body.children if body else ():
            line = row.map[0] + offset
            cells = [_inline_pieces(cell) for cell in row.children]
            raw = self.lines[line] if line < len(self.lines) else ""
            rows.append((line + 1, cells, _raw_cells(raw)))
        yield from self._table_rows(start + 1, headers, rows, categories, "table row")

    def _table_rows(self, line: int, headers, rows, categories, where: str) -> Iterator:
        names = [text_of(h) for h in headers]
        fields = [field_of(name) for name in names]
        if "title" not in fields:
            fields = self._guess_title_column(line, names, fields, rows)
            if fields is None:
                yield Ignored(
                    line,
                    "table",
                    f"a table with no title column and no links ({len(rows)} rows) "
                    "is not a paper table",
                )
                return
        # With both "Title" and "Paper" columns, the title is in "Title"; the other holds links.
        titles = [i for i, kind in enumerate(fields) if kind == "title"]
        named = [i for i in titles if label_key(names[i]) in {"title", "paper title"}]
        for index in titles:
            if index != (named or titles)[0]:
                fields[index] = "link"
        for index, (name, kind) in enumerate(zip(names, fields, strict=True)):
            if kind is None:
                self.log.add(
                    "table",
                    line,
                    None,
                    f"column '{name or index + 1}' of the table is not read "
                    "(not a known column name)",
                )
        column_names = {kind: name for name, kind in zip(names, fields, strict=True) if kind}
        section = self.section(categories)
        for row_line, cells, raw_cells in rows:
            yield self._row(
                row_line, cells, raw_cells, fields, column_names, section, where, len(headers)
            )

    def _guess_title_column(self, line, names, fields, rows) -> list | None:
        with_links = [
            i
            for i in range(len(names))
            if any(
                i < len(cells) and any(p.kind == "link" for p in cells[i]) for _, cells, _ in rows
            )
        ]
        free = [i for i, kind in enumerate(fields) if kind is None]
        pick = free[0] if free else (with_links[0] if with_links else None)
        if pick is None or (not with_links and not any(f in {"link", "code"} for f in fields)):
            return None
        fields = list(fields)
        fields[pick] = "title"
        self.log.add(
            "table",
            line,
            None,
            "the table has no title column ('Paper', 'Title' or 'Name'); "
            f"titles are read from column '{names[pick] or pick + 1}'",
        )
        return fields

    def _row(
        self, line, cells, raw_cells, fields, column_names, section, where, width
    ) -> Candidate:
        by_field: dict[str, list[list[Piece]]] = {}
        for kind, cell in zip(fields, cells, strict=False):
            if kind and kind != "ignore":
                by_field.setdefault(kind, []).append(cell)
        rest: list[Piece] = []
        if raw_cells is not None and raw_cells != width:
            if raw_cells < width:
                message = f"has {raw_cells} cells where the header has {width}: missing cells read as empty"
            else:
                message = f"has {raw_cells} cells where the header has {width}: the extra cells are read for links"
                rest = self._extra_cells(line, width)
            self.log.add("table", line, None, f"the row {message}")
        if all(not text_of(cell) and not any(p.kind == "link" for p in cell) for cell in cells):
            cand = Candidate(line, where, section.name)
            cand.skip = "an empty row"
            return cand
        return build_candidate(
            line=line,
            where=where,
            section=section,
            fields=by_field,
            rest=rest,
            title=None,
            taxonomy=self.taxonomy,
            log=self.log,
            column_names=column_names,
        )

    def _extra_cells(self, line: int, width: int) -> list[Piece]:
        raw = self.lines[line - 1].strip().strip("|")
        cells = _split_pipes(raw)
        extra = " ".join(cells[width:])
        tokens = self._md.parseInline(extra)
        return pieces_from_tokens(tokens[0].children if tokens else [])

    # --- paragraphs ----------------------------------------------------------------------

    def _paragraph(self, node, categories, offset: int) -> Iterator:
        start = node.map[0] + offset
        repaired = self._repair_table(node, start)
        if repaired is not None:
            yield from repaired
            return
        pieces = _inline_pieces(node)
        verdict = self._classify(pieces, paragraph=True)
        if isinstance(verdict, Ignored):
            verdict.line = start + 1
            yield verdict
        elif verdict is not None and self._could_be_paper(pieces):
            yield self._entry(start + 1, "paragraph", verdict, [], categories)

    def _repair_table(self, node, start: int) -> Iterator | None:
        """A paragraph of pipe rows is a table markdown-it could not read: a delimiter row
        with the wrong number of cells, or rows cut off from their table by a blank line."""
        end = node.map[1] + start - node.map[0]
        src = self.lines[start:end]
        if not src or not all(line.lstrip().startswith("|") for line in src[:2]):
            return None
        header = src[0]
        width = len(_split_pipes(header.strip().strip("|")))
        follows_table = self._last_table_head and self._last_table_head[0] >= start - 2
        if len(src) >= 2 and _DELIMITER.match(src[1]):
            body = src[2:]
            note = (
                f"the table's delimiter row has {len(_split_pipes(src[1].strip().strip('|')))} "
                f"cells where its header has {width}: repaired"
            )
            prefix = [header, "|" + "---|" * width]
            first_body = start + 2
        elif follows_table:
            _, header, delimiter = self._last_table_head
            body = src
            prefix = [header, delimiter]
            first_body = start
            note = "table rows after a blank line: read with the columns of the table above"
        elif len(src) >= 2:
            body = src[1:]
            prefix = [header, "|" + "---|" * width]
            first_body = start + 1
            note = "the table has no delimiter row (|---|) under its header: repaired"
        else:
            return None
        self.log.add("table", start + 1, None, note)
        snippet = "\n".join(prefix + body) + "\n"
        tree = Block.tree(self._md.parse(snippet))
        tables = [c for c in tree.children if c.type == "table"]
        if not tables:
            return iter([Ignored(start + 1, "table", "pipe rows that do not form a table")])
        # The snippet's body rows start at its line 2; map them back to the file.
        return self._table(tables[0], (), first_body - 2)

    # --- lists ---------------------------------------------------------------------------

    def _list(self, node, categories, offset: int) -> Iterator:
        hrefs = _all_hrefs(node)
        if hrefs and all(understand_link(h).kind == "anchor" for h in hrefs):
            yield Ignored(
                _line(node, offset),
                "table of contents",
                f"a list of {len(hrefs)} links to headings of this file",
            )
            return
        for item in node.children:
            yield from self._list_item(item, categories, offset)

    def _list_item(self, item, categories, offset: int) -> Iterator:
        line = _line(item, offset)
        paragraphs = [c for c in item.children if c.type == "paragraph"]
        nested = [c for c in item.children if c.type in {"bullet_list", "ordered_list"}]
        others = [
            c for c in item.children if c.type not in {"paragraph", "bullet_list", "ordered_list"}
        ]
        main = _inline_pieces(paragraphs[0]) if paragraphs else []
        details = [_inline_pieces(p) for p in paragraphs[1:]]
        details += [d for lst in nested for d in _detail_lines(lst)]
        verdict = self._classify(main, paragraph=False)
        if isinstance(verdict, TitleFind) and self._could_be_paper(main):
            yield self._entry(line, "list item", verdict, details, categories)
        elif (
            isinstance(verdict, TitleFind)
            and verdict.title
            and details
            and not any(self._is_entry_line(d) for d in details)
            and (
                any(self._could_be_paper(d) for d in details)
                # "- *Title*" over "- Date: June 2019" and "- Venue: NAACL": together enough.
                or self._could_be_paper(main + [p for d in details for p in [Piece("break"), *d]])
            )
        ):
            # "- **Title**" with nested detail bullets: authors, venue, links.
            yield self._entry(line, "list item", verdict, details, categories)
        else:
            if isinstance(verdict, Ignored):
                verdict.line = line
                yield verdict
            if nested:
                # A list item without a link above entries of its own is a category.
                category = _clean_heading(text_of(main, links=False)) if main else ""
                sub = categories + ((category,) if category else ())
                for lst in nested:
                    yield from self._list(lst, sub, offset)
        yield from self._blocks(others, categories, offset)

    def _is_entry_line(self, pieces: list[Piece]) -> bool:
        """A nested line that is an entry of its own (so its parent is a category)."""
        if labelled_split(pieces):
            return False
        found = find_title(pieces, self.taxonomy)
        return bool(found.title) and (found.link is not None or _emphasised_start(pieces))

    def _could_be_paper(self, pieces: list[Piece]) -> bool:
        """A link that is not in-page, or (for an entry without links) a year and either a
        venue or an emphasised title ("*Title* — Authors (2023)"): enough to identify it."""
        if any(p.kind == "link" and understand_link(p.href).kind != "anchor" for p in pieces):
            return True
        text = text_of(pieces)
        if find_year(text) is None:
            return False
        return find_venue(text, self.taxonomy) is not None or _emphasised_start(pieces)

    # --- one entry -----------------------------------------------------------------------

    def _classify(self, pieces: list[Piece], *, paragraph: bool) -> TitleFind | Ignored | None:
        """An `Ignored` (links, but not an entry), or the title found (possibly empty; the
        caller decides whether the item could be a paper), or None for empty content."""
        links = [p for p in pieces if p.kind == "link"]
        kinds = [understand_link(p.href).kind for p in links]
        text = text_of(pieces)
        if not text and not links:
            return None
        if links and all(kind == "anchor" for kind in kinds):
            return Ignored(0, "in-page links", "only links to headings of this file")
        if links and all(p.image_only for p in links) and not _title_text(text):
            return Ignored(0, "badges", "only badge images with links, no title")
        if is_news_line(text):
            return Ignored(0, "news", "a dated news line, not an entry") if links else None
        found = find_title(pieces, self.taxonomy)
        if links and _is_prose(pieces, found):
            return Ignored(0, "prose", "a sentence that links somewhere, not a paper entry")
        lines = split_lines(pieces)
        if (
            paragraph
            and found.title
            and not (found.link or _emphasised_start(pieces) or len(lines) > 1)
            and not _only_generic_links(lines[0] if lines else [])
        ):
            if links:
                return Ignored(0, "prose", "a paragraph that links somewhere, not a paper entry")
            return None
        return found

    def _entry(self, line, where, found: TitleFind, details, categories) -> Candidate:
        """Build the candidate: labelled lines ("Venue: ...") become fields, the rest is
        free text read for authors, venue, year and links."""
        fields: dict[str, list[list[Piece]]] = {}
        rest: list[Piece] = []
        for text_line in split_lines(found.rest) + [ln for d in details for ln in split_lines(d)]:
            labelled = labelled_split(text_line)
            if labelled:
                fields.setdefault(labelled[0], []).append(labelled[1])
                continue
            if rest:
                rest.append(Piece("break"))
            rest.extend(text_line)
        return build_candidate(
            line=line,
            where=where,
            section=self.section(categories),
            fields=fields,
            rest=rest,
            title=found,
            taxonomy=self.taxonomy,
            log=self.log,
        )

    # --- raw HTML ------------------------------------------------------------------------

    def _html(self, node, categories, offset: int) -> Iterator:
        line = _line(node, offset)
        content = node.content
        if content.lstrip().startswith("<!--"):
            if "http://" in content or "https://" in content:
                yield Ignored(line, "HTML comment", "commented-out content is not read")
            return
        units, rest = read_html_block(content)
        rows = [u for u in units if u.kind == "row"]
        items = [u for u in units if u.kind == "item"]
        if rows:
            yield from self._html_table(line, rows, categories)
        for unit in items:
            verdict = self._classify(unit.pieces, paragraph=False)
            if isinstance(verdict, TitleFind) and self._could_be_paper(unit.pieces):
                yield self._entry(line + unit.line, "HTML list item", verdict, [], categories)
            elif isinstance(verdict, Ignored):
                verdict.line = line + unit.line
                yield verdict
        if any(
            p.kind == "link" and understand_link(p.href).kind in {"paper", "code"} for p in rest
        ):
            yield Ignored(
                line,
                "raw HTML",
                "links in raw HTML outside <table> rows and <li> items are not read",
            )

    def _html_table(self, line: int, rows: list[HtmlUnit], categories) -> Iterator:
        if rows[0].header or not any(p.kind == "link" for c in rows[0].cells for p in c):
            headers, body = rows[0].cells, rows[1:]
        else:
            headers, body = [[Piece("text", "")] for _ in rows[0].cells], rows
        table_rows = [(line + unit.line, unit.cells, None) for unit in body]
        yield from self._table_rows(line, headers, table_rows, categories, "HTML table row")


# --- helpers ----------------------------------------------------------------------------


def _line(node: Block, offset: int) -> int:
    return node.map[0] + offset + 1


def _inline_pieces(node: Block) -> list[Piece]:
    """The pieces of a paragraph, heading or table cell (its single inline child)."""
    for child in node.children:
        if child.type == "inline":
            return pieces_from_tokens(child.token.children)
    return []


def _clean_heading(text: str) -> str:
    """'📑 Paper List' -> 'Paper List'; '1. Improve Alignment' -> 'Improve Alignment'."""
    text = re.sub(r"\s*\(\s*\d+\s*(?:papers?)?\s*\)\s*$", "", text.strip(), flags=re.I)
    cleaned = re.sub(r"^[\W\d_]+(?=[^\W\d_])", "", text)
    return cleaned.strip() if cleaned.strip() else text.strip()


def _split_pipes(raw: str) -> list[str]:
    """Split a table line on unescaped pipes outside code spans."""
    if "`" not in raw and "\\" not in raw:
        return raw.split("|")
    cells, current, in_code, escaped = [], "", False, False
    for ch in raw:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == "`":
            in_code = not in_code
            current += ch
        elif ch == "|" and not in_code:
            cells.append(current)
            current = ""
        else:
            current += ch
    cells.append(current)
    return cells


def _raw_cells(raw: str) -> int | None:
    stripped = raw.strip()
    if not stripped:
        return None
    inner = stripped[1:] if stripped.startswith("|") else stripped
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return len(_split_pipes(inner))


def _all_hrefs(node: Block) -> list[str]:
    hrefs = []
    for child in node.walk():
        if child.type == "inline":
            hrefs.extend(
                p.href for p in pieces_from_tokens(child.token.children) if p.kind == "link"
            )
    return hrefs


def _detail_lines(node: Block) -> list[list[Piece]]:
    """Every paragraph under a nested list, flattened: one detail line each."""
    lines = []
    for child in node.walk():
        if child.type == "paragraph":
            lines.append(_inline_pieces(child))
    return lines


def _title_text(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


def _emphasised_start(pieces: list[Piece]) -> bool:
    for piece in pieces:
        if piece.kind == "text" and not piece.text.strip():
            continue
        return piece.kind == "text" and (piece.strong or piece.em)
    return False


def _only_generic_links(pieces: list[Piece]) -> bool:
    links = [p for p in pieces if p.kind == "link"]
    return bool(links) and all(p.image_only or is_generic(p.text) for p in links)


def _is_prose(pieces: list[Piece], found: TitleFind) -> bool:
    """'Check it out [here](url)' and 'please cite [our paper](url)': a link inside a
    sentence. The link is 'here'-like, or a lowercase word runs straight into a link that
    is not a generic label."""
    if found.link is not None:
        return False
    for index, piece in enumerate(pieces):
        if piece.kind != "link":
            continue
        if label_key(piece.text) in {"here", "this", "this link", "link here", "click here"}:
            return True
        before = pieces[index - 1] if index else None
        if (
            before is not None
            and before.kind == "text"
            and re.search(r"[a-z]\s*$", before.text)
            and not (piece.image_only or is_generic(piece.text))
        ):
            return True
    return False
