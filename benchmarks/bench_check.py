"""Benchmark: `mi-atlas check` on 10,000 synthetic entries against a bare CSafeLoader load.

Both runs read the same files in the same process; the ratio is check time / bare load time
(target <= 1.5x). Usage: .venv/bin/python benchmarks/bench_check.py [N]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mi_atlas.entries import entry_text
from mi_atlas.index import load_index
from mi_atlas.schema import Paper
from mi_atlas.taxonomy import load_taxonomy


def synthetic(n: int, folder: Path) -> None:
    rng = random.Random(0)
    tax = load_taxonomy()
    words = "sparse refusal circuits neurons steering heads probing editing factual language bias safety".split()
    venues = sorted(tax.venues.by_name)
    for i in range(n):
        paper = Paper.model_validate(
            {
                "id": f"2025-synthetic-{i}",
                "title": " ".join(rng.choices(words, k=8)) + f" {i}",
                "year": rng.randint(2019, 2026),
                "venue": rng.choice(venues),
                "url": f"https://example.org/papers/{i}",
                "arxiv": f"25{rng.randint(1, 12):02d}.{i:05d}",
                "authors": [f"Author {rng.randint(0, 999)}" for _ in range(rng.randint(1, 8))],
                "abstract": " ".join(rng.choices(words, k=120)),
                "objects": rng.sample(tax["objects"].ids, 2),
                "locate": rng.sample(tax["locate"].ids, 1),
                "steer": rng.sample(tax["steer"].ids, 1),
                "goals": rng.sample(tax["goals"].leaf_ids, 1),
                "added": "2026-01-30",
            },
            context={"taxonomy": tax},
        )
        (folder / f"{paper.id}.yaml").write_text(entry_text(paper), encoding="utf-8")


def bare_load(folder: Path) -> int:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    count = 0
    for path in sorted(folder.glob("*.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        count += 1
    return count


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int = 10_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synthetic(n, folder)
        load_taxonomy()  # warm: the taxonomy is loaded once per process either way
        baseline = best_of(lambda: bare_load(folder))
        index_holder = {}
        ours = best_of(lambda: index_holder.update(index=load_index(folder)))
        index = index_holder["index"]
        assert index.ok and len(index.papers) == n, index.problems[:3]
        print(f"entries: {n}")
        print(f"bare yaml.CSafeLoader load: {baseline:.2f} s ({baseline / n * 1e6:.0f} us/entry)")
        print(f"mi-atlas check (load_index): {ours:.2f} s ({ours / n * 1e6:.0f} us/entry)")
        print(f"ratio check / bare load: {ours / baseline:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
