"""Data and helpers for the site tests (tests/site): the small index they build, and how.

The index is made here, never read from `papers/`, so the tests do not change when the
curated papers do: three real-looking entries, synthetic ones, and two hostile ones. The
taxonomy is the repository's plus one hostile venue and one hostile node name, so escaping is
checked for taxonomy text as well as entry text.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from mi_atlas.paths import published_urls
from mi_atlas.schema import Paper
from mi_atlas.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


SITE_URL, REPO_URL = published_urls()
# The path of site_url: where the published site lives on its server.
SITE_PATH = urlsplit(SITE_URL).path
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Each string tries a different way in: raw tags, event handlers, javascript: URLs in HTML
# and markdown form, markdown emphasis and links, Jinja syntax, quotes that end attributes.
HOSTILE_TITLE = (
    '<script>window.__pwned=1</script> Hostile "title" {{ config.site_name }} '
    "[x](javascript:window.__pwned=2) **not bold**"
)
HOSTILE_AUTHOR = '<img src=x onerror="window.__pwned=3">'
HOSTILE_ABSTRACT = (
    '<a href="javascript:window.__pwned=4">click me</a> and '
    "[a markdown link](javascript:window.__pwned=5) and {{ 7*7 }} and {% raw %} and "
    '<b>not bold</b> &amp; an entity; <svg onload="window.__pwned=6"></svg> `code` | a | table |'
)
HOSTILE_VENUE = '<script>window.__pwned=7</script>Venue "x" {{ 7*7 }}'
HOSTILE_NODE_NAME = 'Circuit <img src=x onerror="window.__pwned=8"> {{ 7*7 }}'
HOSTILE_STRINGS = (
    HOSTILE_TITLE,
    HOSTILE_AUTHOR,
    HOSTILE_ABSTRACT,
    HOSTILE_VENUE,
    HOSTILE_NODE_NAME,
)


@dataclass
class SiteData:
    root: Path  # temporary folder holding papers/, taxonomy/ and site/
    papers_dir: Path
    taxonomy_dir: Path
    taxonomy: Taxonomy
    papers: list[Paper]
    hostile: list[Paper]

    def by_id(self, paper_id: str) -> Paper:
        return next(p for p in self.papers if p.id == paper_id)


def hostile_taxonomy(folder: Path) -> Path:
    """The repository's taxonomy plus a hostile venue and a hostile name for `circuit`."""
    shutil.copytree(REPO / "taxonomy", folder)
    venues = yaml.safe_load((folder / "venues.yaml").read_text(encoding="utf-8"))
    venues["venues"].append(
        {"name": HOSTILE_VENUE, "full": HOSTILE_AUTHOR, "kind": "other", "aliases": []}
    )
    (folder / "venues.yaml").write_text(yaml.safe_dump(venues, sort_keys=False), encoding="utf-8")
    objects = yaml.safe_load((folder / "objects.yaml").read_text(encoding="utf-8"))
    for node in objects["nodes"]:
        if node["id"] == "circuit":
            node["name"] = HOSTILE_NODE_NAME
            node["description"] = HOSTILE_ABSTRACT
    (folder / "objects.yaml").write_text(yaml.safe_dump(objects, sort_keys=False), encoding="utf-8")
    return folder


