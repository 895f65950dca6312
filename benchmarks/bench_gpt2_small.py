"""Benchmark: head-output patching on a GPT-2-small-shaped model: ours vs TransformerLens vs nnsight.

A randomly initialised GPT-2 of GPT-2 small's shape (12 layers, 12 heads, d_model 768, 50,257
tokens; about 124M parameters), on CPU, a 16-token prompt at batch 8 (clean, and a corrupted
copy whose first half is resampled), metric the centred logit of the clean run's top token at
the last position. Every head x position site (or the `--layers` / `--positions` subset given)
is patched from clean into corrupted, in one process, by:

- ours: `causal_attribution.activation_patching`, copies side by side in the batch;
- TransformerLens: `transformer_lens.patching.generic_activation_patch` with the head-vector
  setter (one forward per site; the same loop as `get_act_patch_attn_head_out_by_pos`);
- nnsight: one `trace` per site on the Hugging Face model, writing the clean slice of the
  head's output into the attention projection's input;
- the floor: one plain batched forward over as many rows as all the patched inputs.

Reported: the best and the median time of each over `--repeats` interleaved runs (after one
warm-up site each), `ratio` = the faster peer / ours, `ours_vs_floor`, max |difference| of ours
against each peer, and the peak of live torch CPU allocations of each (torch profiler). The
peers run one forward per site: on a large sweep they run a seeded random sample of
`--peer-sample` sites and their time is scaled to all sites; the floor times `--floor-sample`
of its equal chunks and is scaled the same way (both say so in the output). `--sweep resid`
runs the residual-stream sweep instead (TransformerLens' resid_pre setter; nnsight writes the
block's input). Every tool runs on `--threads` torch threads (default 1).

Usage: .venv/bin/python benchmarks/bench_gpt2_small.py [--sweep heads|resid]
       [--layers 0,6,11|all] [--positions 0,8,15|all] [--threads 1] [--repeats 1]
       [--peer-sample 48] [--floor-sample 4] [--no-memory] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from reference_impls import addressing as A
from reference_impls import registry
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.registry import register_benchmark

SHAPE = {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257, "n_positions": 1024}
DEFAULTS = {
    "batch": 8,
    "pos": 16,
    "threads": 1,  # the same torch thread count for every tool (a shared 2-core machine)
    "repeats": 1,
    "chunk_size": 64,
    "peer_sample": 48,  # sites the peers run (a seeded random sample; all when fewer)
    "floor_sample": 4,  # floor chunks timed (a plain forward per chunk: time scales exactly)
}
# the registered benchmark runs a subset sized for a shared 2-core machine (about a minute there
# when quiet; the peers' 48 forwards are most of it); the script takes --layers all --positions
# all for the whole sweep (about 20 minutes for ours alone, peers and floor sampled)
SUBSET = {"layers": [0, 11], "positions": [15]}


def _bench_patching() -> Any:
    """bench_patching's helpers (benchmarks/ is not a package; the registry imports by path)."""
    registry.discover()
    return sys.modules["mi_atlas_benchmarks.bench_patching"]


