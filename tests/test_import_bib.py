"""`import-bib` on real-world .bib quirks: one fixture per quirk in tests/fixtures/bib/.

Each test asserts what was created, merged and skipped (with source lines) and what was
reported, so a quirk can never turn into a crash or a silent drop.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path

import bibtexparser
import pytest
from bibtexparser.middlewares import (
    MonthIntMiddleware,
    RemoveEnclosingMiddleware,
    ResolveStringReferencesMiddleware,
    SeparateCoAuthors,
    SplitNameParts,
)
from bibtexparser.middlewares.names import (
    parse_single_name_into_parts,
    split_multiple_persons_names,
)
from click.testing import CliRunner
from helpers import REPO, valid_entry, write_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mi_atlas import texcodec
from mi_atlas.cli import cli
from mi_atlas.importers import bibread, bibrepair
from mi_atlas.importers.bibread import (
    BOOKKEEPING,
    BOOKKEEPING_PREFIXES,
    NAME_FIELDS,
    VERBATIM,
    parse_bib,
    simple_name_parts,
    split_names,
)
from mi_atlas.importers.bibtex import IndexNotClean, import_bib
from mi_atlas.yamlio import load_text

FIXTURES = Path(__file__).parent / "fixtures" / "bib"
TODAY = dt.date(2025, 1, 2)


def run(name: str, papers: Path | None = None, **options):
    return import_bib(
        FIXTURES / name, papers or Path("/nonexistent/papers"), today=TODAY, **options
    )


def created(report) -> list[tuple[int, str]]:
    return [(item.line, item.id) for item in report.created]


def problems(report) -> list[tuple[int | None, str | None, str]]:
    return [(p.line, p.field, p.message) for p in report.problems]


def entry(report, pid: str):
    return report.new_entries[pid]


def test_every_fixture_accounts_for_every_entry() -> None:
    """Each `@type{` block of every fixture is created, merged or skipped, once."""
    for path in sorted(FIXTURES.glob("*.bib")):
        report = import_bib(path, Path("/nonexistent/papers"), today=TODAY)
        text = path.read_bytes().decode("utf-8", errors="replace")
        starts = sorted(
            text.count("\n", 0, i) + 1
            for i in _entry_starts(text)
            if not text[text.rfind("\n", 0, i) + 1 : i].lstrip().startswith("%")
        )
        lines = sorted(item.line for item in (*report.created, *report.merged, *report.skipped))
        assert lines == starts, path.name
        assert report.items == len(report.created) + len(report.merged) + len(report.skipped)


def _entry_starts(text: str):

    for m in re.finditer(r"@(\w+)\s*[{(]", text):
        if m.group(1).lower() not in {"comment", "string", "preamble"}:
            yield m.start()


def test_jabref_export_drops_bookkeeping_fields_and_reads_meta_comments() -> None:
    report = run("jabref.bib")
    assert created(report) == [
        (5, "2022-meng-locating-editing-factual-associations-gpt"),
        (20, "2021-geva-transformer-feed-forward-layers-key"),
    ]
    assert problems(report) == [
        (5, None, "left out personal bookkeeping fields: file, groups, owner, ranking, timestamp"),
        (20, None, "left out personal bookkeeping fields: creationdate, readstatus, comment-ana"),
    ]
    meng = entry(report, "2022-meng-locating-editing-factual-associations-gpt")
    assert (meng.venue, meng.arxiv, meng.title) == (
        "NeurIPS",
        "2202.05262",
        "Locating and Editing Factual Associations in GPT",
    )
    assert meng.bibtex == {
        "booktitle": "Advances in Neural Information Processing Systems",
        "volume": "35",
        "pages": "17359--17372",
    }
    geva = entry(report, "2021-geva-transformer-feed-forward-layers-key")
    assert (geva.venue, geva.doi) == ("EMNLP", "10.18653/v1/2021.emnlp-main.446")


def test_zotero_export_arxiv_doi_month_macro_and_code_link() -> None:
    report = run("zotero.bib")
    arditi = entry(report, "2024-arditi-refusal-language-models-mediated-single")
    assert arditi.venue == "arXiv"  # from `publisher = {arXiv}`
    assert (arditi.arxiv, arditi.doi) == ("2406.11717", "10.48550/arXiv.2406.11717")
    assert arditi.code == "https://github.com/andyrdt/refusal_direction"
    assert arditi.authors[0] == "Andy Arditi" and len(arditi.authors) == 7
    assert arditi.bibtex == {"publisher": "arXiv", "month": "6", "note": "arXiv:2406.11717 [cs]"}
    assert arditi.title == "Refusal in Language Models Is Mediated by a Single Direction"
    wang = entry(report, "2023-wang-interpretability-wild-circuit-indirect-object")
    assert (wang.venue, wang.openreview) == ("ICLR", "NpsVSN6o4ul")
    assert arditi.added == TODAY
    assert [p.model_dump() for p in arditi.provenance] == [
        {"source": "zotero.bib", "line": 2, "section": None}
    ]


def test_paperpile_export_quoted_multiline_values_and_uppercase_types() -> None:
    report = run("paperpile.bib")
    turner = entry(report, "2023-turner-steering-language-models-activation-engineering")
    assert turner.venue == "arXiv" and turner.arxiv == "2308.10248"
    assert turner.bibtex == {"journal": "arXiv [cs.CL]", "month": "8", "primaryclass": "cs.CL"}
    assert turner.abstract.endswith("(like toxicity reduction).")
    assert turner.authors[-1] == "Monte MacDiarmid" and len(turner.authors) == 7
    li = entry(report, "2023-li-inference-time-intervention-eliciting-truthful")
    assert (
        li.title == "Inference-Time Intervention: Eliciting Truthful Answers from a Language Model"
    )
    assert li.venue == "NeurIPS" and "Fernanda Viégas" in li.authors


def test_crlf_line_endings_keep_lines_and_values_clean() -> None:
    assert b"\r\n" in (FIXTURES / "crlf.bib").read_bytes()
    report = run("crlf.bib")
    assert created(report) == [
        (2, "2023-conmy-automated-circuit-discovery-mechanistic-interpretability"),
        (13, "2023-nanda-progress-measures-grokking-mechanistic-interpretability"),
    ]
    conmy = entry(report, created(report)[0][1])
    assert conmy.title == "Towards Automated Circuit Discovery for Mechanistic Interpretability"
    assert conmy.authors[-1] == "Adrià Garriga-Alonso"
    assert not any("\r" in a for a in conmy.authors)


def test_lone_carriage_returns_count_as_line_breaks() -> None:
    text = (FIXTURES / "no_trailing_newline.bib").read_text(encoding="utf-8")
    bib = parse_bib("% old Mac line endings\r" + text.replace("\n", "\r"))
    assert [(r.line, r.key) for r in bib.records] == [(2, "marks2024sparse")]
    assert bib.records[0].names["author"][0] == "Samuel Marks"


def test_percent_comment_lines_between_and_inside_entries() -> None:
    report = run("comments.bib")
    assert created(report) == [(4, "2021-geva-transformer-feed-forward-layers-key")]
    assert problems(report) == [
        (6, None, "a commented-out field (a line starting with %) was ignored"),
        (13, None, "an entry commented out with % was ignored"),
    ]
    geva = entry(report, "2021-geva-transformer-feed-forward-layers-key")
    assert geva.authors == ["Mor Geva", "Roei Schuster", "Jonathan Berant", "Omer Levy"]
    assert geva.venue == "EMNLP"


def test_capitalised_entry_types_and_field_names() -> None:
    report = run("capitals.bib")
    assert created(report) == [
        (1, "2023-gurnee-finding-neurons-haystack-case-studies"),
        (9, "2022-dai-knowledge-neurons-pretrained-transformers"),
    ]
    gurnee = entry(report, "2023-gurnee-finding-neurons-haystack-case-studies")
    assert (gurnee.venue, gurnee.openreview) == ("TMLR", "JYs1R9IMJr")
    dai = entry(report, "2022-dai-knowledge-neurons-pretrained-transformers")
    assert dai.title == "Knowledge Neurons in Pretrained Transformers"  # the first of the two
    assert (dai.venue, dai.doi) == ("ACL", "10.18653/v1/2022.acl-long.581")
    assert problems(report) == [
        (11, "title", "the field 'title' appears twice (ignoring case); kept the first")
    ]


def test_quoted_values_string_macros_and_concatenation() -> None:
    report = run("quoted.bib")
    stolfo = entry(report, "2023-stolfo-mechanistic-interpretation-arithmetic-reasoning-language")
    assert stolfo.venue == "EMNLP" and stolfo.acl == "2023.emnlp-main.435"
    rimsky = entry(report, "2024-rimsky-steering-llama-2-contrastive-activation")
    assert rimsky.venue == "ACL"
    assert rimsky.bibtex["booktitle"] == (
        "Proceedings of the 62nd Annual Meeting of the Association for Computational "
        "Linguistics (Volume 1: Long Papers)"
    )
    assert rimsky.bibtex["note"] == "Quoted value with braces and a comma, inside"
    assert problems(report) == []


def test_bare_month_macros_and_and_others() -> None:
    report = run("months.bib")
    months = {pid: p.bibtex.get("month") for pid, p in report.new_entries.items()}
    assert months == {
        "2020-vig-investigating-gender-bias-language-models": "12",
        "2021-geiger-causal-abstractions-neural-networks": "12",
        "2023-belrose-eliciting-latent-predictions-transformers-tuned": "3",
        "2023-zou-representation-engineering-top-down-approach": "October~2",
    }
    assert entry(report, "2020-vig-investigating-gender-bias-language-models").venue == "NeurIPS"
    zou = entry(report, "2023-zou-representation-engineering-top-down-approach")
    assert zou.authors == ["Andy Zou"]  # "and others" is et al., not a person


def test_duplicate_citation_key_same_paper_merges_other_paper_is_created() -> None:
    report = run("duplicate_key.bib")
    assert created(report) == [
        (1, "2023-hanna-gpt-2-compute-greater-than"),
        (19, "2023-other-different-paper-that-reused-key"),
    ]
    assert [(i.line, i.id, i.reason) for i in report.merged] == [
        (
            10,
            "2023-hanna-gpt-2-compute-greater-than",
            "same arXiv id as line 1; filled abstract, provenance line 10",
        )
    ]
    assert problems(report) == [
        (10, None, "the citation key 'hanna2023' is also used at line 1"),
        (19, None, "the citation key 'hanna2023' is also used at line 1"),
    ]
    hanna = entry(report, "2023-hanna-gpt-2-compute-greater-than")
    assert hanna.venue == "NeurIPS" and hanna.abstract.startswith("Pre-trained language models")


def test_missing_commas_after_key_and_fields_are_repaired_and_reported() -> None:
    report = run("missing_comma.bib")
    assert created(report) == [
        (1, "2019-tenney-bert-rediscovers-classical-nlp-pipeline"),
        (9, "2019-hewitt-structural-probe-finding-syntax-word"),
    ]
    assert problems(report) == [
        (
            1,
            None,
            "missing comma after the citation key 'tenney2019bert'; read as if it were there",
        ),
        (
            10,
            "title",
            "missing comma after this field's value; read the next line as a field of its own",
        ),
        (
            13,
            "year",
            "missing comma after this field's value; read the next line as a field of its own",
        ),
        (14, None, "two commas in a row; ignored the second"),
    ]
    hewitt = entry(report, "2019-hewitt-structural-probe-finding-syntax-word")
    assert hewitt.title == "A Structural Probe for Finding Syntax in Word Representations"
    assert (hewitt.venue, hewitt.year, hewitt.doi) == ("NAACL", 2019, "10.18653/v1/N19-1419")
    assert hewitt.bibtex["pages"] == "4129--4138"
    tenney = entry(report, "2019-tenney-bert-rediscovers-classical-nlp-pipeline")
    assert tenney.title == "BERT Rediscovers the Classical NLP Pipeline" and tenney.venue == "ACL"


def test_entry_not_closed_before_the_next_entry() -> None:
    report = run("unclosed_entry.bib")
    assert created(report) == [
        (1, "2023-nanda-emergent-linear-representations-world-models"),
        (8, "2023-li-emergent-world-representations-exploring-sequence"),
    ]
    assert problems(report) == [
        (1, None, "the entry is not closed with '}' before the next entry; read as if it were")
    ]
    assert entry(report, created(report)[0][1]).arxiv == "2309.00941"


def test_duplicate_field_keeps_the_first_as_bibtex_does() -> None:
    report = run("duplicate_field.bib")
    (paper,) = report.new_entries.values()
    assert paper.url == "https://aclanthology.org/2021.tacl-1.10"
    assert (paper.venue, paper.acl) == ("TACL", "2021.tacl-1.10")
    assert problems(report) == [(7, "url", "the field appears twice in the entry; kept the first")]


def run_text(tmp_path: Path, text: str):
    source = tmp_path / "refs.bib"
    source.write_text(text, encoding="utf-8")
    return import_bib(source, tmp_path / "papers", today=TODAY)


def test_key_reused_after_an_entry_with_a_duplicate_field_is_not_dropped(tmp_path: Path) -> None:
    """bibtexparser registers no key for an entry with a duplicate field; the later entry
    with that key used to vanish when the entries were put into one library."""
    report = run_text(
        tmp_path,
        "@misc{k, title = {First Paper}, title = {B}, year = 2020, url = {https://a.org/1}}\n"
        "\n"
        "@misc{k, title = {Second Paper}, year = 2021, url = {https://b.org/2}}\n",
    )
    assert created(report) == [(1, "2020-first-paper"), (3, "2021-second-paper")]
    assert problems(report) == [
        (1, "title", "the field appears twice in the entry; kept the first"),
        (3, None, "the citation key 'k' is also used at line 1"),
    ]


def test_a_string_macro_defined_twice_keeps_the_later_value(tmp_path: Path) -> None:
    report = run_text(
        tmp_path,
        "@string{venue = {Old Name}}\n"
        "@string{venue = {Journal of Machine Learning Research}}\n"
        "@article{a, title = {A Paper}, year = 2020, journal = venue, url = {https://a.org/1}}\n",
    )
    assert entry(report, "2020-paper").venue == "JMLR"
    assert problems(report) == [
        (2, None, "@string 'venue' is defined again (first at line 1); used this later definition")
    ]


def test_string_macros_defined_and_undefined() -> None:
    report = run("undefined_macro.bib")
    assert entry(report, "2023-gurnee-finding-neurons-haystack-case-studies").venue == "TMLR"
    assert problems(report) == [
        (14, "journal", "'distill' is not defined by any @string; read as the text itself")
    ]


def test_stray_closing_braces_after_and_inside_an_entry() -> None:
    report = run("stray_brace.bib")
    assert created(report) == [
        (1, "2021-ravichander-probing-probing-paradigm-probing-accuracy"),
        (9, "2023-cunningham-sparse-autoencoders-find-highly-interpretable"),
    ]
    assert problems(report) == [
        (7, None, "a stray '}' was ignored"),
        (10, None, "a stray '}' closed the entry early; ignored it and read the fields after it"),
    ]
    sae = entry(report, "2023-cunningham-sparse-autoencoders-find-highly-interpretable")
    assert sae.arxiv == "2309.08600" and len(sae.authors) == 5
    assert entry(report, created(report)[0][1]).venue == "EACL"


def test_entry_starting_right_after_the_previous_closing_brace() -> None:
    report = run("glued.bib")
    assert created(report) == [
        (1, "2022-olsson-context-learning-induction-heads"),
        (1, "2021-elhage-mathematical-framework-transformer-circuits"),
        (2, "2023-bricken-monosemanticity-decomposing-language-models-dictionary"),
        (8, "2024-templeton-scaling-monosemanticity-extracting-interpretable-features"),
    ]
    assert {p.venue for p in report.new_entries.values()} == {"Blog"}  # Transformer Circuits


def test_no_trailing_newline() -> None:
    report = run("no_trailing_newline.bib")
    assert not (FIXTURES / "no_trailing_newline.bib").read_bytes().endswith(b"\n")
    assert created(report) == [(1, "2024-marks-sparse-feature-circuits-discovering-editing")]
    assert entry(report, created(report)[0][1]).authors[-1] == "Aaron Mueller"


def test_non_ascii_citation_keys() -> None:
    report = run("nonascii_keys.bib")
    assert created(report) == [
        (1, "2024-tang-language-specific-neurons-key-multilingual"),
        (9, "2020-nostalgebraist-interpreting-gpt-logit-lens"),
    ]
    assert entry(report, "2020-nostalgebraist-interpreting-gpt-logit-lens").authors == [
        "nostalgebraist"
    ]


def test_latex_accents_case_braces_math_and_citations() -> None:
    report = run("latex.bib")
    paper = entry(report, "2023-garriga-francais-et-ubersetzung-llms-naively")
    assert paper.title == (
        "Français et Übersetzung: LLMs Naïvely Patch k-Sparse GPT-2 Circuits – a Case Study & More"
    )
    assert paper.authors == [
        "Adrià Garriga-Alonso",
        "Jörg Müller",
        "Bernhard Schölkopf",
        "Jan Šedivý",
        "Paul Erdős",
        "Søren Østergaard",
        "Anna Straße",
    ]
    # A bare % is text in BibTeX, not a LaTeX comment that would cut the abstract.
    assert (
        paper.abstract == "We improve accuracy by 50% on α-tasks using the ROME method [meng2022]."
    )


def test_unicode_punctuation_is_kept() -> None:
    report = run("unicode_punctuation.bib")
    paper = entry(report, "2024-kaiser-steering-isnt-enough-editing-knowledge")
    assert (
        paper.title == "“Steering” Isn’t Enough — Editing Knowledge… in 10 Languages – Überraschend"
    )
    assert paper.authors == ["Łukasz Kaiser", "Zoë Smith", "José Núñez"]


def test_author_list_of_several_thousand_characters() -> None:
    text = (FIXTURES / "long_authors.bib").read_text(encoding="utf-8")
    assert len(text) > 7000
    report = run("long_authors.bib")
    (paper,) = report.new_entries.values()
    assert len(paper.authors) == 320 and paper.venue == "TMLR"
    assert paper.authors[0] == "Eun-ji A. Kowalski"


def test_corporate_authors_in_double_braces_stay_whole() -> None:
    report = run("corporate.bib")
    authors = [p.authors for p in report.new_entries.values()]
    assert authors == [
        ["Google DeepMind", "Tom Lieberum", "Senthooran Rajamanoharan"],
        ["Anthropic Interpretability Team"],
        ["Simon and Schuster", "EleutherAI"],
    ]
    report_entry = entry(report, "2023-schuster-interpreting-models-simon-schuster-style")
    assert report_entry.venue == "Blog"  # a technical report on the web
    assert report_entry.bibtex == {"institution": "EleutherAI", "entrytype": "techreport"}


def test_urls_in_note_and_howpublished_become_links() -> None:
    report = run("urls_in_note.bib")
    urls = {pid: (p.url, p.code) for pid, p in report.new_entries.items()}
    assert urls == {
        "2022-nanda-transformerlens": (
            "https://github.com/TransformerLensOrg/TransformerLens",
            "https://github.com/TransformerLensOrg/TransformerLens",
        ),
        "2023-nanda-actually-othello-gpt-has-linear": (
            "https://www.neelnanda.io/mechanistic-interpretability/othello?utm=a%20b_c",
            None,
        ),
        "2021-doe-notes-personal-page": ("https://example.org/~jdoe/notes_2021.html", None),
    }
    note = entry(report, "2021-doe-notes-personal-page").bibtex["note"]
    assert note == "Available at https://example.org/~jdoe/notes_2021.html."


def test_malformed_blocks_are_skipped_with_line_and_reason() -> None:
    report = run("malformed.bib")
    assert created(report) == [
        (1, "2023-able-good-entry-before-damage"),
        (32, "2023-entry-without-any-link"),
    ]
    assert entry(report, "2023-entry-without-any-link").needs == ["link"]
    assert report.unreadable == 3 and report.exit_code == 1
    assert [(i.line, i.reason) for i in report.skipped] == [
        (
            9,
            "the entry is not closed: a new entry starts at line 15 while a value is still open (unbalanced braces or quotes)",
        ),
        (15, "a field without '=' near line 17"),
        (21, "no title"),
        (27, "no year (neither year nor date, nor an arXiv id)"),
        (39, "the entry is not closed before the end of the file (unbalanced braces?)"),
    ]
    assert problems(report) == [
        (
            32,
            None,
            "no link (no url, doi or arXiv id, and no web address in note or howpublished): "
            "created with 'needs: [link]'",
        ),
        (35, "eprint", "'not-an-id' is not an arXiv id; kept it as a BibTeX field"),
    ]


def test_crossref_volume_fills_the_citing_entry() -> None:
    report = run("crossref.bib")
    sae = entry(report, "2024-cunningham-sparse-autoencoders-find-highly-interpretable")
    assert (sae.venue, sae.year, sae.bibtex["publisher"]) == ("ICLR", 2024, "OpenReview.net")
    zou = entry(report, "2023-zou-representation-engineering-top-down-approach")
    assert (zou.venue, zou.arxiv) == ("arXiv", "2310.01405")  # journal = {CoRR}
    assert [(i.line, i.id, i.reason) for i in report.merged] == [
        (19, sae.id, "crossref volume: its fields went into the entries at lines 1")
    ]


def test_non_utf8_file_is_read_as_windows_1252() -> None:
    report = run("latin1.bib")
    (paper,) = report.new_entries.values()
    assert paper.title == "Prédiction des états cachés" and paper.authors == ["René Dupré"]
    assert problems(report) == [(None, None, "the file is not UTF-8; read it as cp1252")]


def test_unknown_venues_are_kept_as_written_with_the_closest_name() -> None:
    report = run("venues.bib")
    assert created(report) == [
        (1, "2023-evans-paper-venue-list"),
        (9, "2023-fox-paper-misspelt-venue"),
        (17, "2024-gray-preprint-unknown-journal"),
        (26, "2024-hill-article-no-venue"),
        (33, "2024-ives-workshop-paper"),
    ]
    venues = {item.line: report.new_entries[item.id].venue for item in report.created}
    assert venues == {
        1: "Proceedings of the Workshop on Obscure Topics",
        9: "NeurPIS",
        17: "Journal of Unlisted Studies",
        26: None,  # created, and it says so: needs: [venue]
        33: "ICML Workshop",
    }
    assert entry(report, "2024-hill-article-no-venue").needs == ["venue"]
    assert report.skipped == []
    kept = "kept as written (add it there, with its aliases, if readers should filter by it)"
    assert [(p.line, p.field, p.message, p.suggestion) for p in report.problems] == [
        (
            4,
            "booktitle",
            "'Proceedings of the Workshop on Obscure Topics' is not in taxonomy/venues.yaml; "
            f"closest: 'NeurIPS Workshop': {kept}",
            "NeurIPS Workshop",
        ),
        (
            12,
            "booktitle",
            f"'NeurPIS' is not in taxonomy/venues.yaml; closest: 'NeurIPS': {kept}",
            "NeurIPS",
        ),
        (
            20,
            "journal",
            f"'Journal of Unlisted Studies' is not in taxonomy/venues.yaml: {kept}",
            None,
        ),
        (
            26,
            None,
            "no venue (no journal, booktitle, howpublished, publisher or school, no arXiv id "
            "and no link that implies one): created with 'needs: [venue]'; or pass --venue",
            None,
        ),
    ]


def test_venue_option_decides_for_unknown_venues() -> None:
    report = run("venues.bib", venue="NeurIPS Workshop")
    assert not report.skipped
    venues = {item.line: report.new_entries[item.id].venue for item in report.created}
    assert venues == {
        1: "NeurIPS Workshop",
        9: "NeurIPS Workshop",
        17: "NeurIPS Workshop",
        26: "NeurIPS Workshop",
        33: "ICML Workshop",
    }
    assert report.problems[1].message == (
        "'NeurPIS' is not in taxonomy/venues.yaml (closest: 'NeurIPS'); "
        "recorded as 'NeurIPS Workshop' (--venue)"
    )


# -- merging into the index -------------------------------------------------------------------


@pytest.fixture
def curated(papers: Path) -> Path:
    write_yaml(papers, "2024-arditi-refusal.yaml", valid_entry())
    write_yaml(
        papers,
        "2021-geva-ffn-memories.yaml",
        valid_entry(
            id="2021-geva-ffn-memories",
            title="Transformer Feed-Forward Layers Are Key-Value Memories",
            year=2021,
            venue="EMNLP",
            url="https://aclanthology.org/2021.emnlp-main.446",
            arxiv=...,
            doi="10.18653/v1/2021.emnlp-main.446",
            authors=[],
            objects=["ffn"],
            locate=["vocab-projection"],
            steer=[],
            goals=[],
        ),
    )
    write_yaml(
        papers,
        "2023-wang-ioi.yaml",
        valid_entry(
            id="2023-wang-ioi",
            title="Interpretability in the Wild: a Circuit for Indirect Object Identification in GPT-2 Small",
            year=2023,
            venue="ICLR",
            url="https://openreview.net/forum?id=NpsVSN6o4ul",
            arxiv=...,
            authors=[
                "Kevin Wang",
                "Alexandre Variengien",
                "Arthur Conmy",
                "Buck Shlegeris",
                "Jacob Steinhardt",
            ],
            objects=["attention-head", "circuit"],
            locate=["causal-attribution", "circuit-discovery"],
            steer=[],
            goals=["logic-reasoning"],
        ),
    )
    return papers


def test_merge_fills_gaps_reports_conflicts_and_never_touches_tags(
    curated: Path, monkeypatch
) -> None:
    monkeypatch.chdir(curated.parent)
    report = run("merge.bib", curated, tags={"locate": ["probing"]}, overwrite=True)
    assert [(i.line, i.id, i.reason) for i in report.merged] == [
        (
            2,
            "2024-arditi-refusal",
            "same arXiv id as papers/2024-arditi-refusal.yaml; filled abstract, bibtex.month, bibtex.primaryclass, provenance line 2",
        ),
        (
            13,
            "2021-geva-ffn-memories",
            "same DOI as papers/2021-geva-ffn-memories.yaml; filled authors, bibtex.booktitle, bibtex.pages, provenance line 13",
        ),
        (
            22,
            "2023-wang-ioi",
            "same title as papers/2023-wang-ioi.yaml; filled arxiv, provenance line 22",
        ),
    ]
    assert created(report) == [(31, "2023-li-inference-time-intervention-eliciting-truthful")]
    assert problems(report) == [
        (2, "locate", "kept 'causal-attribution' of the curated entry; the import has 'probing'"),
        (
            4,
            "authors",
            "kept 'Andy Arditi, Neel Nanda' of the curated entry; the import has 'Andy Arditi, Oscar Obeso, Aaquib Syed, Daniel Paleka, Nina Panickssery, Wes G...'",
        ),
        (13, "locate", "kept 'vocab-projection' of the curated entry; the import has 'probing'"),
        (17, "year", "kept '2021' of the curated entry; the import has '2020'"),
        (
            22,
            "locate",
            "kept 'causal-attribution, circuit-discovery' of the curated entry; the import has 'probing'",
        ),
    ]
    arditi = report.updated_entries["2024-arditi-refusal"]
    assert arditi.authors == ["Andy Arditi", "Neel Nanda"]  # curated authors kept
    assert arditi.abstract.startswith("Conversational")
    assert arditi.bibtex == {"month": "6", "primaryclass": "cs.LG"}
    assert arditi.venue == "NeurIPS"
    assert (arditi.objects, arditi.locate) == (["residual-stream"], ["causal-attribution"])
    geva = report.updated_entries["2021-geva-ffn-memories"]
    assert (
        geva.year == 2021 and geva.authors[0] == "Mor Geva" and geva.locate == ["vocab-projection"]
    )
    assert report.updated_entries["2023-wang-ioi"].arxiv == "2211.00593"
    new = entry(report, "2023-li-inference-time-intervention-eliciting-truthful")
    assert new.locate == ["probing"] and new.objects == []

    written = report.write(curated)
    assert len(written) == 4
    again = run("merge.bib", curated, tags={"locate": ["probing"]}, overwrite=True)
    assert not again.created and not again.new_entries and not again.updated_entries
    assert [i.reason.split("; ")[1] for i in again.merged] == ["nothing to fill"] * 4


def test_merge_without_overwrite_says_what_it_would_fill(curated: Path, monkeypatch) -> None:
    monkeypatch.chdir(curated.parent)
    report = run("merge.bib", curated)
    assert report.merged[0].reason == (
        "same arXiv id as papers/2024-arditi-refusal.yaml; would fill abstract, bibtex.month, "
        "bibtex.primaryclass, provenance line 2 (pass --overwrite to write it)"
    )
    assert report.updated_entries == {}
    assert len(report.new_entries) == 1


def test_import_refuses_a_papers_folder_with_problems(papers: Path) -> None:
    write_yaml(papers, "2024-arditi-refusal.yaml", valid_entry(locate=["nowhere"]))
    with pytest.raises(IndexNotClean) as caught:
        run("zotero.bib", papers)
    assert caught.value.problems[0].field == "locate"


# -- the command ------------------------------------------------------------------------------


def test_command_writes_entries_and_reports_json(curated: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "import-bib",
            str(FIXTURES / "merge.bib"),
            "--out",
            str(curated),
            "--json",
            "--steer",
            "vector-arithmetic",
            "--overwrite",
            "--added",
            "2025-02-03",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["items"], len(doc["created"]), len(doc["merged"]), doc["skipped"]) == (4, 1, 3, [])
    assert doc["dry_run"] is False and len(doc["written"]) == 4
    new = load_text(
        (curated / "2023-li-inference-time-intervention-eliciting-truthful.yaml").read_text()
    )
    assert new["steer"] == ["vector-arithmetic"] and new["venue"] == "NeurIPS"
    assert new["added"] == "2025-02-03"


def test_command_dry_run_writes_nothing_and_exits_1_on_skips(papers: Path) -> None:
    result = CliRunner().invoke(
        cli, ["import-bib", str(FIXTURES / "malformed.bib"), "--out", str(papers), "--dry-run"]
    )
    assert result.exit_code == 1
    assert list(papers.iterdir()) == []
    assert "7 entries: 2 created, 0 merged, 5 skipped (dry run: nothing written)." in result.stdout
    assert "malformed.bib:21: skipped 'notitle2023': no title" in result.stdout
    assert "malformed.bib:35: eprint: 'not-an-id' is not an arXiv id" in result.stderr


def test_command_usage_errors_name_the_closest_id_and_venue(papers: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["import-bib", str(FIXTURES / "zotero.bib"), "--out", str(papers), "--locate", "probbing"],
    )
    assert result.exit_code == 2
    assert "'probbing' is not a locating method; did you mean 'probing'?" in result.stderr
    result = runner.invoke(
        cli,
        [
            "import-bib",
            str(FIXTURES / "zotero.bib"),
            "--out",
            str(papers),
            "--venue",
            "Neurips 2023",
        ],
    )
    assert result.exit_code == 0  # an alias of a listed venue
    result = runner.invoke(
        cli,
        ["import-bib", str(FIXTURES / "zotero.bib"), "--out", str(papers), "--venue", "NeurPIS"],
    )
    assert result.exit_code == 2 and "did you mean 'NeurIPS'?" in result.stderr


def test_command_reports_a_write_failure_and_leaves_no_new_file(papers: Path) -> None:
    # A folder where the second new entry's file would go: creating that file fails.
    (papers / "2023-wang-interpretability-wild-circuit-indirect-object.yaml").mkdir()
    result = CliRunner().invoke(
        cli, ["import-bib", str(FIXTURES / "zotero.bib"), "--out", str(papers)]
    )
    assert result.exit_code == 1
    assert "cannot write the entries into" in result.stderr
    assert "no new entry was written" in result.stderr
    assert sorted(p.name for p in papers.iterdir()) == [
        "2023-wang-interpretability-wild-circuit-indirect-object.yaml"
    ]


def test_command_on_a_file_without_entries(tmp_path: Path) -> None:
    empty = tmp_path / "notes.bib"
    empty.write_text("% nothing here yet\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import-bib", str(empty), "--out", str(tmp_path / "papers")])
    assert result.exit_code == 1
    assert "no BibTeX entries found" in result.stderr


def test_reader_notes_text_outside_entries() -> None:
    bib = parse_bib("Some prose before the entries.\n@misc{a, title = {A}, year = 2020}\n")
    assert [(n.line, n.message) for n in bib.notes] == [
        (1, "text outside any entry ('Some prose before the entries.') was ignored")
    ]


def test_docs_example_output_is_what_the_command_prints(tmp_path: Path, monkeypatch) -> None:
    """docs/bibtex.md shows a run on tests/fixtures/bib/docs_example.bib."""
    docs = (REPO / "docs" / "bibtex.md").read_text(encoding="utf-8")
    block = docs.split("$ mi-atlas import-bib refs.bib --out papers --dry-run --added")[1]
    command, *shown = block.split("```")[0].strip().splitlines()
    (tmp_path / "refs.bib").write_bytes((FIXTURES / "docs_example.bib").read_bytes())
    monkeypatch.chdir(tmp_path)
    args = ["import-bib", "refs.bib", "--out", "papers", "--dry-run", "--added", *command.split()]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0  # every entry accounted for
    printed = result.stdout.splitlines() + result.stderr.splitlines()
    assert sorted(printed) == sorted(shown)


EDITS = list('{}",=@%\\#\n ()~$&_') + [
    "@misc{",
    "}\n@article{x,",
    "\r\n",
    " and ",
    '{\\"',
    "$\\alpha",
]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(FIXTURES.glob("*.bib"))),
    st.lists(
        st.tuples(st.floats(0, 1), st.booleans(), st.sampled_from(EDITS), st.integers(1, 5)),
        min_size=1,
        max_size=8,
    ),
)
def test_damaged_files_never_crash_and_every_item_has_a_line(path: Path, edits) -> None:
    """Random damage (braces, quotes, commas, @, %, backslashes deleted or inserted) to the
    fixtures: the import reports, it never raises."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    for where, insert, piece, length in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at:] if insert else text[:at] + text[at + length :]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "damaged.bib"
        source.write_text(text, encoding="utf-8")
        report = import_bib(source, Path(tmp) / "papers", today=TODAY)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    items = [*report.created, *report.merged, *report.skipped]
    assert all(1 <= item.line <= lines for item in items)
    assert report.items == len(items)


