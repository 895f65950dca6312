"""Understanding paper links: arXiv, DOI, OpenReview, ACL Anthology and code repositories.

Shared by the entry schema (format checks, duplicate detection) and the importers (a link in a
list or a .bib `url`/`note` field becomes typed identifiers).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit, urlunsplit

# New-style ids (2007+): YYMM.NNNN(N) with an optional version; old style: archive/YYMMNNN.
ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})$")
ARXIV_IN_URL = re.compile(
    r"arxiv\.org/(?:abs|pdf|html|format)/((?:\d{4}\.\d{4,5})|(?:[a-z-]+(?:\.[A-Z]{2})?/\d{7}))(?:v\d+)?",
    re.IGNORECASE,
)
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}]+)", re.IGNORECASE)
OPENREVIEW_ID = re.compile(r"^[A-Za-z0-9_-]{8,14}$")
# Volume slugs may hold digits: workshop volumes are numbered (2023.blackboxnlp-1.29).
ACL_ID = re.compile(r"^(?:\d{4}\.[a-z][a-z0-9-]*\.\d+|[A-Z]\d{2}-\d{4})$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*\.[^\s]*$|^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+")
# Compiled once: an import cleans every entry's identifiers (`re.sub` with a pattern string
# looks its compiled form up again on each call).
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:)", re.IGNORECASE)
_ARXIV_VERSION = re.compile(r"v\d+$")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_TRAILING_SLASHES = re.compile(r"/+$")
CODE_HOSTS = ("github.com", "gitlab.com", "huggingface.co", "bitbucket.org")


@dataclass
class LinkInfo:
    """What one URL tells about a paper."""

    url: str
    arxiv: str | None = None
    doi: str | None = None
    openreview: str | None = None
    acl: str | None = None
    code: str | None = None


def clean_arxiv(value: str) -> str:
    """'arXiv:2406.11717v2' -> '2406.11717'."""
    value = value.strip()
    value = _ARXIV_PREFIX.sub("", value)
    return _ARXIV_VERSION.sub("", value)


def clean_doi(value: str) -> str:
    """'https://doi.org/10.1/X' -> '10.1/X' (DOIs compare case-insensitively)."""
    value = value.strip()
    value = _DOI_PREFIX.sub("", value)
    return value.rstrip(".,;")


@lru_cache(maxsize=1024)
def parse_link(url: str) -> LinkInfo:
    """Read the identifiers a URL carries (arXiv abs/pdf/html, DOI, OpenReview, ACL, code).

    Remembered: an importer reads a record's url for its identifiers and again for its
    identity key. The answer is shared, so callers must not change it."""
    info = LinkInfo(url=url.strip())
    parts = urlsplit(info.url)
    host = parts.netloc.lower().removeprefix("www.")
    if match := ARXIV_IN_URL.search(info.url):
        info.arxiv = clean_arxiv(match.group(1))
    elif host in {"doi.org", "dx.doi.org"}:
        info.doi = clean_doi(info.url)
    elif host == "openreview.net":
        ids = parse_qs(parts.query).get("id")
        if ids and OPENREVIEW_ID.match(ids[0]):
            info.openreview = ids[0]
    elif host == "aclanthology.org":
        slug = parts.path.strip("/").removesuffix(".pdf")
        if ACL_ID.match(slug):
            info.acl = slug
    elif (
        host in CODE_HOSTS
        and host != "huggingface.co"
        and len(parts.path.strip("/").split("/")) >= 2
    ):
        info.code = info.url
    if info.doi is None and host not in {"doi.org", "dx.doi.org"}:
        # Publisher pages often embed the DOI in the path (ACM, Springer, Wiley).
        if host in {
            "dl.acm.org",
            "link.springer.com",
            "onlinelibrary.wiley.com",
            "ieeexplore.ieee.org",
        }:
            if match := DOI_IN_TEXT.search(parts.path):
                info.doi = clean_doi(match.group(1))
    return info


def normalise_url(url: str) -> str:
    """A comparison key for URLs: scheme, `www.`, fragments, trailing slashes and arXiv
    versions and formats do not make two links different."""
    info = parse_link(url)
    if info.arxiv:
        return f"arxiv:{info.arxiv}"
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    path = _TRAILING_SLASHES.sub("", parts.path)
    if host == "openreview.net" and info.openreview:
        return f"openreview:{info.openreview}"
    if host == "aclanthology.org":
        path = path.removesuffix(".pdf")
    return urlunsplit(("", host, path, parts.query, "")).lstrip("/")


def normalise_title(title: str) -> str:
    """A comparison key for titles: case, punctuation, TeX braces and spacing ignored."""
    if not title.isascii():
        title = unicodedata.normalize("NFKD", title)
        title = "".join(ch for ch in title if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", title.casefold()).strip()
