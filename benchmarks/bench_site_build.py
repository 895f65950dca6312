"""Benchmark: the full site build for N synthetic papers against a bare mkdocs-material build.

Ours: `mkdocs build` of this repository's mkdocs.yml with the mi-atlas plugin reading N
synthetic entries (so N paper pages, the node pages, matrices, explorer data, downloads and
feeds). Baseline: `mkdocs build` of N plain out-of-nav pages (one heading and the same abstract
paragraph each) with the same theme and markdown settings and no mi-atlas plugin. Both run as
fresh `mkdocs` processes in this run, alternating, and each is timed by the CPU time it used
(user + system; the machine is shared, so wall time is mostly noise); the best of `--repeat`
runs is kept.
Target: ours / baseline <= 1.5x. Paper pages are left out of Material's site search (the
explorer searches them), so the baseline is also built without the search plugin and that
ratio printed too.

Usage: .venv/bin/python benchmarks/bench_site_build.py [N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from mi_atlas.site.synthetic import synthetic_papers, write_papers

REPO = Path(__file__).resolve().parent.parent


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml, taking each `!ENV [NAME, default]` as its default."""


_ConfigLoader.add_constructor("!ENV", lambda loader, node: loader.construct_sequence(node)[-1])


def bare_project(folder: Path, papers, *, search: bool = True) -> Path:
    """A mkdocs-material project with one page per paper, outside the nav."""
    site_config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), _ConfigLoader)
    docs = folder / "docs"
    (docs / "papers").mkdir(parents=True)
    (docs / "index.md").write_text("# Home\n\nA bare site.\n", encoding="utf-8")
    for paper in papers:
        (docs / "papers" / f"{paper.id}.md").write_text(
            f"# {paper.title}\n\n{paper.abstract}\n", encoding="utf-8"
        )
    config = {
        "site_name": "bare",
        "use_directory_urls": site_config.get("use_directory_urls", True),
        "theme": site_config["theme"],
        "markdown_extensions": site_config.get("markdown_extensions", []),
        "plugins": ["search"] if search else [],
        "nav": ["index.md"],
        "not_in_nav": "/papers/\n",
    }
    path = folder / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build(config: Path, site: Path, env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one `mkdocs build` process.

    CPU time rather than wall time: the machine is shared, and what another process does to
    the wall clock is noise here; the work the build itself does is what is compared.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config), "-d", str(site)],
        check=True,
        env=env,
        cwd=config.parent,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        papers = synthetic_papers(args.n)
        write_papers(papers, tmp / "papers")
        bare = bare_project(tmp / "bare", papers)
        # Our paper pages are left out of Material's site search (the explorer searches them);
        # a bare build without search shows what that choice alone saves.
        bare_unsearched = bare_project(tmp / "bare-unsearched", papers, search=False)
        env = {
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "MI_ATLAS_PAPERS": str(tmp / "papers"),
            # The run documents (node pages, scoreboard) do not grow with the papers, so they
            # stay out of this benchmark of how the site scales with the index.
            "MI_ATLAS_RUNS": str(tmp / "no-runs"),
        }
        ours_times, bare_times, unsearched_times = [], [], []
        for _ in range(args.repeat):
            bare_times.append(build(bare, tmp / "bare-site", env))
            ours_times.append(build(REPO / "mkdocs.yml", tmp / "site", env))
            unsearched_times.append(build(bare_unsearched, tmp / "bare-unsearched-site", env))
        ours, baseline, unsearched = min(ours_times), min(bare_times), min(unsearched_times)
        pages = sum(1 for _ in (tmp / "site").rglob("*.html"))
        print(f"papers: {args.n}")
        print(f"bare mkdocs-material, {args.n} plain pages: {baseline:.1f} s CPU")
        print(f"mi-atlas site ({pages} HTML pages, data, downloads, feeds): {ours:.1f} s CPU")
        print(f"ratio full build / bare build: {ours / baseline:.2f}x (target <= 1.5x)")
        print(
            f"bare build without Material's search plugin: {unsearched:.1f} s CPU; "
            f"ratio full build / that: {ours / unsearched:.2f}x"
        )


if __name__ == "__main__":
    main()
