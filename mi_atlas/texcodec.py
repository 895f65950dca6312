"""BibTeX field text and plain Unicode text: the one codec the importer and exporter share.

Entries hold plain Unicode (a title is never markup). `escape` writes such text so that any
BibTeX reader keeps it intact (TeX specials escaped, braces always balanced, ligature pairs
such as `--` broken up); `DECODER` is the pylatexenc decoder that bibtexparser's
`LatexDecodingMiddleware` uses on import, extended with the text macros `escape` emits, so
`decode(escape(text)) == text` for any single-spaced text.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pylatexenc.latex2text as latex2text
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec
from pylatexenc.latexwalker import (
    LatexWalker,
    LatexWalkerEndOfStream,
    get_default_latex_context_db,
)

# Text-mode macros that `escape` emits; pylatexenc's defaults lack some or map `^` to a
# modifier letter, so they are declared here with the plain characters they stand for.
_TEXT_MACROS = {
    "textbraceleft": "{",
    "textbraceright": "}",
    "textasciicircum": "^",
    "textasciitilde": "~",
    "textbackslash": "\\",
    "textquotedbl": '"',
    "textless": "<",
    "textgreater": ">",
    "textunderscore": "_",
    "textbar": "|",
}
_CITES = ("cite", "citep", "citet", "citealp", "citeauthor", "citeyear", "parencite", "textcite")
_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
}
_SPECIAL = re.compile(r"[\\{}~^&%$#_]")
# TeX ligatures that pylatexenc (like TeX) turns into other characters: `--` en dash,
# ``` `` ``` and `''` quotes, `!`` and `?`` inverted marks. An empty group breaks them.
_LIGATURE = re.compile(r"(?<=-)(?=-)|(?<=`)(?=`)|(?<=')(?=')|(?<=[!?])(?=`)")
# What makes decoding necessary at all; text without these decodes to itself (checked by a
# property test; a bare % or & is text, see `prepare`), so most values skip pylatexenc.
NEEDS_DECODING = re.compile(r"[\\{}$~]|--|``|''|[!?]`")
_WORD = re.compile(r"\S+")
_BRACE = re.compile(r"(?<!\\)[{}]")
_DOLLAR = re.compile(r"(?<!\\)\$")
_TRAILING_MACRO = re.compile(r"\\(?:[^\W\d_]+|['\"^~.=`])$")  # waits for an argument
_SIMPLE_ESCAPE = re.compile(r"(?<!\\)\\([%&_#$])")
_HARD_TEX = re.compile(r"[\\$~]|--|``|''|[!?]`")
_URL = re.compile(r"\\url\{([^{}]*)\}|(https?://[^\s{}\"<>]+)")
_URL_ESCAPE = re.compile(r"\\([_%&#~$])")
_URL_MACRO = re.compile(r"\\url\{(.*)\}")


def _citation(node, l2tobj) -> str:
    args = node.nodeargd.argnlist if node.nodeargd and node.nodeargd.argnlist else []
    keys = args[-1] if args else None
    return f"[{l2tobj.nodelist_to_text([keys])}]" if keys is not None else ""


def _decoder() -> LatexNodes2Text:
    db = latex2text.get_default_latex_context_db()
    macros = [MacroTextSpec("url", simplify_repl="%s")]
    macros += [MacroTextSpec(name, simplify_repl=text) for name, text in _TEXT_MACROS.items()]
    # A citation inside an abstract keeps its key instead of pylatexenc's "<cit.>".
    macros += [MacroTextSpec(name, simplify_repl=_citation) for name in _CITES]
    db.add_context_category("mi-atlas", prepend=True, macros=macros)
    # Math becomes text ($\alpha$ -> α): titles and abstracts are plain text in the index.
    return LatexNodes2Text(latex_context=db, keep_braced_groups=False, math_mode="text")


DECODER = _decoder()
# The walker's own context, built once (pylatexenc builds it anew for every string otherwise).
_WALKER_CONTEXT = get_default_latex_context_db()


def collapse(text: str) -> str:
    """Runs of whitespace (newlines, ties decoded to no-break spaces) become one space."""
    # Most values are one line already. For ASCII text (`isascii` reads a flag) the
    # whitespace `split` knows is the ten characters below, each found at memchr speed;
    # otherwise `isprintable` is False for every whitespace character but the ASCII space.
    if text[:1] == " " or text[-1:] == " " or "  " in text:
        return " ".join(text.split())
    if text.isascii():
        if not (
            "\n" in text
            or "\t" in text
            or "\r" in text
            or "\x0b" in text
            or "\x0c" in text
            or "\x1c" in text
            or "\x1d" in text
            or "\x1e" in text
            or "\x1f" in text
        ):
            return text
    elif text.isprintable():
        return text
    return " ".join(text.split())


def escape(text: str) -> str:
    """Plain text as a BibTeX field value (without the outer braces)."""
    text = _SPECIAL.sub(lambda m: _ESCAPES[m.group()], text)
    return _LIGATURE.sub("{}", text)


def protect_title(title: str) -> str:
    """Escape a title and brace the words whose capitals a style must not lower-case
    (acronyms and camel case: `{LLMs}`, `{GPT-2}`, `{TransformerLens}`)."""
    words = []
    for word in title.split(" "):
        escaped = escape(word)
        capital_inside = any(ch.isupper() for ch in word[1:])
        words.append(f"{{{escaped}}}" if capital_inside else escaped)
    return " ".join(words)


_TEX_MARKS = ("\\", "{", "}", "$", "~", "--", "``", "''", "!`", "?`")


def needs_decoding(value: str) -> bool:
    """`NEEDS_DECODING.search(value)`, as substring tests (several times faster on long text;
    a pair is looked for only where its second character occurs, found at memchr speed)."""
    return (
        "\\" in value
        or "{" in value
        or "}" in value
        or "$" in value
        or "~" in value
        or ("-" in value and "--" in value)
        or ("`" in value and ("``" in value or "!`" in value or "?`" in value))
        or ("'" in value and "''" in value)
    )


def _next_mark(text: str, start: int, marks: list[str]) -> int:
    """Where the next of `marks` is at or after `start` (-1: none), by C-speed `str.find`s:
    Python's regex engine costs about 20 ns per character of a long abstract."""
    best = -1
    for mark in marks:
        at = text.find(mark, start, best if best >= 0 else len(text))
        if at >= 0:
            best = at
    return best


