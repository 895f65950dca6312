"""Options of the `mi-atlas` mkdocs plugin (`plugins: [mi-atlas: {...}]` in mkdocs.yml)."""

from __future__ import annotations

from mkdocs.config.base import BaseConfigOption, Config, ValidationError
from mkdocs.config.config_options import Type

RESULTS_MODES = ("auto", "compute", "cache", "off")


class ResultsMode(BaseConfigOption[str]):
    """`auto`, `compute`, `cache` or `off`; YAML reads a bare `off`/`on` (also from `!ENV`)
    as a boolean, so `false` means `off` and `true` means `auto`."""

    def __init__(self, default: str = "auto") -> None:
        super().__init__()
        self.default = default

    def run_validation(self, value: object) -> str:
        if isinstance(value, bool):
            return "auto" if value else "off"
        if value in RESULTS_MODES:
            return str(value)
        raise ValidationError(
            f"expected one of {', '.join(RESULTS_MODES)} (or true/false), got {value!r}"
        )


class AtlasConfig(Config):
    enabled = Type(bool, default=True)

    # Where the data is, relative to mkdocs.yml (absolute paths work too).
    papers_dir = Type(str, default="papers")
    taxonomy_dir = Type(str, default="taxonomy")

    # Links into the repository ("edit this entry", implementation sources, and the edit links
    # of hand-written pages when mkdocs' `edit_uri` is unset): this URL, else mkdocs' `repo_url`
    # (which also makes Material fetch repository facts from GitHub's API in the reader's
    # browser; set this one instead to keep the site free of network requests).
    repo_url = Type(str, default="")
    repo_branch = Type(str, default="main")

    # Feeds: how many of the most recently added papers each Atom feed lists.
    feed_size = Type(int, default=30)

    # Site search over paper pages too. Off by default: the explorer searches papers (titles,
    # authors, abstracts) far better, and at 10,000 papers Material's search index would add
    # megabytes that every reader's browser loads on every page.
    search_papers = Type(bool, default=False)

    # Results of the reference implementations on the zoo, shown on node pages and the
    # scoreboard (mi_atlas/site/results.py; docs/results.md). `auto`: `mkdocs build` computes
    # what the cache lacks, `mkdocs serve` only reads the cache; `compute`, `cache`, `off`.
    results = ResultsMode(default="auto")
    # Where computed results are kept, relative to mkdocs.yml; keyed by a hash of the code,
    # the zoo model's files and the inputs, so it is always safe to keep or to delete.
    results_cache_dir = Type(str, default=".mi-atlas-cache/results")
