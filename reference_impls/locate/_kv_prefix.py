"""Skip the unpatched position prefix of patched copies: they reuse the unpatched run's keys/values.

On a causal model, patching any site at position p leaves every position before p unchanged,
in every block: those positions never attend to p. A copy patched at positions >= p therefore
needs to compute only positions p..n-1, attending to the unpatched run's cached keys and values
for positions < p (a KV prefix, the way incremental decoding reuses a prompt). Combined with
joining at the patched block (`growing_batch`), a copy patched at (layer L, position p) costs
about (n_layers - L) x (n - p) token-blocks instead of n_layers x n.

This module holds the pieces `patch_sweep` builds that from: which patch sets may skip
(`prefix_of`), how copies are grouped into forwards that share one offset (`plan_chunks`), and
the hooks that capture the unpatched run's keys/values and hand each attention its prefix
(`kv_capture`, `kv_prefix`). The bridge's attention components extend K/V through
`_update_kv_cache(k, v, past_key_values=...)` (TransformerLens' own KV-cache entry point); the
prefix object given there prepends the cached positions, while Hugging Face gets a cache of the
same length so that it derives positions, rotary angles and the causal mask for p..n-1.

Reference: Heimersheim & Nanda 2024, "How to use and interpret activation patching" (patching
position p cannot affect earlier positions in a causal model).
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from reference_impls.addressing import Site

# kinds whose hooked activation is (batch, pos, ...) with every position a query position, so a
# copy's forward can start at an offset and index the site at pos - offset (`pattern` has the
# key axis too; an SAE hook's layout is the SAE's business)
POSITIONAL = {
    "embed",
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "head_out",
    "q",
    "k",
    "v",
    "neuron",
}


def prefix_of(sites: Sequence[Site]) -> int:
    """How many leading positions a copy patched at `sites` shares with the unpatched run.

    The smallest patched position, when every site has one and is of a `POSITIONAL` kind;
    0 (nothing to skip) otherwise. Sound only on a causal model: the caller checks that.
    """
    if not sites or any(s.pos is None or s.kind not in POSITIONAL for s in sites):
        return 0
    return min(s.pos for s in sites)


def supports_kv_prefix(model: Any) -> bool:
    """Whether the model is a wrapped Hugging Face model (which takes a cache and derives positions
    and the causal mask from it) whose every attention extends K/V through TransformerLens' cache
    entry point."""
    return getattr(model, "original_model", None) is not None and all(
        hasattr(block.attn, "_update_kv_cache")
        and getattr(block.attn, "_layer_idx", None) is not None
        for block in model.blocks
    )


def plan_chunks(
    prefixes: Sequence[int],
    joins: Sequence[int],
    order: Sequence[int],
    chunk_size: int,
    cost: ForwardCost,
    carriers: int,
) -> list[list[int]]:
    """Split `order` (copy indices) into forwards; each forward starts at its smallest prefix.

    The first forward runs from position 0 whatever its copies' prefixes: it also records the
    unpatched keys/values and the source activations for the others; when that costs more than
    it saves, it runs with no copies (the plan then starts with an empty chunk). Copies are taken in
    (prefix, join) order; a forward over copies at offset o costs its fixed overhead, the
    unpatched rows that carry it (`carriers` groups in the first forward, 1 after) over
    (n - o) positions and n_layers blocks, and per copy (n - o) x (n_layers - join)
    token-blocks. Starting a new forward at each new prefix saves the copies' skipped positions
    but pays another overhead and carrier: a dynamic programme over the distinct prefixes picks
    the cheapest grouping, each group cut into chunks of at most `chunk_size` copies.
    """
    ranked = sorted(order, key=lambda i: (prefixes[i], joins[i]))
    if not ranked:
        return []
    bounds = [0] + [
        k for k in range(1, len(ranked)) if prefixes[ranked[k]] != prefixes[ranked[k - 1]]
    ]
    bounds.append(len(ranked))
    layers = cost.n_layers

    def price(lo: int, hi: int, forced: bool) -> tuple[float, list[list[int]]]:
        copies = ranked[bounds[lo] : bounds[hi]]
        chunks = [copies[k : k + chunk_size] for k in range(0, len(copies), chunk_size)]
        total = 0.0
        for n, chunk in enumerate(chunks):
            first = forced and lo == 0 and n == 0
            span = cost.n_pos - (0 if first else prefixes[chunk[0]])
            blocks = (carriers if first else 1) * layers
            blocks += sum(layers - max(joins[i], 0) for i in chunk)
            total += cost.fixed + cost.batch * span * blocks
        return total, chunks

    def plan(forced: bool) -> tuple[float, list[list[int]]]:
        groups = len(bounds) - 1
        best: list[tuple[float, list[list[int]]]] = [(0.0, [])]
        for hi in range(1, groups + 1):
            options = []
            for lo in range(hi):
                total, chunks = price(lo, hi, forced)
                options.append((best[lo][0] + total, best[lo][1] + chunks))
            best.append(min(options, key=lambda option: option[0]))
        return best[groups]

    # either the first chunk of copies rides in the first (full-length) forward, or that
    # forward runs alone (an empty first chunk) and every chunk starts at its own prefix
    with_copies = plan(forced=True)
    alone = plan(forced=False)
    alone = (alone[0] + cost.fixed + cost.batch * cost.n_pos * carriers * layers, [[], *alone[1]])
    chosen = min(with_copies, alone, key=lambda option: option[0])[1]
    return [sorted(chunk, key=joins.__getitem__) for chunk in chosen]


@dataclass(frozen=True)
class ForwardCost:
    """A forward's cost model: `fixed` overhead, in the time of one row-token through one block."""

    fixed: float
    batch: int
    n_pos: int
    n_layers: int


_FIXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_cost(model: Any, batch: int, n_pos: int) -> ForwardCost:
    """Measure (once per model) a forward's fixed overhead against its per-token compute.

    A one-token forward is almost all overhead (Python, hooks, kernel launches); a forward of
    `batch` x `n_pos` tokens adds their compute. Their times give the overhead in row-token-
    blocks: thousands on a tiny zoo model on a CPU (where splitting a sweep rarely pays), a few
    on GPT-2 small. Only the chunk plan depends on it, never a result.
    """
    layers = model.cfg.n_layers
    if model not in _FIXED:
        tokens = torch.zeros(batch, n_pos, dtype=torch.long, device=model.cfg.device)
        with torch.inference_mode():
            model(tokens[:1, :1])  # warm-up
            start = time.perf_counter()
            model(tokens[:1, :1])
            one = time.perf_counter() - start
            start = time.perf_counter()
            model(tokens)
            full = time.perf_counter() - start
        per_token_block = max(full - one, 1e-9) / (batch * n_pos * layers)
        _FIXED[model] = one / per_token_block
    return ForwardCost(_FIXED[model], batch, n_pos, layers)


class _Capture:
    """Stands in for a KV cache in the full forward: keeps the first `rows` rows' K/V per layer."""

    def __init__(self, rows: int):
        self.rows = rows
        self.keys: dict[int, Tensor] = {}
        self.values: dict[int, Tensor] = {}

    def update(self, k: Tensor, v: Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        # k, v: (rows, kv_heads, pos, d_head), after rotary embeddings
        self.keys[layer_idx] = k[: self.rows]
        self.values[layer_idx] = v[: self.rows]
        return k, v


class _Prefix:
    """Prepends the unpatched run's first `offset` positions to every row's K/V in a forward.

    Every row of the suffix forward (the unpatched carrier and each copy) shares the unpatched
    run's prefix, so the (batch, ...) prefix is repeated to however many rows reach the layer.
    """

    def __init__(self, capture: _Capture, offset: int):
        self.keys = {layer: k[:, :, :offset] for layer, k in capture.keys.items()}
        self.values = {layer: v[:, :, :offset] for layer, v in capture.values.items()}
        self.batch = capture.rows

    def update(self, k: Tensor, v: Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        times = k.shape[0] // self.batch
        prefix_k = self.keys[layer_idx].repeat(times, 1, 1, 1)
        prefix_v = self.values[layer_idx].repeat(times, 1, 1, 1)
        return torch.cat([prefix_k, k], dim=-2), torch.cat([prefix_v, v], dim=-2)

    def hf_cache(self) -> Any:
        """A Hugging Face cache of the prefix's length: HF reads positions and mask sizes off it."""
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer in sorted(self.keys):
            cache.update(self.keys[layer], self.values[layer], layer)
        return cache


@contextmanager
def _attention_cache(model: Any, cache: Any) -> Iterator[None]:
    """Give every block's attention `cache` as its `past_key_values` (forward pre-hooks)."""

    def hook(module, args, kwargs):
        # HF's own `cache` argument is not the bridge's: the bridge reads `past_key_values`
        return args, {k: v for k, v in kwargs.items() if k != "cache"} | {"past_key_values": cache}

    handles = [
        block.attn.register_forward_pre_hook(hook, with_kwargs=True) for block in model.blocks
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def kv_capture(model: Any, rows: int) -> Iterator[_Capture]:
    """Record the K/V of the first `rows` rows (the unpatched run) at every block's attention."""
    capture = _Capture(rows)
    with _attention_cache(model, capture):
        yield capture


@contextmanager
def kv_prefix(model: Any, capture: _Capture, offset: int) -> Iterator[dict[str, Any]]:
    """Run positions offset..n-1 against the captured prefix; yields the forward's extra kwargs."""
    prefix = _Prefix(capture, offset)
    # transformers 5 renamed the forward's `past_key_values` to `cache` (the old name warns)
    accepts = inspect.signature(model.original_model.forward).parameters
    name = "cache" if "cache" in accepts else "past_key_values"
    with _attention_cache(model, prefix):
        yield {name: prefix.hf_cache()}
