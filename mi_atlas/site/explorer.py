"""The explorer's data files: plain scripts that set globals, so the explorer works from disk.

A page opened from `file://` cannot fetch() JSON, but it can load `<script src>`: `papers.js`
sets `window.MI_ATLAS` (taxonomy, venues, papers) and `bibtex.js` sets `window.MI_ATLAS_BIBTEX`
(paper id -> BibTeX entry, loaded after the page so that filtering starts at once).

Each paper is a small object with one-letter keys, because the file is read on every visit:
i id, t title, a authors, k short names (aka), y year, v venue, m one-line summary, x abstract,
o/l/s/g the tags on the objects/locate/steer/goals axes, u the paper's URL, c its code URL.
Empty optional keys are left out. Taxonomy nodes carry their aliases (searched with the papers'
tags) and `impl` where the node has a reference implementation (a "runnable method" link).
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
        "v": paper.venue or "",
        "u": paper.url,
    }
    for axis, key in AXIS_KEYS.items():
        record[key] = getattr(paper, axis)
    optional = {"k": paper.aka, "m": paper.tldr, "x": paper.abstract, "c": paper.code}
    record.update((key, value) for key, value in optional.items() if value)
    return record


def _node(node, parent: str | None) -> dict:
    record = {"id": node.id, "name": node.name, "parent": parent}
    aliases = [alias for alias in node.aliases if alias.casefold() != node.name.casefold()]
    if aliases:
        record["aliases"] = aliases
    if node.impls:
        record["impl"] = True
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
                    _node(node, taxonomy[axis].parent.get(node.id))
                    for node in taxonomy[axis].nodes.values()
                ],
            }
            for axis in AXES
        ],
        # Venues of taxonomy/venues.yaml first; venues kept as written (not on the list) after
        # them, under "Other venues".
        "venues": [v for v in catalog.venues if v in taxonomy.venues.by_name]
        + [v for v in catalog.venues if v not in taxonomy.venues.by_name],
        "venuesOther": [v for v in catalog.venues if v not in taxonomy.venues.by_name],
        "venueNames": {
            name: venue.full
            for name in catalog.venues
            if (venue := taxonomy.venues.by_name.get(name)) and venue.full != name
        },
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
