"""Benchmark: batched activation patching against TransformerLens' one-forward-per-site loops.

In one process, on the same zoo model, inputs and metric:
- `patch-head-out`: our sweep over every (layer, position, head) output against
  `transformer_lens.patching.get_act_patch_attn_head_out_by_pos`;
- `patch-resid-pre`: our sweep over every (layer, position) of the residual stream against
  `get_act_patch_resid_pre`.
Each reports the time of both (`baseline` = TransformerLens, `ours`), `ratio` = baseline / ours,
`max_abs_diff` between the two result grids, and the floor: one plain batched forward over the
same number of patched inputs (N sites x batch rows, in chunks of the same size as ours), with
`ours_vs_floor` = ours / floor. Peak memory (CPU tensor allocations, from the torch profiler)
is measured for our sweep at several chunk sizes, to show it grows with the chunk, not with N.
Times are the best of `repeats` interleaved runs, on `threads` torch threads.

Usage: .venv/bin/python benchmarks/bench_patching.py [patch-head-out|patch-resid-pre]
       [--models induction,facts] [--batch 8] [--pos 12] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate._batched_patch import DEFAULT_CHUNK
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import CenteredLogit
from reference_impls.registry import register_benchmark

DEFAULTS = {"batch": 8, "pos": 12, "threads": 1, "repeats": 3, "chunk_size": DEFAULT_CHUNK}


def inputs(
    model: Any, batch: int, pos: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Clean tokens, corrupted tokens (first half resampled) and a centred-logit metric.

    Random words of the model's vocabulary after <bos>; the answer is the clean run's own top
    prediction at the last position, so the metric is large on clean and small on corrupted.
    """
    g = torch.Generator().manual_seed(seed)
    vocab = model.cfg.d_vocab
    clean = torch.randint(3, vocab, (batch, pos), generator=g)
    clean[:, 0] = 1  # <bos>
    corrupted = clean.clone()
    half = pos // 2
    corrupted[:, 1:half] = torch.randint(3, vocab, (batch, half - 1), generator=g)
    with torch.no_grad():
        answer = model(clean)[:, -1].argmax(-1)
    return clean, corrupted, CenteredLogit(answer)


