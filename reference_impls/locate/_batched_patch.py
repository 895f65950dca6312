"""Batched patching engine: many patched copies of one run, side by side in the batch dimension.

A sweep over N sites needs N patched forward passes. Instead of one Python-level forward per
site (TransformerLens' `generic_activation_patch` loop), the N copies of the run are stacked in
the batch dimension, each copy patched at its own site by one vectorised `torch.where` per hook,
and chunked so that memory stays bounded. The layers before the earliest patched site are the
same for every copy, so they run once on the unwidened batch: the batch is widened from B to
K * B rows only at the entry of that block.

One general core, `run_copies`, widens the batch and rewrites activations per copy; the named
specialisations are `patch_sweep` (copy k takes the source activation at its own sites: activation
patching, causal tracing, ablation) and the integrated-gradients interpolation in
`gradient_detection`.

References:
- Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME): causal tracing,
  restoring clean states into a corrupted run.
- Heimersheim & Nanda 2024, "How to use and interpret activation patching": denoising and
  noising, metrics.
- TransformerLens `patching.py` (Nanda & Bloom): the per-site loop this engine batches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls.addressing import Site

# A metric maps logits to one number per example; leading copy axes broadcast through it.
Metric = Callable[[Float[Tensor, "*copies batch pos vocab"]], Float[Tensor, "*copies batch"]]
# A copy hook rewrites one activation viewed as (copies, batch, ...) and returns the same shape.
CopyHook = Callable[[Tensor], Tensor]

_EMBEDDING_STAGE = ("hook_embed", "hook_pos_embed", "hook_tokens", "embed.", "pos_embed.")
DEFAULT_CHUNK = 256  # patched copies per forward: bounds memory at about chunk x one forward


def hook_layer(model: Any, hook_name: str) -> int:
    """Block index a hook lives in: -1 for the embedding stage, n_layers after the last block."""
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    if match:
        return int(match.group(1))
    if hook_name.startswith(_EMBEDDING_STAGE):
        return -1
    return model.cfg.n_layers


@contextmanager
def widened_from(model: Any, layer: int, n_copies: int, batch: int) -> Iterator[None]:
    """Widen the batch from `batch` to `n_copies * batch` rows at the entry of block `layer`.

    Rows are copy-major (row = copy * batch + example). Blocks after `layer` receive side inputs
    shaped by the original batch (Hugging Face passes the same causal mask to every block), so
    those are widened too. Torch forward pre-hooks, removed on exit even after an exception.
    """
    blocks = list(model.blocks)
    first = blocks[layer] if layer < len(blocks) else model.ln_final
    later = blocks[layer + 1 :] if layer < len(blocks) else []

    def widen(x: Any) -> Any:
        # Only batch-shaped tensors (>= 2 dims, leading dim == batch); positions, caches pass.
        if batch > 1 and isinstance(x, Tensor) and x.ndim >= 2 and x.shape[0] == batch:
            return x.repeat(n_copies, *([1] * (x.ndim - 1)))
        return x

    def widen_side_inputs(module, args, kwargs):
        args = args[:1] + tuple(widen(a) for a in args[1:])
        kwargs = {k: (v if k == "hidden_states" else widen(v)) for k, v in kwargs.items()}
        return args, kwargs

    def widen_entry(module, args, kwargs):
        args, kwargs = widen_side_inputs(module, args, kwargs)
        if args:
            hidden = args[0]
            args = (hidden.repeat(n_copies, *([1] * (hidden.ndim - 1))),) + args[1:]
        else:
            hidden = kwargs["hidden_states"]
            kwargs["hidden_states"] = hidden.repeat(n_copies, *([1] * (hidden.ndim - 1)))
        return args, kwargs

    handles = [first.register_forward_pre_hook(widen_entry, with_kwargs=True)]
    handles += [b.register_forward_pre_hook(widen_side_inputs, with_kwargs=True) for b in later]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_copies(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    n_copies: int,
    copy_hooks: Mapping[str, CopyHook],
    first_layer: int | None = None,
    base_hooks: Sequence[tuple[str, Callable]] = (),
) -> Float[Tensor, "copies batch pos vocab"]:
    """Run `n_copies` copies of the model on `tokens`, each rewritten by `copy_hooks`.

    Every copy hook sees its activation as (copies, batch, ...) and returns the same shape.
    The batch is widened at block `first_layer` (default: the earliest hooked block), so the
    blocks before it run once on `batch` rows. `base_hooks` are ordinary TransformerLens hooks
    applied before widening (e.g. noise on the embeddings), hence identical across copies.
    Gradients flow when the caller has them enabled.
    """
    batch = tokens.shape[0]
    if first_layer is None:
        first_layer = min((hook_layer(model, name) for name in copy_hooks), default=0)

    def as_tl_hook(fn: CopyHook) -> Callable:
        def hook(act: Tensor, hook: Any) -> Tensor:
            shape = act.shape[1:]
            out = fn(act.reshape(n_copies, batch, *shape))  # (copies, batch, ...)
            return out.reshape(n_copies * batch, *shape)

        return hook

    fwd_hooks = list(base_hooks) + [(name, as_tl_hook(fn)) for name, fn in copy_hooks.items()]
    if first_layer < 0:
        # A patched embedding: widen the tokens themselves; base hooks then see every copy.
        logits = model.run_with_hooks(
            tokens.repeat(n_copies, 1), fwd_hooks=fwd_hooks, use_cache=False
        )
    else:
        with widened_from(model, first_layer, n_copies, batch):
            logits = model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, use_cache=False)
    return logits.reshape(n_copies, batch, *logits.shape[1:])  # (copies, batch, pos, vocab)


def patch_sweep(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    patch_sets: Sequence[Sequence[Site]],
    source: Mapping[str, Tensor],
    metric: Metric,
    chunk_size: int = DEFAULT_CHUNK,
    base_hooks: Sequence[tuple[str, Callable]] = (),
) -> Float[Tensor, "n_sets batch"]:
    """Metric of the run on `tokens` with each patch set's sites replaced by `source`.

    `patch_sets[i]` is the set of sites patched together in copy i (one site, or a circuit's
    complement); `source[hook_name]` holds the values patched in, shaped (batch, ...) or (1, ...) to
    broadcast (a clean cache for denoising, a corrupted cache for noising, zeros or a mean for
    ablation). Copies are sorted by their earliest patched layer and run `chunk_size` at a time.
    """
    n_sets = len(patch_sets)
    out = torch.empty(n_sets, tokens.shape[0])
    # an empty patch set is the unpatched run; it widens last (at the final norm)
    earliest = [
        min((hook_layer(model, s.hook_name) for s in sites), default=model.cfg.n_layers)
        for sites in patch_sets
    ]
    order = sorted(range(n_sets), key=earliest.__getitem__)
    with torch.no_grad():
        for start in range(0, n_sets, chunk_size):
            chunk = order[start : start + chunk_size]
            copy_hooks = _where_hooks(model, [patch_sets[i] for i in chunk], source)
            logits = run_copies(
                model, tokens, len(chunk), copy_hooks, earliest[chunk[0]], base_hooks
            )
            out[chunk] = metric(logits).float()  # (copies, batch)
    return out


def _where_hooks(
    model: Any, chunk: Sequence[Sequence[Site]], source: Mapping[str, Tensor]
) -> dict[str, CopyHook]:
    """One hook per patched activation: copy k takes `source` where its boolean mask is set."""
    by_hook: dict[str, list[tuple[int, tuple]]] = {}
    for copy, sites in enumerate(chunk):
        for site in sites:
            # site.slices() indexes (batch, ...); the mask has a copy axis in the batch's place
            by_hook.setdefault(site.hook_name, []).append((copy, site.slices()[1:]))
    hooks: dict[str, CopyHook] = {}
    for name, items in by_hook.items():
        if name not in source:
            raise KeyError(f"no source activation for hook {name!r}; cache it in `source`")
        src = source[name]
        mask = torch.zeros(len(chunk), *src.shape[1:], dtype=torch.bool, device=src.device)
        for copy, index in items:
            mask[(copy, *index)] = True

        def hook(act: Tensor, mask: Tensor = mask, src: Tensor = src) -> Tensor:
            # act: (copies, batch, ...); mask: (copies, 1, ...); src: (1, batch|1, ...)
            return torch.where(mask.unsqueeze(1), src.unsqueeze(0).to(act.dtype), act)

        hooks[name] = hook
    return hooks