def real_looking(taxonomy: Taxonomy) -> list[Paper]:
    rows = [
        {
            "id": "2024-arditi-refusal-single-direction",
            "title": "Refusal in Language Models Is Mediated by a Single Direction",
            "year": 2024,
            "venue": "NeurIPS",
            "url": "https://openreview.net/forum?id=pH3XAQME6c",
            "arxiv": "2406.11717",
            "openreview": "pH3XAQME6c",
            "authors": ["Andy Arditi", "Oscar Obeso", "Aaquib Syed", "Neel Nanda"],
            "abstract": "Conversational models refuse harmful requests. We find that this "
            "refusal behaviour is mediated by a one-dimensional subspace of the residual stream.",
            "objects": ["residual-stream"],
            "locate": ["causal-attribution"],
            "steer": ["vector-arithmetic"],
            "goals": ["safety-reliability"],
            "added": "2026-01-30",
        },
        {
            "id": "2022-meng-locating-editing-factual",
            "title": "Locating and Editing Factual Associations in GPT",
            "year": 2022,
            "venue": "NeurIPS",
            "url": "https://arxiv.org/abs/2202.05262",
            "arxiv": "2202.05262",
            "code": "https://github.com/kmeng01/rome",
            "authors": ["Kevin Meng", "David Bau", "Alex Andonian", "Yonatan Belinkov"],
            "tldr": "Factual associations live in mid-layer MLPs and can be edited with a rank-one update.",
            "objects": ["ffn", "neuron"],
            "locate": ["causal-attribution"],
            "steer": ["targeted-optimization"],
            "goals": ["knowledge-management"],
            "bibtex": {"pages": "17359--17372"},
            "added": "2026-01-29",
        },
        {
            "id": "2023-zou-representation-engineering",
            "title": "Representation Engineering: A Top-Down Approach to AI Transparency",
            "year": 2023,
            "venue": "arXiv",
            "url": "https://arxiv.org/abs/2310.01405",
            "arxiv": "2310.01405",
            "authors": ["Andy Zou", "Long Phan", "Dan Hendrycks"],
            "abstract": "We read and steer high-level concepts such as honesty through "
            "population-level representations.",
            "objects": ["residual-stream"],
            "locate": ["probing"],
            "steer": ["vector-arithmetic"],
            "goals": ["safety-reliability", "persona-role"],
            "added": "2026-01-28",
        },
    ]
    return [Paper.model_validate(row, context={"taxonomy": taxonomy}) for row in rows]


def hostile_papers(taxonomy: Taxonomy) -> list[Paper]:
    papers = []
    for k, (obj, locate) in enumerate((("circuit", "circuit-discovery"), ("ffn", "probing"))):
        papers.append(
            Paper.model_validate(
                {
                    "id": f"2024-hostile-entry-{k + 1}",
                    "title": f"{HOSTILE_TITLE} {k + 1}",
                    "year": 2024,
                    "venue": HOSTILE_VENUE,
                    "url": f"https://example.org/hostile/{k + 1}?a=1&b=2",
                    "authors": [HOSTILE_AUTHOR, "Mallory _Under_ `Tick`"],
                    "abstract": HOSTILE_ABSTRACT,
                    "tldr": HOSTILE_TITLE,
                    "notes": HOSTILE_ABSTRACT,
                    "objects": [obj],
                    "locate": [locate],
                    "steer": ["vector-arithmetic"],
                    "goals": ["safety-reliability"],
                    "bibtex": {"note": "<script>window.__pwned=9</script>"},
                    "added": "2026-02-01",
                },
                context={"taxonomy": taxonomy},
            )
        )
    return papers


def build_site(
    papers_dir: Path,
    taxonomy_dir: Path,
    site_dir: Path,
    *,
    runs_dir: Path | None = None,
) -> Path:
    """Build the repository's mkdocs.yml in-process for these papers, into `site_dir`.

    `runs_dir` is the folder of run documents the site shows (tests/run_docs.py writes one);
    by default an empty folder, so every node page says which command makes its result."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    names = ("MI_ATLAS_PAPERS", "MI_ATLAS_TAXONOMY_DIR", "MI_ATLAS_RUNS")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["MI_ATLAS_PAPERS"] = str(papers_dir)
    os.environ["MI_ATLAS_TAXONOMY_DIR"] = str(taxonomy_dir)
    os.environ["MI_ATLAS_RUNS"] = str(runs_dir or site_dir.parent / "no-runs")
    try:
        config = load_config(str(REPO / "mkdocs.yml"), site_dir=str(site_dir))
        build(config)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return site_dir


@dataclass
class PageProblems:
    """What went wrong while a page was open: console errors, uncaught exceptions, failed loads."""

    console: list[str]
    errors: list[str]
    failed: list[str]

    def all(self) -> list[str]:
        return self.console + self.errors + self.failed


def watch(page) -> PageProblems:
    problems = PageProblems([], [], [])
    page.on(
        "console",
        lambda m: (
            problems.console.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.errors.append(str(e)))
    # A request cut short because the test moved on to the next page is not a failure.
    page.on(
        "requestfailed",
        lambda r: (
            problems.failed.append(f"{r.url}: {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: problems.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
    )
    return problems