def _sweep(kind: str, model: Any, pos: int) -> tuple[list[A.Site], Callable, Callable]:
    """Our sites, TransformerLens' function, and how to lay our values out like theirs."""
    import transformer_lens.patching as tl_patching

    d = A.dims(model)
    if kind == "patch-head-out":
        sites = A.heads(model, "out", positions=pos)  # layer, head, pos

        def layout(values: torch.Tensor) -> torch.Tensor:
            return values.reshape(d.n_layers, d.n_heads, pos).permute(0, 2, 1)  # layer, pos, head

        return sites, tl_patching.get_act_patch_attn_head_out_by_pos, layout
    sites = A.layers(model, "resid_pre", positions=pos)  # layer, pos
    return sites, tl_patching.get_act_patch_resid_pre, lambda v: v.reshape(d.n_layers, pos)


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of live CPU tensor memory allocated while `fn` runs, from torch profiler events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def compare(
    kind: str,
    model_name: str,
    batch: int = DEFAULTS["batch"],
    pos: int = DEFAULTS["pos"],
    threads: int = DEFAULTS["threads"],
    repeats: int = DEFAULTS["repeats"],
    chunk_size: int = DEFAULTS["chunk_size"],
    memory: bool = True,
) -> dict[str, Any]:
    """One model: TransformerLens' loop, our batched sweep and the floor, timed in this process."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = zoo.load(model_name)
        pos = min(pos, model.cfg.n_ctx)  # arithmetic's context is 10 tokens
        clean, corrupted, metric = inputs(model, batch, pos)
        sites, tl_function, layout = _sweep(kind, model, pos)
        n = len(sites)

        def ours() -> torch.Tensor:
            return activation_patching(
                model, clean, corrupted, sites, metric, chunk_size=chunk_size
            ).values

        def theirs() -> torch.Tensor:
            import transformer_lens.patching as tl_patching

            # TransformerLens is handed the clean cache; producing it is timed, as ours does.
            # Its progress bar is switched off, so the baseline is not charged for drawing it.
            _, clean_cache = model.run_with_cache(clean)
            with mock.patch.object(tl_patching, "tqdm", lambda rows, **_: rows):
                return tl_function(model, corrupted, clean_cache, lambda lg: metric(lg).mean())

        def floor() -> None:
            rows = corrupted.repeat(n, 1)  # (n * batch, pos): one row per patched input
            with torch.no_grad():
                for start in range(0, len(rows), chunk_size * batch):
                    model(rows[start : start + chunk_size * batch], use_cache=False)

        ours(), theirs(), floor()  # warm-up: allocator, kernels, lazy imports
        times: dict[str, list[float]] = {"ours": [], "baseline": [], "floor": []}
        for _ in range(repeats):  # interleaved, so load on a shared machine hits all three
            for name, fn in (("baseline", theirs), ("ours", ours), ("floor", floor)):
                start = time.perf_counter()
                result = fn()
                times[name].append(time.perf_counter() - start)
                if name == "ours":
                    our_values = result
                elif name == "baseline":
                    their_values = result
        best = {name: min(values) for name, values in times.items()}
        out: dict[str, Any] = {
            "model": model_name,
            "architecture": zoo.card(model_name)["architecture"],
            "sites": n,
            "batch": batch,
            "pos": pos,
            "threads": threads,
            "chunk_size": chunk_size,
            "baseline": best["baseline"],
            "ours": best["ours"],
            "floor": best["floor"],
            "ratio": best["baseline"] / best["ours"],
            "ours_vs_floor": best["ours"] / best["floor"],
            "max_abs_diff": float((layout(our_values) - their_values).abs().max()),
            "median": {name: statistics.median(values) for name, values in times.items()},
        }
        if memory:
            out["peak_memory_bytes"] = {
                "ours_by_chunk": {
                    str(c): peak_bytes(
                        lambda c=c: activation_patching(
                            model, clean, corrupted, sites, metric, chunk_size=c
                        )
                    )
                    for c in sorted({8, 32, chunk_size})
                },
                "floor_one_chunk": peak_bytes(floor),
            }
        return out
    finally:
        torch.set_num_threads(before)


def run_all(kind: str, models: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """`compare` on every zoo model (or `models`); totals and the worst case at the top level."""
    models = models or zoo.names()
    per_model = {
        name: compare(kind, name, memory=(i == 0), **options) for i, name in enumerate(models)
    }
    results = list(per_model.values())
    baseline = sum(r["baseline"] for r in results)
    ours = sum(r["ours"] for r in results)
    floor = sum(r["floor"] for r in results)
    return {
        "baseline": baseline,
        "ours": ours,
        "ratio": baseline / ours,
        "max_abs_diff": max(r["max_abs_diff"] for r in results),
        "floor": floor,
        "ours_vs_floor": ours / floor,
        "min_ratio": min(r["ratio"] for r in results),
        "max_ours_vs_floor": max(r["ours_vs_floor"] for r in results),
        "peak_memory_bytes": results[0]["peak_memory_bytes"],
        "peak_memory_model": results[0]["model"],
        "models": per_model,
        "baseline_function": {
            "patch-head-out": "transformer_lens.patching.get_act_patch_attn_head_out_by_pos",
            "patch-resid-pre": "transformer_lens.patching.get_act_patch_resid_pre",
        }[kind],
        "options": {**DEFAULTS, **options},
    }


@register_benchmark("patch-head-out")
def patch_head_out() -> dict[str, Any]:
    """Batched head-output patching over every (layer, pos, head) vs TransformerLens, all zoo models."""
    return run_all("patch-head-out")


@register_benchmark("patch-resid-pre")
def patch_resid_pre() -> dict[str, Any]:
    """Batched residual-stream patching over every (layer, pos) vs TransformerLens, all zoo models."""
    return run_all("patch-resid-pre")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "name", nargs="?", default="patch-head-out", choices=["patch-head-out", "patch-resid-pre"]
    )
    parser.add_argument("--models", default=None, help="comma-separated zoo models (default: all)")
    for key in ("batch", "pos", "threads", "repeats", "chunk_size"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=DEFAULTS[key])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    options = {k: getattr(args, k) for k in ("batch", "pos", "threads", "repeats", "chunk_size")}
    out = run_all(args.name, args.models.split(",") if args.models else None, **options)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, r in out["models"].items():
        print(
            f"{name:16s} {r['sites']:4d} sites  TL {r['baseline'] * 1e3:8.1f} ms  ours {r['ours'] * 1e3:7.1f} ms"
            f"  floor {r['floor'] * 1e3:7.1f} ms  ratio {r['ratio']:5.1f}x  vs floor {r['ours_vs_floor']:4.2f}"
            f"  max|diff| {r['max_abs_diff']:.1e}"
        )
    print(
        f"total: ratio {out['ratio']:.1f}x (worst {out['min_ratio']:.1f}x), ours/floor {out['ours_vs_floor']:.2f}"
        f" (worst {out['max_ours_vs_floor']:.2f}), max|diff| {out['max_abs_diff']:.1e}"
    )
    print(f"peak memory on {out['peak_memory_model']} (bytes): {out['peak_memory_bytes']}")


if __name__ == "__main__":
    sys.exit(main())
