"""The mi-atlas site: an mkdocs plugin that builds pages, explorer data, downloads and feeds
from `papers/` and `taxonomy/` at build time (registered as the `mi-atlas` mkdocs plugin)."""
