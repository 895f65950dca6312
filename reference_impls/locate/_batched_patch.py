"""Batched patching engine: many patched copies of one run, side by side in the batch dimension.

A sweep over N sites needs N patched forward passes. Instead of one Python-level forward per
site (TransformerLens' `generic_activation_patch` loop), the copies of the run are stacked in the
batch dimension, each patched at its own sites by one vectorised `torch.where` per hook, and
chunked so that memory stays bounded. Everything before a copy's earliest patched block is the
same as the unpatched run, so a copy joins the batch only at the entry of that block: the forward
starts with the B unpatched rows (which also give the unpatched metric for free) and, for
patching, the B rows of the source run (whose activations are patched in on the spot), and at
each block the copies whose earliest site lies in it are appended as fresh duplicates of the
unpatched rows. Sites that provably cannot reach the position the metric reads are not run. On
a causal model the positions before a copy's earliest patched one are skipped too: its forward
starts there and attends to the unpatched run's keys/values (`_kv_prefix`).

Rows are group-major: row = group * B + example; group 0 is the unpatched run, then the source
run if any, then the copies. One general core, `run_copies`, grows the batch and lets hooks
rewrite each copy; the named specialisations are `patch_sweep` (copy k takes the source's
values at its own sites: activation patching, causal tracing, ablation), the integrated-gradients
path in `gradient_detection` and the edge cuts in `circuit_discovery`.

References:
- Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME): causal tracing,
  restoring clean states into a corrupted run.
- Heimersheim & Nanda 2024, "How to use and interpret activation patching": denoising and
  noising, metrics.
- TransformerLens `patching.py` (Nanda & Bloom): the per-site loop this engine batches.
"""

from __future__ import annotations

import contextvars
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls.addressing import Site
from reference_impls.locate._kv_prefix import (
    forward_cost,
    kv_capture,
    kv_prefix,
    plan_chunks,
    prefix_of,
    supports_kv_prefix,
)

# A metric maps logits to one number per example; leading copy axes broadcast through it.
Metric = Callable[[Float[Tensor, "*copies batch pos vocab"]], Float[Tensor, "*copies batch"]]
# A group hook rewrites one activation viewed as (groups, batch, ...): the fixed groups and the
# copies present at that hook (always a prefix of the copies, which are sorted by joining block).
GroupHook = Callable[[Tensor], Tensor]

_EMBEDDING_STAGE = ("hook_embed", "hook_pos_embed", "hook_tokens", "embed.", "pos_embed.")
DEFAULT_CHUNK = 256  # patched copies per forward: memory is about (1 + chunk) x one forward


@dataclass(frozen=True)
class SweepLimits:
    """How sweeps run: a memory budget for one forward's activations, and a progress bar."""

    max_bytes: int | None = None  # None: chunks of the caller's chunk_size
    progress: bool = False  # a progress bar on stderr


_LIMITS: contextvars.ContextVar[SweepLimits] = contextvars.ContextVar(
    "sweep_limits",
    default=SweepLimits(),  # noqa: B039 (frozen, never mutated)
)


@contextmanager
def sweep_limits(max_bytes: int | None = None, progress: bool = False) -> Iterator[None]:
    """Run the sweeps in the block within `max_bytes` of activations, with a progress bar.

    Every batched sweep (`patch_sweep`, edge patching, integrated gradients' path) lowers its
    copies per forward to what the budget holds (`copies_per_forward`) instead of failing.
    """
    token = _LIMITS.set(SweepLimits(max_bytes, progress))
    try:
        yield
    finally:
        _LIMITS.reset(token)


