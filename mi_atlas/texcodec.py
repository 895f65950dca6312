"""BibTeX field text and plain Unicode text: the one codec the importer and exporter share.

Entries hold plain Unicode (a title is never markup). `escape` writes such text so that any
BibTeX reader keeps it intact (TeX specials escaped, braces always balanced, ligature pairs
such as `--` broken up); `DECODER` is the pylatexenc decoder that bibtexparser's
`LatexDecodingMiddleware` uses on import, extended with the text macros `escape` emits, so
`decode(escape(text)) == text` for any single-spaced text.
"""

from __future__ import annotations

import re

import pylatexenc.latex2text as latex2text
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec

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
# property test), so the importer skips pylatexenc for most values.
NEEDS_DECODING = re.compile(r"[\\{}$%&~]|--|``|''|[!?]`")
_BARE = re.compile(r"(?<!\\)([%&])")
_URL = re.compile(r"\\url\{([^{}]*)\}|(https?://[^\s{}\"<>]+)")
_URL_ESCAPE = re.compile(r"\\([_%&#~$])")


def _decoder() -> LatexNodes2Text:
    db = latex2text.get_default_latex_context_db()
    macros = [MacroTextSpec("url", simplify_repl="%s")]
    macros += [MacroTextSpec(name, simplify_repl=text) for name, text in _TEXT_MACROS.items()]
    # A citation inside an abstract keeps its key instead of pylatexenc's "<cit.>".
    macros += [MacroTextSpec(name, simplify_repl="[%(4)s]") for name in _CITES]
    db.add_context_category("mi-atlas", prepend=True, macros=macros)
    # Math becomes text ($\alpha$ -> α): titles and abstracts are plain text in the index.
    return LatexNodes2Text(latex_context=db, keep_braced_groups=False, math_mode="text")


DECODER = _decoder()


def collapse(text: str) -> str:
    """Runs of whitespace (newlines, ties decoded to no-break spaces) become one space."""
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


def decode(value: str) -> str:
    """Raw BibTeX field text (braces removed) as plain, single-spaced Unicode text."""
    if not NEEDS_DECODING.search(value):
        return collapse(value)
    return collapse(DECODER.latex_to_text(prepare(value)))


def _protect_url(match: re.Match) -> str:
    url = _URL_ESCAPE.sub(r"\1", match.group(1) or match.group(2))
    return escape(url)


def prepare(value: str) -> str:
    """Make raw field text safe for the LaTeX decoder without changing what it means.

    BibTeX values are not LaTeX documents: a bare `%` ("50% of") is text, not a comment, and
    a bare `&` is text, not an alignment tab; URLs must survive literally (`~`, `%`, `_`).
    """
    value = _URL.sub(_protect_url, value)
    return _BARE.sub(r"\\\1", value)


def url_candidates(raw: str) -> list[str]:
    """The web addresses in a raw (undecoded) value such as `note` or `howpublished`."""
    return [
        _URL_ESCAPE.sub(r"\1", m.group(1) or m.group(2)).rstrip(".,;)") for m in _URL.finditer(raw)
    ]


def unescape_verbatim(value: str) -> str:
    r"""A verbatim value (url, doi, eprint) as written by people who escape TeX specials:
    `\url{...}` unwrapped, `\_` -> `_`."""
    value = value.strip()
    if m := re.fullmatch(r"\\url\{(.*)\}", value):
        value = m.group(1)
    return _URL_ESCAPE.sub(r"\1", value)
