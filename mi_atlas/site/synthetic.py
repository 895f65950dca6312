"""Synthetic paper entries for the site's tests and benchmarks: valid, varied and reproducible.

`synthetic_papers(n, seed)` draws titles, authors, abstracts, venues and tags from small word
lists with a seeded generator, so the same call always gives the same index; every entry passes
the schema and no two entries share an arXiv id, URL or normalised title.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from ..entries import write_entry
from ..schema import Paper
from ..taxonomy import Taxonomy, load_taxonomy

_ADJECTIVES = (
    "sparse linear causal robust faithful latent hidden monosemantic steerable emergent "
    "universal multilingual factual compositional scalable efficient minimal targeted"
).split()
_NOUNS = (
    "features directions circuits heads neurons representations mechanisms interventions "
    "probes edits vectors subspaces activations attributions components pathways"
).split()
_TOPICS = (
    "refusal truthfulness sentiment arithmetic translation gender bias factual recall "
    "induction syntax toxicity persona reasoning pruning memorisation jailbreaks"
).split()
_VERBS = "locating steering editing tracing probing ablating patching amplifying".split()
_FIRST = (
    "Ada Alan Grace Kurt Emmy John Barbara Claude Edsger Donald Frances Tim Radia Leslie "
    "Yoshua Fei Andrew Daphne Judea Cynthia Ilya Chris Neel Anna Lee Wei Priya Omar Sara Jun"
).split()
_LAST = (
    "Lovelace Turing Hopper Godel Noether Neumann Liskov Shannon Dijkstra Knuth Allen "
    "Berners Perlman Lamport Bengio Li Ng Koller Pearl Dwork Sutskever Olah Nanda Kim Chen "
    "Patel Haddad Novak Okafor Silva Tanaka Moreau Fischer Rossi"
).split()
_SENTENCES = (
    "We study how {noun} in language models encode {topic}.",
    "Using {verb} on {adj} {noun}, we find a small set of components that control {topic}.",
    "Interventions on these {noun} change model behaviour while leaving other skills intact.",
    "Our method scales to models with billions of parameters and runs in minutes.",
    "Experiments on {count} benchmarks show consistent gains over fine-tuning baselines.",
    "The resulting {adj} {noun} transfer across prompts, tasks and model sizes.",
)
_VENUES = ("NeurIPS", "ICLR", "ICML", "ACL", "EMNLP", "NAACL", "COLM", "TMLR", "arXiv", "Blog")


def synthetic_papers(
    n: int, *, seed: int = 0, taxonomy: Taxonomy | None = None, start: dt.date | None = None
) -> list[Paper]:
    """`n` valid, distinct entries; entry k gets the arXiv id 2401.{k:05d}-style and its own title."""
    taxonomy = taxonomy or load_taxonomy()
    rng = random.Random(seed)
    start = start or dt.date(2025, 1, 1)
    leaves = {axis: taxonomy[axis].leaf_ids for axis in ("objects", "locate", "steer", "goals")}
    papers = []
    for k in range(n):
        adj, noun, topic, verb = (
            rng.choice(_ADJECTIVES),
            rng.choice(_NOUNS),
            rng.choice(_TOPICS),
            rng.choice(_VERBS),
        )
        # The serial number keeps titles distinct however the words fall.
        title = f"{verb.capitalize()} {adj} {noun} for {topic} ({k + 1})"
        authors = [f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(rng.randint(1, 6))]
        words = {"adj": adj, "noun": noun, "topic": topic, "verb": verb, "count": rng.randint(2, 9)}
        abstract = " ".join(s.format(**words) for s in rng.sample(_SENTENCES, 4))
        year = rng.randint(2019, 2026)
        month = rng.randint(1, 12)
        arxiv = f"{year % 100:02d}{month:02d}.{k % 100000:05d}"
        # One tag on most axes, sometimes two; steering is sometimes absent, as in the survey.
        tags = {
            axis: rng.sample(ids, rng.choice((0, 1, 1, 2) if axis == "steer" else (1, 1, 1, 2)))
            for axis, ids in leaves.items()
        }
        papers.append(
            Paper.model_validate(
                {
                    "id": f"{year}-synthetic-{k + 1:05d}",
                    "title": title,
                    "year": year,
                    "venue": rng.choice(_VENUES),
                    "url": f"https://arxiv.org/abs/{arxiv}",
                    "arxiv": arxiv,
                    "code": f"https://github.com/example/repo-{k + 1}" if k % 3 == 0 else None,
                    "authors": authors,
                    "abstract": abstract,
                    **tags,
                    "added": (start + dt.timedelta(days=k % 400)).isoformat(),
                },
                context={"taxonomy": taxonomy},
            )
        )
    return papers


def write_papers(papers: list[Paper], papers_dir: Path) -> Path:
    """Write each entry as `papers_dir/<id>.yaml` (the folder is created if needed)."""
    papers_dir.mkdir(parents=True, exist_ok=True)
    for paper in papers:
        write_entry(paper, papers_dir)
    return papers_dir
