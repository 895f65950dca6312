"""Benchmark: the explorer's filter-and-search latency per keystroke over N papers, in Chromium.

Builds the site for N synthetic papers (or uses `--site DIR`, a site already built), opens the
explorer in headless Chromium (Debian's /usr/bin/chromium) and types realistic queries one
character at a time, with and without facet filters ticked. For each keystroke it measures the
time from the input event to the end of the update, layout included (the page's own handler
runs synchronously; a forced reflow counts style and layout). Prints the median and p95
(target: median < 50 ms) and the size of the explorer's data gzipped, as a server sends it.

Usage: .venv/bin/python benchmarks/bench_explorer.py [N] [--site DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mi_atlas.site.synthetic import synthetic_papers, write_papers

REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "sparse features",
    "refusal direction",
    "nanda",
    "causal patching heads",
    "factual recall editing",
    "jailbreaks",
    "steering multilingual neurons",
    "lovelace turing",
]
FILTER_SETS = [
    [],
    ["#mi-f-objects-attention-head"],
    ["#mi-f-locate-causal-attribution", "#mi-f-goals-alignment"],
]
TYPE_SCRIPT = """async (queries) => {
  const input = document.getElementById("mi-q");
  const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const times = [];
  for (const q of queries) {
    input.value = "";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await frame();
    for (let i = 1; i <= q.length; i++) {
      const start = performance.now();
      input.value = q.slice(0, i);
      input.dispatchEvent(new Event("input", { bubbles: true }));
      document.body.offsetHeight; // style and layout of the update
      times.push(performance.now() - start);
      await frame();
    }
  }
  return times;
}"""


def build_site(n: int, folder: Path) -> Path:
    write_papers(synthetic_papers(n), folder / "papers")
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "MI_ATLAS_PAPERS": str(folder / "papers"),
        "MI_ATLAS_RUNS": str(folder / "no-runs"),  # the explorer does not show run results
    }
    site = folder / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "-q",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        check=True,
        env=env,
    )
    return site


def gz(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def measure(site: Path) -> None:
    from playwright.sync_api import sync_playwright

    assets = site / "assets" / "mi-atlas"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        start = time.perf_counter()
        page.goto((site / "explorer.html").as_uri())
        page.wait_for_selector("#mi-explorer[data-ready='true']")
        ready = time.perf_counter() - start
        page.wait_for_selector("#mi-explorer[data-index-ms]")
        index_ms = int(page.get_attribute("#mi-explorer", "data-index-ms"))
        papers = page.evaluate("window.MI_ATLAS.papers.length")
        times: list[float] = []
        for filters in FILTER_SETS:
            if page.is_enabled("#mi-clear"):
                page.click("#mi-clear")
            for selector in filters:
                page.check(selector)
            times += page.evaluate(TYPE_SCRIPT, QUERIES)
        browser.close()

    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"papers in the explorer: {papers}")
    print(
        f"page ready (data parsed, first results shown): {ready * 1000:.0f} ms; search index built in {index_ms} ms"
    )
    print(
        f"keystrokes measured: {len(times)} ({len(QUERIES)} queries x {len(FILTER_SETS)} filter sets)"
    )
    print(f"filter-and-search latency per keystroke: median {statistics.median(times):.1f} ms, "
          f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms (target median < 50 ms)")  # fmt: skip
    for name in ("papers.js", "bibtex.js", "explorer.js", "vendor/minisearch.js"):
        path = assets / name
        print(f"{name}: {path.stat().st_size / 1e6:.2f} MB, gzipped {gz(path) / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--site", type=Path, help="an already built site (skips the build)")
    args = parser.parse_args()
    if args.site:
        measure(args.site)
        return
    with tempfile.TemporaryDirectory() as tmp:
        measure(build_site(args.n, Path(tmp)))


if __name__ == "__main__":
    main()
