"""Options of the `mi-atlas` mkdocs plugin (`plugins: [mi-atlas: {...}]` in mkdocs.yml)."""

from __future__ import annotations

from mkdocs.config.base import Config
from mkdocs.config.config_options import Type


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
    # Material requests its search index on every page view; with this, only once the reader
    # goes to the search box (assets/search-on-demand.js). Measured in docs/about.md.
    search_on_demand = Type(bool, default=True)

    # The run documents shown on node pages and the scoreboard: the folder `mi-atlas run --all
    # --out DIR` writes (relative to mkdocs.yml). The build only reads it (docs/results.md).
    runs_dir = Type(str, default=".mi-atlas-cache/runs")
