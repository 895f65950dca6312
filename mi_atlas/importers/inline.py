"""Inline content of a list item, table cell or paragraph, as a flat run of pieces.

Markdown inline tokens (from markdown-it) and raw HTML fragments (`<a href>`, `<b>`, `<br>`,
`<img>`) both become the same `Piece`s, so the code that finds a title, a venue or a link does
not care which syntax a list used. Text inside a link belongs to the link piece; images are
kept apart, so a badge (`[![arXiv](badge.svg)](url)`) is a link with images and no text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

from markdown_it.token import Token

_TAG = re.compile(r"^<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]*)([^>]*)>$", re.DOTALL)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_STRONG_TAGS = {"b", "strong"}
_EM_TAGS = {"i", "em"}
_BREAK_TAGS = {"br", "hr"}


@dataclass
class Piece:
    """A run of text, a link (its text and the images inside it), an image, or a line break."""

    kind: str  # "text" | "link" | "image" | "break"
    text: str = ""
    href: str = ""
    strong: bool = False
    em: bool = False
    images: list[str] = field(default_factory=list)  # alt texts of images inside a link
    code: bool = False  # a `code span`: lists often write tags that way

    @property
    def image_only(self) -> bool:
        return self.kind == "link" and not self.text.strip() and bool(self.images)


class RunBuilder:
    """Collects pieces while tracking emphasis and an open link."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self._strong = 0
        self._em = 0
        self._link: Piece | None = None

    def text(self, text: str) -> None:
        if not text:
            return
        if self._link is not None:
            self._link.text += text
            return
        last = self.pieces[-1] if self.pieces else None
        style = (self._strong > 0, self._em > 0)
        if (
            last is not None
            and last.kind == "text"
            and not last.code
            and (last.strong, last.em) == style
        ):
            last.text += text
        else:
            self.pieces.append(Piece("text", text, strong=style[0], em=style[1]))

    def code(self, text: str) -> None:
        if self._link is not None:
            self._link.text += text
        else:
            self.pieces.append(Piece("text", text, code=True))

    def line_break(self) -> None:
        if self._link is not None:
            self._link.text += " "
        else:
            self.pieces.append(Piece("break"))

    def image(self, alt: str) -> None:
        if self._link is not None:
            self._link.images.append(alt)
        else:
            self.pieces.append(Piece("image", alt))

    def open_link(self, href: str) -> None:
        self.close_link()
        self._link = Piece("link", href=href, strong=self._strong > 0, em=self._em > 0)
        self.pieces.append(self._link)

    def close_link(self) -> None:
        self._link = None

    def style(self, tag: str, opening: bool) -> None:
        step = 1 if opening else -1
        if tag in _STRONG_TAGS:
            self._strong = max(0, self._strong + step)
        elif tag in _EM_TAGS:
            self._em = max(0, self._em + step)
        if self._link is not None and opening:
            # `[**Title**](url)`: the link is as emphasised as its text.
            self._link.strong |= tag in _STRONG_TAGS
            self._link.em |= tag in _EM_TAGS

    def html_tag(self, raw: str) -> None:
        """An inline HTML tag inside markdown: `<br>`, `<a href>`, `</a>`, `<b>`, `<img>`."""
        match = _TAG.match(raw.strip())
        if not match:
            return
        closing, tag, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if tag in _BREAK_TAGS:
            self.line_break()
        elif tag == "a":
            href = _attr(_HREF, attrs)
            if closing:
                self.close_link()
            elif href is not None:
                self.open_link(href)
        elif tag == "img":
            self.image(_attr(_ALT, attrs) or "")
        elif tag in _STRONG_TAGS | _EM_TAGS:
            self.style(tag, not closing)


def _attr(pattern: re.Pattern, attrs: str) -> str | None:
    match = pattern.search(attrs)
    if not match:
        return None
    return unescape(next(group for group in match.groups() if group is not None))