def build(directory: Path, seed: int = 0) -> tuple[Any, Any]:
    """The random GPT-2-small-shaped HF model and its bridge (config and tokenizer on disk)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from reference_impls import zoo
    from reference_impls.zoo import checkpoint

    torch.manual_seed(seed)
    config = GPT2Config(**SHAPE, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    hf = GPT2LMHeadModel(config).eval()
    config.save_pretrained(directory)
    words = [f"w{i}" for i in range(SHAPE["vocab_size"] - len(checkpoint.SPECIAL))]
    tokenizer = checkpoint.make_tokenizer(checkpoint.vocabulary(words), directory)
    bridge = zoo._bridge(str(directory), hf, tokenizer, "cpu", compatibility_mode=True)
    return hf, bridge


def _nnsight_loop(hf: Any, clean: Any, corrupted: Any, metric: Any, sites: list[A.Site]) -> Any:
    """One nnsight trace per site: the clean value of the site written into the corrupted run."""
    from nnsight import NNsight

    model = NNsight(hf)
    blocks = model.transformer.h
    d_head = SHAPE["n_embd"] // SHAPE["n_head"]
    layers = sorted({s.layer for s in sites})
    saved: dict[int, Any] = {}
    with torch.no_grad():
        with model.trace(clean):
            for layer in layers:  # in execution order, as nnsight requires
                if sites[0].kind == "head_out":
                    saved[layer] = blocks[layer].attn.c_proj.input.save()
                else:
                    saved[layer] = blocks[layer].input.save()
        values = []
        for s in sites:
            with model.trace(corrupted):
                if s.kind == "head_out":
                    part = slice(s.head * d_head, (s.head + 1) * d_head)
                    blocks[s.layer].attn.c_proj.input[:, s.pos, part] = saved[s.layer][
                        :, s.pos, part
                    ]
                else:
                    blocks[s.layer].input[:, s.pos] = saved[s.layer][:, s.pos]
                logits = model.output.logits.save()
            values.append(float(metric(logits).mean()))
    return torch.tensor(values)


def _tl_loop(bridge: Any, clean: Any, corrupted: Any, metric: Any, sites: list[A.Site]) -> Any:
    """TransformerLens' patching loop over exactly these sites (index_df), one forward each."""
    import pandas as pd
    import transformer_lens.patching as tl_patching

    _, cache = bridge.run_with_cache(clean)
    if sites[0].kind == "head_out":
        frame = pd.DataFrame(
            [(s.layer, s.pos, s.head) for s in sites], columns=["layer", "pos", "head"]
        )
        setter, name = tl_patching.layer_pos_head_vector_patch_setter, "z"
    else:
        frame = pd.DataFrame([(s.layer, s.pos) for s in sites], columns=["layer", "pos"])
        setter, name = tl_patching.layer_pos_patch_setter, "resid_pre"
    with mock.patch.object(tl_patching, "tqdm", lambda rows, **_: rows):  # no progress bar
        return tl_patching.generic_activation_patch(
            bridge, corrupted, cache, lambda lg: metric(lg).mean(), setter, name, index_df=frame
        )


