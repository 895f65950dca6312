"""Which venue of the controlled list a journal, booktitle or howpublished text names.

Real .bib files spell venues at length ("Proceedings of the 62nd Annual Meeting of the
Association for Computational Linguistics (Volume 1: Long Papers)", "Advances in Neural
Information Processing Systems 36", "arXiv preprint arXiv:2406.11717", DBLP's "...: Annual
Conference on Neural Information Processing Systems 2023, NeurIPS 2023, New Orleans..."). The
taxonomy's `venues.resolve` knows names, full names and aliases; this module peels the
decoration off a label until one of them matches, and never guesses beyond that.
"""

from __future__ import annotations

import re

from ..taxonomy import Taxonomy

_ARXIV = re.compile(r"\barxiv\b|^corr$|^corr\s", re.IGNORECASE)
_ORDINAL = (
    r"(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
    r"eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|"
    r"nineteenth|twentieth|twenty[- ]\w+|thirtieth|thirty[- ]\w+|fortieth|forty[- ]\w+|"
    r"fiftieth|fifty[- ]\w+|sixtieth|sixty[- ]\w+)"
)
_STEPS = [
    re.compile(r"\([^()]*\)"),  # "(Volume 1: Long Papers)", "(ICML 2024)"
    re.compile(r"^\s*(?:in\s+)?(?:the\s+)?proceedings\s+of\s+(?:the\s+)?", re.IGNORECASE),
    re.compile(rf"^\s*(?:the\s+)?(?:(?:19|20)\d\d\s+)?(?:{_ORDINAL}\s+)?", re.IGNORECASE),
    re.compile(r"^\s*annual\s+", re.IGNORECASE),
    re.compile(r"[\s,]+(?:vol(?:ume)?\.?\s*)?\d+\s*$", re.IGNORECASE),  # "Systems 36", "vol. 35"
]
# The venue list abbreviates the association's name ("Conference of the North American
# Chapter of the ACL"); proceedings titles spell it out.
_ACL = re.compile(r"\bthe association for computational linguistics\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z-]+")


def resolve_venue(taxonomy: Taxonomy, label: str) -> str | None:
    """The canonical venue a label names, or None when it is not on the list."""
    venues = taxonomy.venues
    label = " ".join(label.split())
    if not label:
        return None
    if _ARXIV.search(label):
        return "arXiv" if "arXiv" in venues.by_name else None
    for candidate in _candidates(label):
        for text in (candidate, _ACL.sub("the ACL", candidate)):
            if name := venues.resolve(text):
                return _workshop(taxonomy, label, name)
    # Acronyms inside a long label: "..., NeurIPS 2023, New Orleans, LA, USA".
    for word in _WORD.findall(label):
        if sum(ch.isupper() for ch in word) >= 2 and (name := venues.resolve(word)):
            return _workshop(taxonomy, label, name)
    return None


def _candidates(label: str):
    yield label
    # After a colon comes the more specific name ("Findings of the ACL: EMNLP 2023").
    sections = re.split(r"\s*[:;]\s+", label)
    parts = [label, *reversed(sections[1:]), sections[0]] if len(sections) > 1 else [label]
    for part in parts + [p for p in re.split(r",\s+", label) if p not in parts]:
        text = part
        for step in _STEPS:
            text = step.sub(" ", text).strip(" ,.")
            if text:
                yield text


def _workshop(taxonomy: Taxonomy, label: str, name: str) -> str:
    """A workshop held at a conference is its own venue ("NeurIPS Workshop")."""
    venue = taxonomy.venues.by_name[name]
    if venue.kind == "conference" and re.search(r"\bworkshops?\b", label, re.IGNORECASE):
        return taxonomy.venues.resolve(f"{name} Workshop") or name
    return name


def suggest_venue(taxonomy: Taxonomy, label: str) -> str | None:
    """The closest venue name, for a report ("did you mean ...?")."""
    for candidate in _candidates(" ".join(label.split())):
        if name := taxonomy.venues.suggest(candidate):
            return name
    return None