def copies_per_forward(model: Any, rows: int, n_pos: int, chunk_size: int, extra: int = 0) -> int:
    """`chunk_size`, lowered so one forward of that many copies fits the sweep's memory budget.

    The estimate per copy is its `rows` x `n_pos` activations live at once in inference mode:
    a few residual-width tensors, the MLP's hidden layer, one attention pattern row per head,
    and the logits with the metric's log-softmax (float32), plus `extra` values per row and
    position the caller keeps (edge patching's writer outputs).
    """
    budget = _LIMITS.get().max_bytes
    if budget is None:
        return chunk_size
    cfg = model.cfg
    element = next(model.parameters()).element_size()
    per_position = 8 * cfg.d_model + 2 * cfg.d_mlp + 3 * cfg.n_heads * n_pos + extra
    per_copy = rows * n_pos * (per_position * element + 3 * cfg.d_vocab * 4)
    # the unpatched and source groups ride along in every forward
    return max(1, min(chunk_size, budget // per_copy - 2))


def progress_bar(total: int, what: str) -> Any:
    """A tqdm bar on stderr when the sweep limits ask for one (never on stdout)."""
    from tqdm.auto import tqdm

    show = _LIMITS.get().progress and total > 1
    return tqdm(total=total, desc=what, unit="copy", file=sys.stderr, disable=not show, leave=False)


def hook_layer(model: Any, hook_name: str) -> int:
    """Block index a hook lives in: -1 for the embedding stage, n_layers after the last block."""
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    if match:
        return int(match.group(1))
    if hook_name.startswith(_EMBEDDING_STAGE):
        return -1
    return model.cfg.n_layers


def earliest_layer(model: Any, sites: Sequence[Site]) -> int:
    """The block a copy patched at `sites` must join at (n_layers for no sites)."""
    return min((hook_layer(model, s.hook_name) for s in sites), default=model.cfg.n_layers)


@contextmanager
def growing_batch(
    model: Any, joins: Sequence[int], batch: int, initial_rows: int
) -> Iterator[None]:
    """Append copies of the first `batch` rows at the blocks in `joins` (one entry per copy).

    The forward starts with `initial_rows` rows; `joins` is sorted; entries equal to -1 must
    already be in the input (the caller repeats the tokens), entries equal to n_layers join at
    the final norm. Every block also widens its side inputs shaped like the input rows (Hugging
    Face passes the same [rows, ...] causal mask to all blocks), the new rows copying group 0's.
    Torch forward pre-hooks, removed on exit even after an exception.
    """
    n_layers = model.cfg.n_layers
    joining = Counter(j for j in joins if j >= 0)
    modules = [*model.blocks, model.ln_final]

    def grow(x: Tensor, rows: int) -> Tensor:
        extra = (rows - x.shape[0]) // batch
        return torch.cat([x, x[:batch].repeat(extra, *([1] * (x.ndim - 1)))]) if extra else x

    def pre_hook(layer: int) -> Callable:
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if joining[layer]:
                # new copies start from the unpatched rows (group 0)
                fresh = hidden[:batch].repeat(joining[layer], *([1] * (hidden.ndim - 1)))
                hidden = torch.cat([hidden, fresh])
            rows = hidden.shape[0]

            def side(x: Any) -> Any:
                # only row-shaped tensors (>= 2 dims, one row per input row); a single row
                # broadcasts as it is, and positions or caches pass untouched
                is_rows = isinstance(x, Tensor) and x.ndim >= 2 and x.shape[0] == initial_rows
                return grow(x, rows) if is_rows and initial_rows > 1 else x

            if args:
                args = (hidden, *(side(a) for a in args[1:]))
            kwargs = {k: side(v) for k, v in kwargs.items() if k != "hidden_states"} | (
                {} if args else {"hidden_states": hidden}
            )
            return args, kwargs

        return hook

    handles = [
        module.register_forward_pre_hook(pre_hook(layer), with_kwargs=True)
        for layer, module in enumerate(modules)
        if layer < n_layers or joining[layer]
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_copies(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    joins: Sequence[int],
    group_hooks: Mapping[str, GroupHook],
    base_hooks: Sequence[tuple[str, Callable]] = (),
    extra: Int[Tensor, "batch pos"] | None = None,
    hook_map: Callable[[list[tuple[str, Callable]]], list[tuple[str, Callable]]] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
) -> Float[Tensor, "groups batch pos vocab"]:
    """Run the unpatched model plus one copy per entry of `joins`, rewritten by `group_hooks`.

    Groups: 0 is the run on `tokens`; 1 is the run on `extra`, if given (e.g. the clean input
    whose activations are patched in, read from the same forward); then copy k, which joins at
    block `joins[k]` (sorted; -1 for the embedding stage) as a duplicate of group 0. A group hook
    sees its activation as (groups, batch, ...), groups = the groups present so far, and returns
    the same shape. `base_hooks` are ordinary TransformerLens hooks that see all rows (e.g. noise
    on the embeddings, identical in every group). `hook_map` rewrites the final hook list (e.g.
    `PerHead.translate`, for hook names the bridge lacks); `forward_kwargs` go to the model's
    forward (e.g. a KV prefix, `_kv_prefix`). Gradients flow when enabled.
    Returns logits (groups, batch, pos, vocab).
    """
    if list(joins) != sorted(joins):
        raise ValueError("joins must be sorted by block")
    batch = tokens.shape[0]

    def as_tl_hook(fn: GroupHook) -> Callable:
        def hook(act: Tensor, hook: Any) -> Tensor:
            shape = act.shape[1:]
            out = fn(act.reshape(-1, batch, *shape))  # (groups, batch, ...)
            return out.reshape(-1, *shape)

        return hook

    fwd_hooks = list(base_hooks) + [(name, as_tl_hook(fn)) for name, fn in group_hooks.items()]
    if hook_map is not None:
        fwd_hooks = hook_map(fwd_hooks)
    at_embedding = sum(1 for j in joins if j < 0)
    rows = torch.cat([tokens, *([] if extra is None else [extra]), *([tokens] * at_embedding)])
    with growing_batch(model, joins, batch, initial_rows=len(rows)):
        logits = model.run_with_hooks(
            rows, fwd_hooks=fwd_hooks, **({"use_cache": False} | dict(forward_kwargs or {}))
        )
    return logits.reshape(-1, batch, *logits.shape[1:])  # (groups, batch, pos, vocab)


def patch_sweep(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    patch_sets: Sequence[Sequence[Site]],
    source: Mapping[str, Tensor] | Int[Tensor, "batch pos"],
    metric: Metric,
    chunk_size: int = DEFAULT_CHUNK,
    base_hooks: Sequence[tuple[str, Callable]] = (),
    reads: int | None = None,
    skip_prefix: bool = True,
) -> tuple[Float[Tensor, "n_sets batch"], Float[Tensor, " batch"], Float[Tensor, " batch"] | None]:
    """Metric of the run on `tokens` with each patch set's sites replaced by a source's values.

    `patch_sets[i]` is the set of sites patched together in copy i (one site, or a circuit's
    complement). `source` is either the tokens of the source run (the clean input for
    denoising, the corrupted one for noising), which then runs in the same forward as group 1
    so each hook reads its source values right there, or a mapping hook_name -> activation
    shaped (batch, ...) or (1, ...) (zeros or a mean for ablation, a cache). Copies are sorted by
    the block they join at and run `chunk_size` at a time. `reads`, when given, is the only
    position the metric reads: sets that provably cannot reach it (`outside_causal_cone`) are
    not run and get the unpatched value; on a causal model each copy then also skips the
    positions before its earliest patched one, attending to the unpatched run's keys/values
    there (`_kv_prefix`; `skip_prefix=False` turns that off, e.g. to compare). Returns the
    per-example metric of every copy, of the unpatched run, and of the source run (None for a
    mapping).
    """
    n_sets = len(patch_sets)
    n_pos = tokens.shape[1]
    in_batch = isinstance(source, Tensor)
    out = torch.empty(n_sets, tokens.shape[0])
    causal = is_causal(model)
    unreachable = [
        reads is not None
        and bool(sites)
        and all(outside_causal_cone(model, s, reads % n_pos, causal) for s in sites)
        for sites in patch_sets
    ]
    joins = [earliest_layer(model, sites) for sites in patch_sets]
    live = [i for i in range(n_sets) if not unreachable[i]]
    chunk_size = copies_per_forward(model, tokens.shape[0], n_pos, chunk_size)
    prefixes = [prefix_of(sites) for sites in patch_sets]
    skipped = None
    if skip_prefix and causal and not base_hooks and any(prefixes[i] for i in live):
        skipped = _prefix_sweep(
            model, tokens, patch_sets, source, metric, chunk_size, reads, live, joins, prefixes
        )
    if skipped is not None:
        unpatched, source_values = skipped.pop("unpatched"), skipped.pop("source")
        for i, value in skipped.items():
            out[i] = value
        out[[i for i in range(n_sets) if unreachable[i]]] = unpatched
        return out, unpatched, source_values
    order = sorted(live, key=joins.__getitem__)
    first_copy = 2 if in_batch else 1
    metric, base_hooks = _read_one_position(model, metric, reads, n_pos, base_hooks)
    start = 0
    with torch.inference_mode(), progress_bar(len(order), "patching") as bar:
        while start == 0 or start < len(order):  # one forward even with nothing to patch
            chunk = order[start : start + chunk_size]
            group_hooks = _where_hooks([patch_sets[i] for i in chunk], source, first_copy)
            try:
                logits = run_copies(
                    model,
                    tokens,
                    [joins[i] for i in chunk],
                    group_hooks,
                    base_hooks,
                    extra=source if in_batch else None,
                )
            except torch.OutOfMemoryError:
                if chunk_size == 1:
                    raise
                chunk_size //= 2  # the estimate was too generous for this device: halve
                continue
            values = metric(logits).float()  # (groups, batch)
            out[chunk] = values[first_copy:].to(out.device)
            start += max(len(chunk), 1)
            bar.update(len(chunk))
    unpatched = values[0]
    out[[i for i in range(n_sets) if unreachable[i]]] = unpatched
    return out, unpatched, values[1] if in_batch else None


def _prefix_sweep(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    patch_sets: Sequence[Sequence[Site]],
    source: Mapping[str, Tensor] | Tensor,
    metric: Metric,
    chunk_size: int,
    reads: int | None,
    live: Sequence[int],
    joins: Sequence[int],
    prefixes: Sequence[int],
) -> dict[Any, Tensor | None] | None:
    """`patch_sweep` on a causal model where copies skip their unpatched position prefix.

    The first forward runs from position 0 (the unpatched run, the source run and the first
    chunk of copies) and records every block's unpatched keys/values and the source's
    activations at the patched hooks; every later forward starts at its copies' smallest
    patched position (`_kv_prefix.plan_chunks`), attending to the recorded prefix. The
    unpatched rows ride along in every forward and must reproduce the first forward's metric:
    if they do not (an attention that ignores the prefix), or the model cannot take a prefix,
    this returns None and the caller runs the unskipped sweep. Returns {set index: per-example
    metric} plus "unpatched" and "source".
    """
    n_pos = tokens.shape[1]
    if reads is None or "pos" not in getattr(metric, "__dataclass_fields__", {}):
        return None  # the metric may read positions a suffix forward does not compute
    if not supports_kv_prefix(model):
        return None
    batch = tokens.shape[0]
    in_batch = isinstance(source, Tensor)
    first_copy = 2 if in_batch else 1
    cost = forward_cost(model, batch, n_pos)
    hooks = sorted({s.hook_name for i in live for s in patch_sets[i]})
    kept: dict[str, Tensor] = {}
    remaining = list(live)
    results: dict[Any, Tensor | None] = {}
    with torch.inference_mode(), progress_bar(len(remaining), "patching") as bar:
        while remaining:
            chunks = plan_chunks(prefixes, joins, remaining, chunk_size, cost, first_copy)
            try:
                for chunk in chunks:
                    if results and not chunk:
                        continue  # a re-plan after running out of memory: nothing to record
                    sets = [patch_sets[i] for i in chunk]
                    if not results:  # the first forward: full length, records the prefix
                        group_hooks = _where_hooks(sets, source, first_copy)
                        if in_batch:
                            group_hooks = _keeping(hooks, group_hooks, kept)
                        full_metric, read_hooks = _read_one_position(
                            model, metric, reads, n_pos, []
                        )
                        with kv_capture(model, batch) as capture:
                            logits = run_copies(
                                model,
                                tokens,
                                [joins[i] for i in chunk],
                                group_hooks,
                                read_hooks,
                                extra=source if in_batch else None,
                            )
                        if len(capture.keys) != model.cfg.n_layers:
                            return None  # some attention never reached the cache entry point
                        values = full_metric(logits).float()  # (groups, batch)
                        results["unpatched"] = values[0]
                        results["source"] = values[1] if in_batch else None
                        fixed = kept if in_batch else source
                    else:
                        offset = min(prefixes[i] for i in chunk)
                        values = _suffix_forward(
                            model,
                            tokens,
                            sets,
                            [joins[i] for i in chunk],
                            fixed,
                            metric,
                            reads,
                            offset,
                            capture,
                        )
                        unpatched = results["unpatched"]
                        scale = 1 + float(unpatched.abs().max())
                        if not torch.allclose(values[0], unpatched, rtol=1e-4, atol=1e-4 * scale):
                            return None
                    copies = values[len(values) - len(chunk) :]  # after the fixed groups
                    for copy, i in enumerate(chunk):
                        results[i] = copies[copy]
                    done = set(chunk)
                    remaining = [i for i in remaining if i not in done]
                    bar.update(len(chunk))
            except torch.OutOfMemoryError:
                if chunk_size == 1:
                    raise
                chunk_size //= 2  # the estimate was too generous for this device: halve
    return results


def _keeping(
    hooks: Sequence[str], group_hooks: dict[str, GroupHook], kept: dict[str, Tensor]
) -> dict[str, GroupHook]:
    """`group_hooks`, plus keeping the source run's (group 1's) activation at every hook in `hooks`."""

    def keep(name: str, then: GroupHook | None) -> GroupHook:
        def hook(act: Tensor) -> Tensor:
            kept[name] = act[1].clone()  # (batch, ...): the source run's activation
            return act if then is None else then(act)

        return hook

    return {name: keep(name, group_hooks.get(name)) for name in hooks}


def _suffix_forward(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    sets: Sequence[Sequence[Site]],
    joins: Sequence[int],
    source: Mapping[str, Tensor],
    metric: Metric,
    reads: int,
    offset: int,
    capture: Any,
) -> Float[Tensor, "groups batch"]:
    """One forward of copies over positions offset..n-1 (group 0: the unpatched run)."""
    n_pos = tokens.shape[1]
    at = reads % n_pos - offset  # where the metric reads, within the suffix
    suffix_metric, hooks = _read_one_position(model, metric, at, n_pos - offset, [])
    group_hooks = _where_hooks(sets, source, first_copy=1, offset=offset)
    with torch.inference_mode():
        if offset == 0:
            logits = run_copies(model, tokens, joins, group_hooks, hooks)
        else:
            with kv_prefix(model, capture, offset) as forward_kwargs:
                logits = run_copies(
                    model,
                    tokens[:, offset:],
                    joins,
                    group_hooks,
                    hooks,
                    forward_kwargs=forward_kwargs,
                )
    return suffix_metric(logits).float()


def _read_one_position(
    model: Any,
    metric: Metric,
    reads: int | None,
    n_pos: int,
    base_hooks: Sequence[tuple[str, Callable]],
) -> tuple[Metric, list[tuple[str, Callable]]]:
    """Unembed only the position the metric reads: the unembedding's input is cut to it.

    The unembedding is a large share of a forward (a third of GPT-2 small's, at 50k tokens) and
    the metric reads one position, so every other position's logits would be discarded. Only
    for metrics that say where they read (a dataclass with `pos`), which then read position 0.
    """
    if reads is None or "pos" not in getattr(metric, "__dataclass_fields__", {}):
        return metric, list(base_hooks)
    import dataclasses

    at = reads % n_pos

    def cut(act: Tensor, hook: Any) -> Tensor:
        return act[:, at : at + 1]  # (rows, 1, d_model)

    return dataclasses.replace(metric, pos=0), [*base_hooks, ("unembed.hook_in", cut)]


# site kinds whose value at position p reaches other positions only through a later block's
# attention (they come after their own block's attention mixing, or are a query or a pattern
# row, which only shape position p's own attention output)
_AFTER_MIXING = {
    "head_out",
    "q",
    "pattern",
    "attn_out",
    "resid_mid",
    "mlp_out",
    "neuron",
    "resid_post",
}


def is_causal(model: Any) -> bool:
    """Whether every attention layer of `model` provably attends only to earlier positions.

    The bridge's config says so (`attention_dir`, "bidirectional" for encoder-style native
    models), and so does every wrapped Hugging Face attention module that carries an
    `is_causal` flag. Anything that says otherwise, or a config that says nothing, is not
    causal: the cone shortcut is then not sound and every site is run.
    """
    if getattr(model.cfg, "attention_dir", None) != "causal":
        return False
    if getattr(getattr(model, "original_model", None), "config", None) is not None:
        if getattr(model.original_model.config, "is_causal", True) is False:
            return False
    for block in model.blocks:
        inner = getattr(block.attn, "original_component", None)
        if inner is not None and getattr(inner, "is_causal", True) is False:
            return False
    return True


def outside_causal_cone(model: Any, site: Site, reads: int, causal: bool | None = None) -> bool:
    """Whether patching `site` provably leaves position `reads` (and hence the metric) unchanged.

    Only on a causal model (`is_causal`): a site after `reads` cannot reach it; a site at
    another position in the last block, after that block's attention, has no attention left to
    carry it there. On a bidirectional model only the second holds. `causal` is
    `is_causal(model)`, passed in by sweeps that ask once for many sites.
    """
    if site.pos is None or site.kind == "sae_feature":
        return False
    last_block = hook_layer(model, site.hook_name) == model.cfg.n_layers - 1
    if not (is_causal(model) if causal is None else causal):
        return site.pos != reads and last_block and site.kind in _AFTER_MIXING
    if site.pos > reads:
        return True
    return site.pos != reads and last_block and site.kind in _AFTER_MIXING


def _where_hooks(
    chunk: Sequence[Sequence[Site]],
    source: Mapping[str, Tensor] | Tensor,
    first_copy: int,
    offset: int = 0,
) -> dict[str, GroupHook]:
    """One hook per patched activation: copy k takes the source where its boolean mask is set.

    The source is group 1 of the same activation (source tokens in the batch) or a fixed
    activation from a mapping. With `offset` > 0 the forward computes positions offset..n-1
    only (`_kv_prefix`): every site is then at a position on axis 1, shifted by `offset`.
    """
    by_hook: dict[str, list[tuple[int, tuple]]] = {}
    for copy, sites in enumerate(chunk):
        for site in sites:
            # site.slices() indexes (batch, ...); the mask has a group axis in the batch's place
            index = site.slices()[1:]
            if offset:
                index = (index[0] - offset, *index[1:])
            by_hook.setdefault(site.hook_name, []).append((first_copy + copy, index))
    hooks: dict[str, GroupHook] = {}
    for name, items in by_hook.items():
        fixed = None
        if not isinstance(source, Tensor):
            if name not in source:
                raise KeyError(f"no source activation for hook {name!r}; cache it in `source`")
            fixed = source[name][:, offset:].unsqueeze(0)  # (1, batch | 1, pos - offset, ...)
        masks: dict[tuple, Tensor] = {}

        def hook(act: Tensor, items=items, fixed=fixed, masks=masks) -> Tensor:
            # act: (groups, batch, ...); only the copies joined so far are present
            key = (act.shape[0], *act.shape[2:])
            if key not in masks:
                mask = torch.zeros(
                    act.shape[0], *act.shape[2:], dtype=torch.bool, device=act.device
                )
                for group, index in items:
                    mask[(group, *index)] = True
                masks[key] = mask.unsqueeze(1)  # (groups, 1, ...)
            src = act[1:2] if fixed is None else fixed.to(act.dtype)
            return torch.where(masks[key], src, act)

        hooks[name] = hook
    return hooks