def decode(value: str) -> str:
    """Raw BibTeX field text (braces removed) as plain, single-spaced Unicode text.

    The same text as `collapse(DECODER.latex_to_text(prepare(value)))` (a property test keeps
    it so), but only the "islands" of TeX in it go through pylatexenc, which spends about a
    millisecond per hundred characters: plain text is copied, and islands that are only
    braces and escaped specials (`{GPT-2}`, `50\\%`) are resolved without it. An island
    starts at the word holding a TeX mark and takes the next words until its braces balance,
    its math closes and no macro waits for an argument.
    """
    if not needs_decoding(value):
        return collapse(value)
    text = prepare(value)
    # The marks the text holds at all (a pair only where its last character occurs).
    marks = [mark for mark in _TEX_MARKS if mark[-1] in text and mark in text]
    out: list[str] = []
    pos = 0
    while (mark := _next_mark(text, pos, marks)) >= 0:
        start = mark
        while start > pos and not text[start - 1].isspace():
            start -= 1  # back to the start of the word holding the mark
        out.append(text[pos:start])
        island: list[str] = []
        depth = dollars = 0
        end = len(text)
        for word in _WORD.finditer(text, start):
            island.append(word.group())
            for m in _BRACE.finditer(word.group()):
                depth += 1 if m.group() == "{" else -1
            dollars += len(_DOLLAR.findall(word.group()))
            if depth == 0 and dollars % 2 == 0 and not _TRAILING_MACRO.search(word.group()):
                end = word.end()
                break
        out.append(_decode_island(" ".join(island)))
        pos = end
    out.append(text[pos:])
    return collapse(" ".join(out))


@lru_cache(maxsize=1 << 16)
def _decode_island(text: str) -> str:
    simple = _SIMPLE_ESCAPE.sub("", text)
    if not _HARD_TEX.search(simple):
        # Only braces and escaped specials: what pylatexenc would do, without it.
        return _SIMPLE_ESCAPE.sub(r"\1", text.replace("{", "").replace("}", ""))
    walker = _Walker(text, latex_context=_WALKER_CONTEXT, tolerant_parsing=True)
    try:
        nodes, _, _ = walker.get_latex_nodes()
    finally:
        walker.release()
    return DECODER.nodelist_to_text(nodes)


class _Walker(LatexWalker):
    """pylatexenc's walker, minus the reference cycle each parse leaves behind: it reads the
    end of the text as a `LatexWalkerEndOfStream` that it keeps in a local of the frame its
    traceback holds. That cycle keeps every calling frame alive (an importer's whole parsed
    file with them) until the garbage collector finds it; dropping the tracebacks afterwards
    lets reference counting free them at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._ends: list[LatexWalkerEndOfStream] = []

    def get_token(self, *args, **kwargs):
        try:
            return super().get_token(*args, **kwargs)
        except LatexWalkerEndOfStream as end:
            self._ends.append(end)
            raise

    def release(self) -> None:
        for end in self._ends:
            end.__traceback__ = None
        self._ends.clear()


def _protect_url(match: re.Match) -> str:
    url = _URL_ESCAPE.sub(r"\1", match.group(1) or match.group(2))
    return escape(url)


def prepare(value: str) -> str:
    """Make raw field text safe for the LaTeX decoder without changing what it means.

    BibTeX values are not LaTeX documents: a bare `%` ("50% of") is text, not a comment, and
    a bare `&` is text, not an alignment tab; URLs must survive literally (`~`, `%`, `_`).
    """
    if "http" in value or "\\url" in value:
        value = _URL.sub(_protect_url, value)
    for char in "%&":
        if char in value:
            value = _escape_bare(value, char)
    return value


def _escape_bare(value: str, char: str) -> str:
    """Backslash each `char` that no odd run of backslashes escapes (str ops, not a regex)."""
    pieces = value.split(char)
    out = [pieces[0]]
    for before, piece in zip(pieces, pieces[1:], strict=False):
        run = len(before) - len(before.rstrip("\\"))
        out.append(char if run % 2 else "\\" + char)
        out.append(piece)
    return "".join(out)


def url_candidates(raw: str) -> list[str]:
    """The web addresses in a raw (undecoded) value such as `note` or `howpublished`."""
    return [
        _URL_ESCAPE.sub(r"\1", m.group(1) or m.group(2)).rstrip(".,;)") for m in _URL.finditer(raw)
    ]


def unescape_verbatim(value: str) -> str:
    r"""A verbatim value (url, doi, eprint) as written by people who escape TeX specials:
    `\url{...}` unwrapped, `\_` -> `_`."""
    value = value.strip()
    if "\\" not in value:
        return value  # (most links: nothing to unwrap or unescape)
    if value.startswith("\\url") and (m := _URL_MACRO.fullmatch(value)):
        value = m.group(1)
    return _URL_ESCAPE.sub(r"\1", value)
