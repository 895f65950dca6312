"""Importers: turn other people's paper lists (awesome-list markdown, BibTeX) into entries."""
