"""Benchmark: importing a 20,000-row synthetic awesome list, against markdown-it's bare parse.

Not a test (it is not collected by pytest). It prints, for lists of 5,000, 10,000 and 20,000
table rows: the import's time per row, the bare parse's time (markdown-it, the same parser
configuration the importer uses) and the ratio between the two, both measured in this process
(CPU time, best of `--repeat`). The import's cost must grow linearly: its time per row stays
flat as the list grows. The import includes the parse, and validates every entry.

    .venv/bin/python benchmarks/bench_import_awesome.py [--rows 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import time

from mi_atlas.importers.awesome import import_text
from mi_atlas.importers.markdown_blocks import markdown_parser
from mi_atlas.taxonomy import load_taxonomy

SECTIONS = [
    "Safety and Reliability",
    "Fairness and Bias",
    "Persona and Role",
    "Multilingualism",
    "Knowledge Management",
    "Logic and Reasoning",
    "Efficient Training",
    "Efficient Inference",
]
OBJECTS = ["Residual Stream", "MHA", "MHA & FFN", "FFN", "Neuron", "SAE Feature", "Token Embedding"]
LOCATE = ["Magnitude Analysis", "Causal Attribution", "Probing", "Gradient Detection",
          "Vocab Projection", "Circuit Discovery", "Magitude Analysis", "-"]  # fmt: skip
STEER = ["Amplitude Manipulation", "Targeted Optimization", "Vector Arithmetic", "-"]
VENUES = ["NeurIPS", "ICLR", "ICML", "ACL", "EMNLP", "ArXiv", "TMLR", "COLM", "AAAI"]
WORDS = ("sparse steering circuits neurons heads refusal editing knowledge probing latent "
         "features transformers reasoning arithmetic multilingual bias persona safety layers "
         "attention representation direction vectors pruning experts tokens memory").split()  # fmt: skip


def synthetic_list(rows: int, seed: int = 0) -> str:
    """A survey-shaped list: eight sections of 7-column tables, every row a distinct paper,
    with the survey's kinds of dirt (aliases, placeholders, a duplicate every 500 rows)."""
    rng = random.Random(seed)
    out = ["# Synthetic awesome list", ""]
    per_section = -(-rows // len(SECTIONS))
    made = 0
    for s, section in enumerate(SECTIONS):
        out += [f"### {s + 1}. {section}", ""]
        out += ["| Paper | Object | Localizing Method | Steering Method | Venue | Year | Link |"]
        out += ["| :--- | :--- | :--- | :--- | :---: | :---: | :---: |"]
        for _ in range(per_section):
            if made == rows:
                break
            n = made if made % 500 != 499 else made - 1  # the same paper listed again
            words = random.Random(n)
            title = " ".join(words.choice(WORDS).capitalize() for _ in range(6)) + f" {n}"
            year = 2020 + n % 6
            kind = n % 3
            if kind == 0:
                link = f"https://arxiv.org/abs/{year % 100:02d}{1 + n % 12:02d}.{n:05d}"
            elif kind == 1:
                link = f"https://openreview.net/forum?id=Id{n:08d}"
            else:
                link = f"https://aclanthology.org/{year}.acl-long.{n}/"
            venue = "ACL" if kind == 2 else rng.choice(VENUES)
            out.append(
                f"| **{title}** | {rng.choice(OBJECTS)} | {rng.choice(LOCATE)} | "
                f"{rng.choice(STEER)} | {venue} | {year} | [Link]({link}) |"
            )
            made += 1
        out.append("")
    return "\n".join(out) + "\n"


def best(func, repeat: int) -> float:
    """The best of `repeat` runs in CPU seconds of this process, with the garbage collector
    paused as `timeit` does: the machine is shared, and CPU time ignores other processes."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            func()
            times.append(time.process_time() - start)
        finally:
            gc.enable()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    taxonomy = load_taxonomy()
    md = markdown_parser()
    sizes = [args.rows // 4, args.rows // 2, args.rows]
    print(f"{'rows':>7} {'parse s':>8} {'import s':>9} {'us/row':>8} {'ratio':>6}  accounted")
    per_row = []
    for rows in sizes:
        text = synthetic_list(rows)
        parse = best(lambda text=text: md.parse(text), args.repeat)
        report = None

        def run(text=text):
            nonlocal report
            report = import_text(
                text, source="synthetic.md", source_name="synthetic", taxonomy=taxonomy,
                added=dt.date(2026, 1, 30),
            )  # fmt: skip

        total = best(run, args.repeat)
        accounted = len(report.created) + len(report.merged) + len(report.skipped)
        assert report.items == rows == accounted, (report.items, rows, accounted)
        per_row.append(total / rows)
        print(
            f"{rows:>7} {parse:>8.2f} {total:>9.2f} {total / rows * 1e6:>8.0f} "
            f"{total / parse:>6.2f}  {report.items} items: {len(report.created)} created, "
            f"{len(report.merged)} merged, {len(report.skipped)} skipped"
        )
    growth = per_row[-1] / per_row[0]
    print(
        f"time per row at {sizes[-1]} rows / at {sizes[0]} rows: {growth:.2f} "
        "(1.0 is linear; 4.0 would be quadratic)"
    )


if __name__ == "__main__":
    main()
