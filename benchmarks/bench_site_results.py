"""Benchmark: the site build with every method's zoo result from the cache, against no results.

Ours: `mkdocs build` of this repository's mkdocs.yml and papers/ with `results: compute` and a
warm cache (what every rebuild after the first does: each node page gets its source, command,
figures and numbers, the scoreboard is made, each run's JSON is written; nothing is run).
Baseline: the same build with `results: off` (node pages say where results would be).
A first, untimed build fills the cache (it runs whatever is missing and says how long that
took). Then both builds run as fresh `mkdocs` processes, alternating, each timed by the CPU time
it used (user + system: the machine is shared, wall time is mostly noise); the best of
`--repeat` runs is kept. A round whose build had to run a method (the code changed meanwhile)
is not counted and is run again. Target: ours / baseline <= 1.2x.

Usage: .venv/bin/python benchmarks/bench_site_results.py [--repeat R] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAN = re.compile(r"mi-atlas: ran (\S+) on (\S+) in ([\d.]+) s")


def build(site: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, log) of one `mkdocs build` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(REPO / "mkdocs.yml"), "-d", str(site)],
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO / ".mi-atlas-cache" / "results",
        help="results cache (default: the one `mkdocs build` uses)",
    )
    args = parser.parse_args()
    base_env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MI_ATLAS_RESULTS_CACHE": str(args.cache)}
    on = {**base_env, "MI_ATLAS_RESULTS": "compute"}
    off = {**base_env, "MI_ATLAS_RESULTS": "off"}

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        cpu, wall, log = build(site, on)
        ran = RAN.findall(log)
        print(f"warm-up build (fills the cache): {cpu:.1f} s CPU, {wall:.1f} s wall")
        for name, model, seconds in ran:
            print(f"  ran {name} on {model}: {float(seconds):.1f} s")
        if not ran:
            print("  every result was already cached")
        shown = sorted(p.stem for p in (site / "results").glob("*.json"))
        print(f"results on the site: {len(shown)} ({', '.join(shown)})")

        ours_times, baseline_times, retries = [], [], 0
        while len(ours_times) < args.repeat:
            baseline, _, _ = build(site, off)
            cpu, _, log = build(site, on)
            ran = RAN.findall(log)
            if ran:
                # The code changed while this ran (others commit to the tree): that build
                # recomputed what it had to, as it should, and filled the cache; time again.
                retries += 1
                print(f"  code changed during the benchmark, reran {[r[0] for r in ran]}")
                if retries > 5:
                    sys.exit("the cache never held for a whole round: is the tree being edited?")
                continue
            baseline_times.append(baseline)
            ours_times.append(cpu)
        ours, baseline = min(ours_times), min(baseline_times)
        print(f"build with results off: {baseline:.2f} s CPU (runs: {baseline_times})")
        print(f"build with cached results: {ours:.2f} s CPU (runs: {ours_times})")
        print(f"ratio cached results / results off: {ours / baseline:.3f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
