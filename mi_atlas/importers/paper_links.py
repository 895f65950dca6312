"""What a link in a paper list says about a paper: identifiers, a code repository, a venue.

`mi_atlas.links.parse_link` reads arXiv, DOI, OpenReview and ACL Anthology ids from one URL.
Importers need a little more: which links are not about a paper at all (in-page anchors,
badges, relative paths), ids hidden inside DOIs (arXiv's DataCite DOIs `10.48550/arXiv.X`,
the ACL Anthology's `10.18653/v1/<id>`), and the venue a proceedings page implies (an ACL
Anthology volume or a NeurIPS proceedings page names where the paper appeared, which is
better evidence than a hand-typed venue label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import links

# Volume slugs of the ACL Anthology (`2024.<slug>.<n>`) that are conferences or journals of
# the venue list; "findings-<x>" is <x>'s Findings, "<x>-long/-short/-demo..." its tracks.
_ANTHOLOGY_CONFERENCES = {
    "acl": "ACL",
    "emnlp": "EMNLP",
    "naacl": "NAACL",
    "eacl": "EACL",
    "coling": "COLING",
    "conll": "CoNLL",
    "tacl": "TACL",
    "aacl": "AACL",
    "ijcnlp": "AACL",
    "paclic": "PACLIC",
}
# Workshop volumes that are common in interpretability lists; any of them is "ACL Workshop".
_ANTHOLOGY_WORKSHOPS = {
    "blackboxnlp", "sigtyp", "insights", "repl4nlp", "gebnlp", "trustnlp", "semeval", "wmt",
    "bionlp", "clinicalnlp", "wnut", "sustainlp", "mrl", "genbench", "textgraphs", "sigmorphon",
    "cmcl", "loresmt", "americasnlp", "fever", "argmining", "nllp", "c3nlp", "woah", "ltedi",
    "gem", "eval4nlp", "nlrse", "knowllm", "l2m2", "privatenlp", "sighan", "sigdial", "unlp",
    "conll-babylm", "babylm", "cl4health", "nlp4pi", "hucllm", "mathnlp", "tsar", "wassa",
}  # fmt: skip
# Old-style Anthology ids: the letter names the venue (P19-1001 is ACL 2019).
_ANTHOLOGY_LETTERS = {
    "P": "ACL",
    "D": "EMNLP",
    "N": "NAACL",
    "E": "EACL",
    "C": "COLING",
    "Q": "TACL",
    "K": "CoNLL",
    "W": "ACL Workshop",
}
# Proceedings hosts whose pages belong to one venue.
_PROCEEDINGS_HOSTS = {
    "proceedings.neurips.cc": "NeurIPS",
    "papers.nips.cc": "NeurIPS",
    "papers.neurips.cc": "NeurIPS",
    "ojs.aaai.org": "AAAI",
    "ijcai.org": "IJCAI",
    "www.ijcai.org": "IJCAI",
    "iclr.cc": "ICLR",
    "jmlr.org": "JMLR",
    "transacl.org": "TACL",
    "distill.pub": "Distill",
}
# Hosts of blog posts and research notes: a venue when the list names none.
_BLOG_HOSTS = (
    "transformer-circuits.pub",
    "alignmentforum.org",
    "lesswrong.com",
    "anthropic.com",
    "openai.com",
    "deepmind.google",
    "substack.com",
    "medium.com",
    "github.io",
    "openaipublic.blob.core.windows.net",  # OpenAI's research notes
    "deepmind.com",
    "research.google",
    "ai.googleblog.com",
    "ai.meta.com",
    "bair.berkeley.edu",
    "crfm.stanford.edu",
    "blog.eleuther.ai",
    "apolloresearch.ai",
    "goodfire.ai",
    "transluce.org",
)
_CODE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")
_DATACITE_ARXIV = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_ACL_DOI = re.compile(r"^10\.18653/v1/(.+)$", re.IGNORECASE)
_IN_PAGE = re.compile(r"^(?:\./)?(?:readme\.md)?#", re.IGNORECASE)  # '#x', './#x', 'README.md#x'
_HF_PAPER = re.compile(r"huggingface\.co/papers/(\d{4}\.\d{4,5})", re.IGNORECASE)


@dataclass
class PaperLink:
    """One link, understood. `kind` is "paper", "code", "anchor" (in-page), "relative" or
    "invalid" (not a web address); only "paper" and "code" links describe a paper."""

    url: str
    kind: str = "paper"
    arxiv: str | None = None
    doi: str | None = None
    openreview: str | None = None
    acl: str | None = None
    venue: str | None = None  # the venue a proceedings page implies
    host_venue_is_weak: bool = False  # True for blog hosts: a fallback, never an override

    @property
    def strong_ids(self) -> dict[str, str]:
        """The identifiers that name one paper and only one."""
        ids = {"arxiv": self.arxiv, "doi": self.doi}
        ids |= {"openreview": self.openreview, "acl": self.acl}
        return {kind: value for kind, value in ids.items() if value}


def understand_link(href: str) -> PaperLink:
    """Classify one href from a list and read every identifier it carries."""
    href = href.strip()
    if _IN_PAGE.match(href):
        return PaperLink(href, "anchor")
    parts = urlsplit(href)
    if parts.scheme.lower() not in {"http", "https"}:
        kind = "relative" if not parts.scheme and not href.startswith("mailto") else "invalid"
        return PaperLink(href, kind)
    if not links.URL.match(href) or any(ch in href for ch in "<>\"' "):
        return PaperLink(href, "invalid")
    info = links.parse_link(href)
    link = PaperLink(
        href, "paper", info.arxiv, info.doi, info.openreview, info.acl and info.acl.strip()
    )
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.strip("/")
    if host in _CODE_HOSTS and len(path.split("/")) >= 2 and not path.lower().endswith(".pdf"):
        link.kind = "code"
        return link
    if match := _HF_PAPER.search(href):
        link.arxiv = match.group(1)
    if link.doi:
        if match := _DATACITE_ARXIV.match(link.doi):
            link.arxiv = links.clean_arxiv(match.group(1))
        elif (match := _ACL_DOI.match(link.doi)) and links.ACL_ID.match(match.group(1)):
            link.acl = match.group(1)
    if link.acl:
        link.venue = anthology_venue(link.acl)
    elif host in _PROCEEDINGS_HOSTS:
        link.venue = _PROCEEDINGS_HOSTS[host]
    elif host == "openaccess.thecvf.com":
        match = re.search(r"/content/(?:[a-z_]*)?(CVPR|ICCV)", parts.path, re.IGNORECASE)
        link.venue = match.group(1).upper() if match else None
    elif host.endswith(_BLOG_HOSTS):
        link.venue, link.host_venue_is_weak = "Blog", True
    return link


def anthology_venue(acl_id: str) -> str | None:
    """The venue an ACL Anthology id belongs to, where the venue list has it.

    '2024.acl-long.483' -> ACL, '2025.findings-emnlp.338' -> EMNLP,
    '2023.blackboxnlp-1.29' -> ACL Workshop, 'P19-1001' -> ACL.
    """
    if re.match(r"^[A-Z]\d{2}-\d{4}$", acl_id):
        return _ANTHOLOGY_LETTERS.get(acl_id[0])
    parts = acl_id.split(".")
    if len(parts) != 3:
        return None
    year, volume = parts[0], parts[1]
    words = volume.split("-")
    if words[0] == "findings" and len(words) > 1:
        return _ANTHOLOGY_CONFERENCES.get(words[1])
    if words[0] == "lrec" and year == "2024":
        return "COLING"  # LREC-COLING 2024 was one joint conference
    if words[0] in _ANTHOLOGY_CONFERENCES:
        return _ANTHOLOGY_CONFERENCES[words[0]]
    if words[0] in _ANTHOLOGY_WORKSHOPS or volume.removesuffix("-1") in _ANTHOLOGY_WORKSHOPS:
        return "ACL Workshop"
    return None


def arxiv_year(arxiv_id: str) -> int | None:
    """The year an arXiv id was first posted: '2406.11717' -> 2024, 'cs/0112017' -> 2001."""
    match = re.match(r"^(\d{2})(\d{2})\.\d{4,5}$", arxiv_id) or re.match(
        r"^[a-z-]+(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}$", arxiv_id
    )
    if not match:
        return None
    yy = int(match.group(1))
    return (1900 if yy >= 91 else 2000) + yy
