"""Facts from online sources, for entries that lack them, as `Fact` records for `apply.enrich`.

Each source is used for what it knows best:

- the arXiv API (`arxiv` package) for papers with an arXiv id: the author list in order, the
  first version's date, and the DOI of the published version where the authors gave one;
  up to 100 ids per request, one request every 3 seconds as arXiv's terms ask;
- OpenAlex (`pyalex`) for papers without one: looked up by DOI, else by exact title (a title
  match counts only when the normalised titles are equal and the years at most one apart, and
  its facts are `medium` confidence, so a curator checks them); it also gives ORCID iDs and the
  arXiv id of a work's preprint.

Answers are cached on disk, one JSON file per question, written as each answer arrives: a
rerun reads them instead of asking again, so an interrupted run resumes where it stopped.
Without a network the first failed request raises `Offline`, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import links
from ..paths import published_urls
from ..schema import Paper
from ..yamlio import write_atomic
from .facts import Fact

ARXIV_BATCH = 100
ARXIV_DELAY_S = 3.0  # arXiv API terms: no more than one request every three seconds
OPENALEX_DELAY_S = 0.2  # OpenAlex: at most 10 requests a second
RETRIES = 3


def user_agent() -> str:
    """Who is asking: mi-atlas and, where known, its repository (set once, in mkdocs.yml)."""
    repo = published_urls()[1]
    return f"mi-atlas/0.1 (+{repo})" if repo else "mi-atlas/0.1"


class Offline(RuntimeError):
    """A source could not be reached at all."""


def require_clients() -> None:
    """Import the clients of the `enrich` extra now, so a missing one is named up front."""
    import arxiv  # noqa: F401
    import pyalex  # noqa: F401
    import requests  # noqa: F401
    import tqdm  # noqa: F401


def needs_lookup(paper: Paper) -> bool:
    """An entry online sources can add to: no authors, or no arXiv id and no DOI."""
    return not paper.authors or not (paper.arxiv or links.parse_link(paper.url).arxiv or paper.doi)


class Cache:
    """One JSON file per (source, question) under `root`; nothing is created until a put."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, source: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.root / source / f"{digest}.json"

    def get(self, source: str, key: str):
        path = self._path(source, key)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))["answer"]

    def put(self, source: str, key: str, answer) -> None:
        text = json.dumps({"question": key, "answer": answer}, ensure_ascii=False, indent=1)
        write_atomic(self._path(source, key), text, overwrite=True)


def _polite(call: Callable, host: str, *, delay: float, retries: int = RETRIES):
    """Run one request with retries and exponential backoff on throttling and server errors;
    a connection that cannot be made at all is `Offline`."""
    import requests

    for attempt in range(retries + 1):
        try:
            return call()
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise Offline(
                f"cannot reach {host} ({type(exc).__name__}): check the network connection; "
                "nothing was written"
            ) from None
        except Exception as exc:  # the clients' own HTTP errors (429, 5xx) are worth a retry
            status = getattr(exc, "status", None) or getattr(
                getattr(exc, "response", None), "status_code", None
            )
            if status not in (429, 500, 502, 503, 504) or attempt == retries:
                raise
            time.sleep(max(delay, 1.0) * 2**attempt)
    return None


# -- arXiv ------------------------------------------------------------------------------


def _arxiv_answers(ids: list[str], delay: float) -> dict[str, dict]:
    import arxiv

    client = arxiv.Client(page_size=ARXIV_BATCH, delay_seconds=delay, num_retries=0)
    answers: dict[str, dict] = {}
    search = arxiv.Search(id_list=ids, max_results=len(ids))

    def fetch():
        return list(client.results(search))

    for result in _polite(fetch, "export.arxiv.org", delay=delay) or []:
        short = links.clean_arxiv(result.get_short_id())
        answers[short] = {
            "authors": [author.name for author in result.authors],
            "published": result.published.date().isoformat(),
            "doi": result.doi or None,
            "title": result.title,
        }
    return answers


def _arxiv_fact(paper: Paper, arxiv_id: str, answer: dict) -> Fact:
    return Fact(
        id=paper.id,
        authors=answer["authors"] or None,
        doi=answer.get("doi"),
        published=dt.date.fromisoformat(answer["published"]),
        confidence="high",  # looked up by the entry's own arXiv id
        evidence=f"https://arxiv.org/abs/{arxiv_id}",
    )


# -- OpenAlex ---------------------------------------------------------------------------


def _openalex_setup(mailto: str | None) -> None:
    import pyalex

    pyalex.config.email = mailto
    pyalex.config.user_agent = user_agent() + (f" mailto:{mailto}" if mailto else "")
    pyalex.config.max_retries = RETRIES
    pyalex.config.retry_backoff_factor = 1.0
    pyalex.config.retry_http_codes = [429, 500, 502, 503, 504]