@pytest.mark.parametrize(
    "name",
    ["jabref.bib", "zotero.bib", "months.bib", "merge.bib", "scholar.bib", "venues.bib",
     "quoted.bib", "corporate.bib", "docs_example.bib", "urls_in_note.bib", "latex.bib"],
)  # fmt: skip
def test_one_pass_reads_what_bibtexparsers_middlewares_give(name: str) -> None:
    """The reader's single pass over an entry equals bibtexparser's stock stages (string
    macros, enclosing, month numbers, co-author splitting, name parts) followed by the
    shared LaTeX decoder, on files that need no repair."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    stages = [
        ResolveStringReferencesMiddleware(True),
        RemoveEnclosingMiddleware(True),
        MonthIntMiddleware(True),
        SeparateCoAuthors(True),
        SplitNameParts(True),
    ]
    stock = {e.start_line + 1: e for e in bibtexparser.parse_string(text, stages).entries}
    records = [r for r in parse_bib(text).records if r.line in stock]
    assert len(records) == len(stock)
    for record in records:
        for fld in stock[record.line].fields:
            key, value = fld.key.lower(), fld.value
            if isinstance(value, str) and " # " in value:
                continue  # a concatenation: only the reader resolves those
            if key in NAME_FIELDS:
                people = [p for p in value if p.last != ["others"]]
                expected = [texcodec.decode(p.merge_first_name_first) for p in people]
                assert record.names[key] == expected
            elif key in BOOKKEEPING or key.startswith(BOOKKEEPING_PREFIXES):
                assert key not in record.fields
            elif key in ("url", "doi", "eprint"):
                assert record.fields[key] == texcodec.unescape_verbatim(value)
            elif key in VERBATIM:
                assert record.fields[key] == texcodec.collapse(str(value))
            else:
                assert record.fields.get(key, "") == texcodec.decode(value)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="andAND xé,.{}\\\t\n\xa0-", max_size=40))
def test_name_list_split_equals_bibtexparsers_scanner(names: str) -> None:
    """Author lists are split by a regular expression and a brace count; bibtexparser's own
    scanner (with backslashes hidden, as the importer does) gives the same names."""
    hidden = names.replace("\\", "\ue000")
    slow = [n.replace("\ue000", "\\") for n in split_multiple_persons_names(hidden)]
    assert split_names(names) == slow


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["{", "}", "\\", "a", " ", '"', "{a}", "\\{"]), max_size=14))
def test_enclosing_braces_are_removed_as_bibtexparser_removes_them(pieces: list[str]) -> None:
    value = "".join(pieces)
    stripped, _ = RemoveEnclosingMiddleware._strip_enclosing(value)
    assert bibread._unenclosed(value) == stripped


# What "an entry commented out with %" means, as one line-anchored pattern.
COMMENTED_ENTRY = re.compile(r"^([ \t]*%[^\n@]*)@(\w+[ \t]*[{(])", re.MULTILINE)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(["%", "@", "misc", "{", "(", " ", "\t", "\n", "x", "é"]), max_size=24)
)
def test_commented_out_entries_are_the_lines_the_pattern_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    lines = [text.count("\n", 0, m.start()) + 1 for m in COMMENTED_ENTRY.finditer(text)]
    hidden, notes = bibrepair._commented_out(text)
    assert hidden == COMMENTED_ENTRY.sub(r"\1%\2", text)
    assert [n.line for n in notes] == lines


NAME_WORD = st.from_regex(r"[A-ZÉ][a-zé]{0,6}(-[A-Zé][a-z]{0,4})?\.?", fullmatch=True)


NAMES = st.one_of(
    st.lists(NAME_WORD, min_size=1, max_size=4).map(" ".join),
    st.tuples(st.lists(NAME_WORD, min_size=1, max_size=3), st.lists(NAME_WORD, max_size=3)).map(
        lambda t: " ".join(t[0]) + ", " + " ".join(t[1])
    ),
    st.text(alphabet="AbÉé. ,-'’\t\xa0{}\\~$1", max_size=14),
)


@settings(max_examples=250, deadline=None)
@given(NAMES)
def test_simple_names_are_split_as_bibtexparser_splits_them(name: str) -> None:
    fast = simple_name_parts(name)
    if fast is not None:
        assert fast == parse_single_name_into_parts(name)


@settings(max_examples=250, deadline=None)
@given(NAMES)
def test_a_simple_name_reads_as_the_general_path_reads_it(name: str) -> None:
    """Capitalised names skip bibtexparser's parts and the decoder; they read the same."""
    assert bibread._person(name) == bibread._parsed_person(name)