def pieces_from_tokens(children: list[Token] | None) -> list[Piece]:
    """Pieces of one markdown-it `inline` token's children."""
    run = RunBuilder()
    for token in children or ():
        kind = token.type
        if kind == "text":
            run.text(token.content)
        elif kind == "code_inline":
            run.code(token.content)
        elif kind in {"softbreak", "hardbreak"}:
            run.line_break()
        elif kind == "link_open":
            run.open_link(str(token.attrs.get("href", "")))
        elif kind == "link_close":
            run.close_link()
        elif kind == "image":
            run.image(token.content)
        elif kind in {"strong_open", "strong_close"}:
            run.style("strong", kind == "strong_open")
        elif kind in {"em_open", "em_close"}:
            run.style("em", kind == "em_open")
        elif kind == "html_inline":
            run.html_tag(token.content)
    return run.pieces


# --- raw HTML blocks -------------------------------------------------------------------


@dataclass
class HtmlUnit:
    """A unit of a raw HTML block that could hold a paper: a table row or a list item.

    `cells` holds a row's cells (for `<tr>`), `pieces` a list item's content; `header` is
    True for a row of `<th>` cells. `line` is 0-based within the block.
    """

    kind: str  # "row" | "item"
    line: int
    cells: list[list[Piece]] = field(default_factory=list)
    header: bool = False
    pieces: list[Piece] = field(default_factory=list)


class HtmlBlockReader(HTMLParser):
    """Reads `<tr>` rows and `<li>` items out of one raw HTML block; everything else in the
    block lands in `rest` (so a block's stray links can still be reported)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[HtmlUnit] = []
        self.rest = RunBuilder()
        self._row: HtmlUnit | None = None
        self._cell: RunBuilder | None = None
        self._item: tuple[HtmlUnit, RunBuilder] | None = None
        self._skip = 0  # inside <script>/<style>

    def _target(self) -> RunBuilder:
        if self._cell is not None:
            return self._cell
        if self._item is not None:
            return self._item[1]
        return self.rest

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        line = self.getpos()[0] - 1
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag == "tr":
            self._close_row()
            self._row = HtmlUnit("row", line, header=True)
        elif tag in {"td", "th"} and self._row is not None:
            self._close_cell()
            self._cell = RunBuilder()
            if tag == "td":
                self._row.header = False
        elif tag == "li" and self._row is None:
            self._close_item()
            self._item = (HtmlUnit("item", line), RunBuilder())
        elif tag == "a":
            self._target().open_link(values.get("href", ""))
        elif tag == "img":
            self._target().image(values.get("alt", ""))
        elif tag in _BREAK_TAGS or tag in {"p", "div"}:
            self._target().line_break()
        elif tag in _STRONG_TAGS | _EM_TAGS:
            self._target().style(tag, True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag == "a":
            self._target().close_link()
        elif tag in _STRONG_TAGS | _EM_TAGS:
            self._target().style(tag, False)
        elif tag in {"td", "th"}:
            self._close_cell()
        elif tag == "tr":
            self._close_row()
        elif tag == "li":
            self._close_item()
        elif tag in {"table", "ul", "ol"}:
            self._close_row()
            self._close_item()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._target().text(re.sub(r"\s+", " ", data))

    def _close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.cells.append(self._cell.pieces)
        self._cell = None

    def _close_row(self) -> None:
        self._close_cell()
        if self._row is not None:
            self.units.append(self._row)
        self._row = None

    def _close_item(self) -> None:
        if self._item is not None:
            unit, run = self._item
            unit.pieces = run.pieces
            self.units.append(unit)
        self._item = None

    def finish(self) -> list[HtmlUnit]:
        self.close()
        self._close_row()
        self._close_item()
        return self.units


def read_html_block(html: str) -> tuple[list[HtmlUnit], list[Piece]]:
    """The rows and list items of a raw HTML block, and the pieces outside them."""
    reader = HtmlBlockReader()
    reader.feed(html)
    units = reader.finish()
    return units, reader.rest.pieces
