"""The explorer's data files: plain scripts that set globals, so the explorer works from disk.

A page opened from `file://` cannot fetch() JSON, but it can load `<script src>`: `papers.js`
sets `window.MI_ATLAS` (taxonomy, venues, papers) and `bibtex.js` sets `window.MI_ATLAS_BIBTEX`
(paper id -> BibTeX entry, loaded after the page so that filtering starts at once).

Each paper is a small object with one-letter keys, because the file is read on every visit:
i id, t title, a authors, y year, v venue, x abstract (or TL;DR), o/l/s/g the tags on the
objects/locate/steer/goals axes, u the paper's URL, c its code URL (if any).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..schema import Paper
from ..taxonomy import AXES
from .catalog import AXIS_LABELS, Catalog

AXIS_KEYS = {"objects": "o", "locate": "l", "steer": "s", "goals": "g"}


def paper_record(paper: Paper) -> dict:
    record = {
        "i": paper.id,
        "t": paper.title,
        "a": paper.authors,
        "y": paper.year,
        "v": paper.venue,
        "x": paper.abstract or paper.tldr or "",
        "u": paper.url,
    }
    for axis, key in AXIS_KEYS.items():
        record[key] = getattr(paper, axis)
    if paper.code:
        record["c"] = paper.code
    return record


def explorer_data(catalog: Catalog) -> dict:
    taxonomy = catalog.taxonomy
    return {
        "axes": [
            {
                "id": axis,
                "key": AXIS_KEYS[axis],
                "title": taxonomy[axis].title,
                "label": AXIS_LABELS[axis],
                "nodes": [
                    {"id": node.id, "name": node.name, "parent": taxonomy[axis].parent.get(node.id)}
                    for node in taxonomy[axis].nodes.values()
                ],
            }
            for axis in AXES
        ],
        "venues": catalog.venues,
        "papers": [paper_record(paper) for paper in catalog.papers],
    }


def _script(name: str, value: object) -> str:
    # JSON is a JavaScript expression; nothing in it is executed, whatever the strings hold.
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return f"window.{name}={body};\n"


def papers_script(catalog: Catalog) -> str:
    return _script("MI_ATLAS", explorer_data(catalog))


def bibtex_script(bibtex: Mapping[str, str]) -> str:
    return _script("MI_ATLAS_BIBTEX", dict(bibtex))