def test_common_names_take_the_simple_path() -> None:
    assert simple_name_parts("Arditi, Andy J.").first == ["Andy", "J."]
    assert simple_name_parts("Jean-Paul O’Neil").last == ["O’Neil"]
    assert simple_name_parts("van Neumann, John") is None  # a von part: the general parser


# -- what an entry implies, reported as inferred --------------------------------------------------


def inferred(report) -> list[tuple[int, str, str, str]]:
    return [(i.line, i.field, i.value, i.evidence) for i in report.inferred]


def test_google_scholar_exports_and_implied_years_and_venues_are_reported_as_inferred() -> None:
    report = run("scholar.bib")
    assert not report.skipped and report.exit_code == 0
    mass = entry(report, "2022-meng-mass-editing-memory-transformer")
    # `journal = {arXiv preprint arXiv:X}` is a link and an arXiv venue, not "no link".
    assert (mass.arxiv, mass.url, mass.venue) == (
        "2210.07229",
        "https://arxiv.org/abs/2210.07229",
        "arXiv",
    )
    framework = entry(report, "2021-elhage-mathematical-framework-transformer-circuits")
    assert framework.venue == "Blog" and framework.url is None and framework.needs == ["link"]
    jonas = entry(report, "2017-jonas-could-neuroscientist-understand-microprocessor")
    assert jonas.venue == "PLoS computational biology"  # kept as written
    assert jonas.doi is None and jonas.needs == ["link"]
    toy = entry(report, "2022-elhage-toy-models-superposition")
    assert (toy.year, toy.venue) == (2022, "Blog")
    refusal = entry(report, "2024-arditi-refusal-language-models-mediated-single")
    assert (refusal.year, refusal.venue) == (2024, "arXiv")
    assert inferred(report) == [
        (1, "arxiv", "2210.07229", "from journal 'arXiv preprint arXiv:2210.07229'"),
        (27, "year", "2022", "from the date '2022-09-14'"),
        (
            27,
            "venue",
            "Blog",
            "from the url's host transformer-circuits.pub",
        ),
        (34, "year", "2024", "from the arXiv id 2406.11717 (the year it was first posted)"),
        (34, "venue", "arXiv", "from the arXiv id 2406.11717 (an arXiv preprint)"),
    ]
    assert [i.id for i in report.inferred] == [mass.id, toy.id, toy.id, refusal.id, refusal.id]


def test_one_exit_rule_skips_with_a_reason_exit_0_unreadable_entries_exit_1(
    papers: Path,
) -> None:
    def exit_code(path: Path) -> int:
        args = ["import-bib", str(path), "--out", str(papers), "--dry-run"]
        return CliRunner().invoke(cli, args).exit_code

    untitled = papers.parent / "untitled.bib"
    untitled.write_text("@misc{a,\n  year = {2024},\n  url = {https://example.org/a},\n}\n")
    assert exit_code(untitled) == 0  # skipped with its reason ("no title"): accounted for
    malformed = run("malformed.bib")
    assert malformed.unreadable == 3 and exit_code(FIXTURES / "malformed.bib") == 1
