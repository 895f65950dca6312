"""Round trip: `export bib` then `import-bib` into an empty folder gives back the same entries.

Titles, authors and text fields are drawn with Unicode, TeX specials (& % _ # $ { } ~ ^ \\),
TeX ligature pairs (-- `` '' ?` !`) and author lists of hundreds of names; the exported file
must also parse with pybtex, an independent BibTeX parser.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import tempfile
import weakref
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pybtex.database import parse_string as pybtex_parse

from mi_atlas import links, texcodec
from mi_atlas.exporters import to_bibtex
from mi_atlas.importers.bibtex import import_bib
from mi_atlas.schema import Paper
from mi_atlas.taxonomy import AXES, load_taxonomy

TAX = load_taxonomy()
SPECIALS = [*"&%_{}$#~^\\-`'!?@\",=()<>|/", "--", "---", "``", "''", "?`", "!`", " and "]
CHARS = st.characters(
    blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"),
)
WORD = (
    st.lists(st.one_of(CHARS, st.sampled_from(SPECIALS)), min_size=1, max_size=7)
    .map(lambda parts: "".join(parts).replace(" ", ""))
    .filter(bool)
)
TEXT = st.lists(WORD, min_size=1, max_size=8).map(" ".join)
NAME = st.lists(WORD, min_size=1, max_size=4).map(" ".join)
AUTHORS = st.one_of(
    st.lists(NAME, max_size=6),
    st.lists(NAME, min_size=150, max_size=250),  # several thousand characters
)
SLUG_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@st.composite
def papers(draw) -> list[Paper]:
    count = draw(st.integers(1, 3))
    titles = draw(
        st.lists(TEXT, min_size=count, max_size=count, unique_by=links.normalise_title).filter(
            lambda ts: all(links.normalise_title(t) for t in ts)
        )
    )
    result = []
    for i, title in enumerate(titles):
        year = draw(st.integers(1950, 2026))
        data = {
            "id": f"{year}-{draw(SLUG_WORD)}-{i}",
            "title": title,
            "year": year,
            "venue": draw(st.sampled_from(sorted(TAX.venues.by_name))),
            "url": f"https://example.org/{i}/{draw(SLUG_WORD)}?q=a_b%20c~d",
            "authors": draw(AUTHORS),
            "abstract": draw(st.none() | TEXT),
            "tldr": draw(st.none() | TEXT),
            "notes": draw(st.none() | TEXT),
            "added": draw(st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1))),
        }
        if draw(st.booleans()):
            data["arxiv"] = f"{draw(st.integers(1501, 2512))}.{i}{draw(st.integers(1000, 9999))}"
        if draw(st.booleans()):
            data["doi"] = f"10.{draw(st.integers(1000, 99999))}/x.{i}-{draw(SLUG_WORD)}"
        if draw(st.booleans()):
            data["code"] = f"https://github.com/org{i}/{draw(SLUG_WORD)}"
        for axis in AXES:
            data[axis] = draw(st.lists(st.sampled_from(TAX[axis].ids), unique=True, max_size=3))
        extras = {}
        if draw(st.booleans()):
            extras["pages"] = f"{draw(st.integers(1, 99))}--{draw(st.integers(100, 999))}"
        if draw(st.booleans()):
            extras["month"] = str(draw(st.integers(1, 12)))
        if draw(st.booleans()):
            extras["publisher"] = draw(TEXT)
        if draw(st.booleans()):
            extras["editor"] = " and ".join(draw(st.lists(NAME, min_size=1, max_size=3)))
        if data.get("arxiv") and draw(st.booleans()):
            extras["primaryclass"] = draw(st.sampled_from(["cs.LG", "cs.CL", "stat.ML"]))
        data["bibtex"] = extras
        data = {k: v for k, v in data.items() if v is not None}
        result.append(Paper.model_validate(data, context={"taxonomy": TAX}))
    return result


def _comparable(paper: Paper, added_default: dt.date | None) -> dict:
    data = paper.model_dump(exclude={"provenance"})
    if added_default is not None and data["added"] == added_default:
        data["added"] = None
    return data


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(papers())
def test_export_then_import_reproduces_the_entries(originals: list[Paper]) -> None:
    text = to_bibtex(originals)
    parsed = pybtex_parse(text, "bibtex")  # an independent parser reads the file without errors
    assert list(parsed.entries) == [p.id for p in originals]
    today = dt.date(1999, 1, 1)  # an import day no generated entry has
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "export.bib"
        source.write_text(text, encoding="utf-8")
        report = import_bib(source, Path(tmp) / "papers", TAX, today=today)
    assert not report.skipped and not report.merged, report.to_json()
    assert [p.to_json() for p in report.problems] == []
    imported = list(report.new_entries.values())
    assert [p.id for p in imported] == [p.id for p in originals]
    for before, after in zip(originals, imported, strict=True):
        assert _comparable(after, today) == _comparable(before, None)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_escaped_text_decodes_to_itself(text: str) -> None:
    assert texcodec.decode(texcodec.escape(text)) == text
    assert texcodec.decode(texcodec.protect_title(text)) == text


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_text_without_tex_decodes_to_itself_without_the_decoder(text: str) -> None:
    """The importer skips pylatexenc for such text; pylatexenc agrees that nothing changes."""
    assert texcodec.needs_decoding(text) == bool(texcodec.NEEDS_DECODING.search(text))
    if not texcodec.needs_decoding(text):
        assert texcodec.collapse(texcodec.DECODER.latex_to_text(texcodec.prepare(text))) == text


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=" a\n\t\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u200bé\x00-'`!$\\{}_url", max_size=12)
)
def test_shortcut_text_helpers_equal_their_plain_definitions(text: str) -> None:
    """collapse, needs_decoding and unescape_verbatim take shortcuts on long text; they
    answer what the plain definitions answer."""
    assert texcodec.collapse(text) == " ".join(text.split())
    assert texcodec.needs_decoding(text) == bool(texcodec.NEEDS_DECODING.search(text))
    unwrapped = text.strip()
    if m := re.fullmatch(r"\\url\{(.*)\}", unwrapped):
        unwrapped = m.group(1)
    assert texcodec.unescape_verbatim(text) == re.sub(r"\\([_%&#~$])", r"\1", unwrapped)


def test_decoding_leaves_no_cycle_holding_the_callers() -> None:
    """pylatexenc keeps its end-of-text exception in a frame its traceback holds; unbroken,
    that cycle keeps every calling frame (an importer's whole parsed file) alive until the
    garbage collector runs."""

    class Held:
        pass

    def caller() -> weakref.ref:
        held = Held()
        texcodec._decode_island.cache_clear()
        assert texcodec.decode(r"M{\"u}ller and $\alpha$") == "Müller and α"
        return weakref.ref(held)

    enabled = gc.isenabled()
    gc.disable()
    try:
        assert caller()() is None  # freed by reference counting alone
    finally:
        if enabled:
            gc.enable()


# TeX as it appears in real titles, names and abstracts: accents, protected words, math,
# escapes, ligatures, citations, URLs, text macros; groups and math properly nested.
TEX_TOKENS = [
    "word", "Big", "x1", r"\&", r"\%", "%", "&", r"\"u", r"\'e", r"{\"U}", r"\alpha", "~",
    "--", "---", "``", "''", r"\textbf{bold}", r"\ss", r"{\em it}", r"\ss{}", r"\cite{k}",
    r"\url{https://a.org/~x%20y}", r"\_", r"\$", r"\{", r"\}", "@", "#", "^", "_", "é", "'",
    "`", "-", r"\v{s}", r"\c c", r"\v S", "!`", "?`", "https://e.org/a_b~c", r"\LaTeX",
    r"\textasciitilde{}", r"\textbraceleft{}", r"\\", ",", ".",
]  # fmt: skip
MATH = (
    st.lists(
        st.sampled_from(["k", "x", r"\alpha", "^2", "_1", "+", " ", "O(n^2)", r"\ell", "10"]),
        min_size=1,
        max_size=5,
    )
    .map("".join)
    .filter(str.strip)
)
FLAT = st.lists(
    st.tuples(st.sampled_from(TEX_TOKENS), st.sampled_from([" ", "", "  ", "\n"])), max_size=6
).map(lambda pairs: "".join(a + b for a, b in pairs))
TEX = st.recursive(
    FLAT,
    lambda inner: st.lists(
        st.one_of(inner, inner.map(lambda x: "{" + x + "}"), MATH.map(lambda x: "$" + x + "$")),
        max_size=4,
    ).map(" ".join),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(TEX)
def test_decoding_islands_equals_decoding_the_whole_value(value: str) -> None:
    """`decode` sends only the TeX islands of a value through pylatexenc; the result is the
    same as pylatexenc on the whole value."""
    whole = texcodec.collapse(texcodec.DECODER.latex_to_text(texcodec.prepare(value)))
    assert texcodec.decode(value) == whole