def compare(
    sweep: str = "heads",
    layers: list[int] | None = None,
    positions: list[int] | None = None,
    batch: int = DEFAULTS["batch"],
    pos: int = DEFAULTS["pos"],
    threads: int = DEFAULTS["threads"],
    repeats: int = DEFAULTS["repeats"],
    chunk_size: int = DEFAULTS["chunk_size"],
    peer_sample: int = DEFAULTS["peer_sample"],
    floor_sample: int = DEFAULTS["floor_sample"],
    memory: bool = True,
) -> dict[str, Any]:
    """Ours, TransformerLens, nnsight and the floor on the same model, inputs and sites.

    Ours runs every site. The peers run one forward per site, so on a large sweep they run a
    seeded random sample of `peer_sample` sites and their time is scaled to all sites (time per
    site x sites; their loops do the same work for every site); the differences are taken on
    that sample. The floor is `floor_sample` of its equal chunks, scaled the same way.
    """
    helpers = _bench_patching()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            hf, bridge = build(Path(tmp))
        clean, corrupted, metric = helpers.inputs(bridge, batch, pos)
        layers = list(range(SHAPE["n_layer"])) if layers is None else layers
        positions = list(range(pos)) if positions is None else positions
        if sweep == "heads":
            sites = [
                A.head(layer, h, p)
                for layer in layers
                for p in positions
                for h in range(SHAPE["n_head"])
            ]  # layer, pos, head: TransformerLens' index order
        else:
            sites = [A.resid(layer, p) for layer in layers for p in positions]
        n = len(sites)
        g = torch.Generator().manual_seed(0)
        sample = sorted(torch.randperm(n, generator=g)[: min(peer_sample, n)].tolist())
        peer_sites = [sites[i] for i in sample]
        per_chunk = min(chunk_size, n)  # sites per floor chunk, as our sweep's chunks
        n_chunks = -(-n // per_chunk)
        floor_chunks = min(floor_sample, n_chunks)

        def ours() -> Any:
            return activation_patching(
                bridge, clean, corrupted, sites, metric, chunk_size=chunk_size
            ).values

        def transformer_lens() -> Any:
            return _tl_loop(bridge, clean, corrupted, metric, peer_sites)

        def nnsight() -> Any:
            return _nnsight_loop(hf, clean, corrupted, metric, peer_sites)

        def floor() -> None:
            rows = corrupted.repeat(per_chunk, 1)  # one row per patched input, a full chunk
            with torch.no_grad():
                for _ in range(floor_chunks):
                    bridge(rows, use_cache=False)

        runs = {
            "ours": ours,
            "transformer_lens": transformer_lens,
            "nnsight": nnsight,
            "floor": floor,
        }
        # each measured time times this gives the time for all n sites
        scale = {
            "ours": 1.0,
            "transformer_lens": n / len(sample),
            "nnsight": n / len(sample),
            "floor": n / (floor_chunks * per_chunk),
        }
        # warm-up on one site / one chunk: lazy imports, kernels, our one-time cost model
        activation_patching(bridge, clean, corrupted, sites[:1], metric, chunk_size=chunk_size)
        _tl_loop(bridge, clean, corrupted, metric, sites[:1])
        _nnsight_loop(hf, clean, corrupted, metric, sites[:1])
        times: dict[str, list[float]] = {name: [] for name in runs}
        results: dict[str, Any] = {}
        for _ in range(repeats):  # interleaved: load on a shared machine hits all of them
            for name, fn in runs.items():
                start = time.perf_counter()
                results[name] = fn()
                times[name].append((time.perf_counter() - start) * scale[name])
        best = {name: min(values) for name, values in times.items()}
        median = {name: statistics.median(values) for name, values in times.items()}
        peer = min(("transformer_lens", "nnsight"), key=best.__getitem__)
        out: dict[str, Any] = {
            "model": "random GPT-2 small shape (12 layers, 12 heads, d_model 768, 124M parameters)",
            "sweep": sweep,
            "sites": n,
            "layers": layers,
            "positions": positions,
            "batch": batch,
            "pos": pos,
            "threads": threads,
            "chunk_size": chunk_size,
            "repeats": repeats,
            "peer_sample": len(sample),
            "floor_chunks_timed": f"{floor_chunks} of {n_chunks}",
            "seconds": best,
            "median_seconds": median,
            "all_seconds": times,
            "median_ratio": min(median["transformer_lens"], median["nnsight"]) / median["ours"],
            "median_ours_vs_floor": median["ours"] / median["floor"],
            "baseline": best[peer],
            "baseline_name": peer,
            "ours": best["ours"],
            "floor": best["floor"],
            "ratio": best[peer] / best["ours"],
            "ratio_vs_transformer_lens": best["transformer_lens"] / best["ours"],
            "ratio_vs_nnsight": best["nnsight"] / best["ours"],
            "ours_vs_floor": best["ours"] / best["floor"],
            "max_abs_diff": max(
                float((results["ours"][sample] - results[name].flatten()).abs().max())
                for name in ("transformer_lens", "nnsight")
            ),
            "max_abs_diff_vs": {
                name: float((results["ours"][sample] - results[name].flatten()).abs().max())
                for name in ("transformer_lens", "nnsight")
            },
        }
        if memory:
            out["peak_memory_bytes"] = {name: helpers.peak_bytes(fn) for name, fn in runs.items()}
        return out
    finally:
        torch.set_num_threads(before)


@register_benchmark("patch-gpt2-small")
def patch_gpt2_small() -> dict[str, Any]:
    """Head patching on a random GPT-2-small-shaped model: ours vs TransformerLens vs nnsight (subset)."""
    return compare("heads", **SUBSET)


def _indices(text: str) -> list[int] | None:
    return None if text == "all" else [int(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", choices=["heads", "resid"], default="heads")
    parser.add_argument(
        "--layers", default=",".join(map(str, SUBSET["layers"])), help="'all' or 0,6,11"
    )
    parser.add_argument(
        "--positions", default=",".join(map(str, SUBSET["positions"])), help="'all' or 0,8,15"
    )
    for key in DEFAULTS:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=DEFAULTS[key])
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = compare(
        args.sweep,
        _indices(args.layers),
        _indices(args.positions),
        **{k: getattr(args, k) for k in DEFAULTS},
        memory=not args.no_memory,
    )
    if args.json:
        print(json.dumps(out, indent=2))
        return
    s = out["seconds"]
    print(
        f"{out['sweep']}: {out['sites']} sites (layers {out['layers']}, positions {out['positions']}), "
        f"batch {out['batch']} x {out['pos']} tokens, {out['threads']} threads"
    )
    print(
        f"  ours {s['ours']:.2f} s  TransformerLens {s['transformer_lens']:.2f} s  "
        f"nnsight {s['nnsight']:.2f} s  floor {s['floor']:.2f} s"
    )
    print(
        f"  {out['ratio']:.2f}x the faster peer ({out['baseline_name']}), "
        f"{out['ours_vs_floor']:.2f}x the floor, max |diff| {out['max_abs_diff']:.2e} "
        f"(peers on {out['peer_sample']} sites, floor {out['floor_chunks_timed']} chunks)"
    )
    print(
        f"  medians over {out['repeats']}: {out['median_ratio']:.2f}x the faster peer, "
        f"{out['median_ours_vs_floor']:.2f}x the floor"
    )
    if "peak_memory_bytes" in out:
        print(
            "  peak MB: "
            + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in out["peak_memory_bytes"].items())
        )


if __name__ == "__main__":
    sys.exit(main())