_WORK_FIELDS = ("id", "doi", "title", "publication_year", "authorships", "locations")


def _slim(work: dict) -> dict:
    return {name: work.get(name) for name in _WORK_FIELDS}


def _openalex_by_doi(doi: str, delay: float) -> dict | None:
    import pyalex
    from requests.exceptions import HTTPError

    def fetch():
        try:
            return _slim(dict(pyalex.Works()[f"https://doi.org/{doi}"]))
        except HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return None
            raise

    time.sleep(delay)
    return _polite(fetch, "api.openalex.org", delay=delay)


def _openalex_by_title(title: str, delay: float) -> list[dict]:
    import pyalex

    def fetch():
        works = pyalex.Works().search_filter(title=title).get(per_page=5)
        return [_slim(dict(work)) for work in works]

    time.sleep(delay)
    return _polite(fetch, "api.openalex.org", delay=delay) or []


def _openalex_fact(paper: Paper, work: dict, *, by: str) -> Fact:
    authors, orcids = [], {}
    for authorship in work.get("authorships") or []:
        author = authorship.get("author") or {}
        name = author.get("display_name")
        if not name:
            continue
        authors.append(name)
        if orcid := author.get("orcid"):
            orcids[name] = orcid.removeprefix("https://orcid.org/")
    arxiv_id = None
    for location in work.get("locations") or []:
        if url := location.get("landing_page_url"):
            arxiv_id = arxiv_id or links.parse_link(url).arxiv
    doi = links.clean_doi(work["doi"]) if work.get("doi") else None
    return Fact(
        id=paper.id,
        authors=authors or None,
        orcids=orcids,
        arxiv=arxiv_id,
        doi=doi,
        confidence="high" if by == "doi" else "medium",
        evidence=work.get("id"),
    )


def _title_match(paper: Paper, works: Iterable[dict]) -> dict | None:
    want = links.normalise_title(paper.title)
    for work in works:
        year = work.get("publication_year")
        if (
            links.normalise_title(work.get("title") or "") == want
            and year is not None
            and abs(year - paper.year) <= 1
        ):
            return work
    return None


# -- the lookup -------------------------------------------------------------------------


def lookup(
    papers: list[Paper],
    *,
    sources: tuple[str, ...] = ("arxiv", "openalex"),
    cache_dir: Path,
    limit: int | None = None,
    mailto: str | None = None,
    arxiv_delay: float = ARXIV_DELAY_S,
    openalex_delay: float = OPENALEX_DELAY_S,
) -> tuple[list[Fact], list[str]]:
    """Facts for the entries that lack them (`needs_lookup`), from `sources` in order."""
    from tqdm import tqdm

    cache = Cache(cache_dir)
    wanted = [paper for paper in papers if needs_lookup(paper)][:limit]
    facts: list[Fact] = []
    problems: list[str] = []
    done: set[str] = set()

    if "arxiv" in sources:
        by_id = {}
        for paper in wanted:
            arxiv_id = paper.arxiv or links.parse_link(paper.url).arxiv
            if arxiv_id and not paper.authors:
                by_id[arxiv_id] = paper
        missing = [i for i in by_id if cache.get("arxiv", i) is None]
        with tqdm(
            total=len(missing), desc="arXiv", unit="paper", file=sys.stderr, disable=None
        ) as bar:
            for start in range(0, len(missing), ARXIV_BATCH):
                batch = missing[start : start + ARXIV_BATCH]
                answers = _arxiv_answers(batch, arxiv_delay)
                for arxiv_id in batch:
                    cache.put("arxiv", arxiv_id, answers.get(arxiv_id, {}))
                bar.update(len(batch))
        for arxiv_id, paper in by_id.items():
            answer = cache.get("arxiv", arxiv_id)
            if answer:
                facts.append(_arxiv_fact(paper, arxiv_id, answer))
                done.add(paper.id)
            else:
                problems.append(
                    f"{paper.id}: arXiv has no paper {arxiv_id} (the entry's arxiv or url)"
                )

    if "openalex" in sources:
        _openalex_setup(mailto)
        rest = [paper for paper in wanted if paper.id not in done]
        for paper in tqdm(rest, desc="OpenAlex", unit="paper", file=sys.stderr, disable=None):
            if paper.doi:
                key = f"doi:{paper.doi.lower()}"
                work = cache.get("openalex", key)
                if work is None:
                    work = _openalex_by_doi(paper.doi, openalex_delay) or {}
                    cache.put("openalex", key, work)
                if work:
                    facts.append(_openalex_fact(paper, work, by="doi"))
                continue
            key = f"title:{links.normalise_title(paper.title)}"
            works = cache.get("openalex", key)
            if works is None:
                works = _openalex_by_title(paper.title, openalex_delay)
                cache.put("openalex", key, works)
            if work := _title_match(paper, works):
                facts.append(_openalex_fact(paper, work, by="title"))
    return facts, problems
