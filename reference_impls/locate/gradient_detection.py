"""Gradient detection: score sites by gradients of an output metric with respect to activations.

Gradient x activation multiplies each activation by the metric's gradient there and sums over
the site's slice: the first-order estimate of what zero-ablating the site would change, from a
single backward pass. Integrated gradients (IG) averages the gradient along the straight path
from a baseline activation a' (zeros, or the activation on a corrupted input) to the actual one
a, and multiplies by (a - a'); its attributions satisfy completeness: over a whole activation
they sum to metric(a) - metric(a'). The path steps run side by side in the batch, joining it at
the block of the interpolated hook (`_batched_patch.run_copies`), so one forward and one backward
serve every step and every hook.

References:
- Simonyan et al. 2014, "Deep Inside Convolutional Networks": gradient saliency.
- Shrikumar et al. 2017, "Learning Important Features Through Propagating Activation
  Differences" (DeepLIFT): gradient x input.
- Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks": integrated gradients
  and the completeness axiom.
- Dai et al. 2022, "Knowledge Neurons in Pretrained Transformers": IG over FFN neurons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

from reference_impls.addressing import Site
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate._batched_patch import (
    DEFAULT_CHUNK,
    Metric,
    copies_per_forward,
    hook_layer,
    run_copies,
)
from reference_impls.locate.scores import Scores, locate_result_over_seeds
from reference_impls.registry import Outcome, register_method


def gradient_x_activation(
    model: Any, tokens: Int[Tensor, "batch pos"], sites: Sequence[Site], metric: Metric
) -> Scores:
    """sum over each site's slice of activation * d metric / d activation, mean over the batch."""
    sites = list(sites)
    acts, grads, _ = _activations_and_gradients(model, tokens, sites, metric)
    values = torch.stack(
        [(s.select(acts[s.hook_name]) * s.select(grads[s.hook_name])).sum() for s in sites]
    )
    return Scores.flat(
        values,
        sites,
        method="gradient-x-activation",
        meaning="activation times the metric's gradient, summed over the site, mean over the batch",
    )


def integrated_gradients(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    sites: Sequence[Site],
    metric: Metric,
    baseline: Literal["zeros"] | Int[Tensor, "batch pos"] = "zeros",
    steps: int = 32,
    chunk_size: int = DEFAULT_CHUNK,
) -> Scores:
    """Integrated gradients of every hook the sites live on, summed over each site's slice.

    Each hook's activation a is interpolated as a' + alpha (a - a') at `steps` midpoints
    alpha = (k + 1/2) / steps, with the rest of the model downstream of that hook. `baseline` is
    "zeros" (a' = 0) or corrupted tokens (a' = their activation at the same hook). `meta` holds,
    per hook, `completeness`: the sum of all attributions on that hook, the `delta` it should
    equal (metric(a) - metric(a'), mean over the batch), and the full attribution tensors.
    The path points of several hooks share a forward, up to `chunk_size` copies.
    """
    sites = list(sites)
    batch = tokens.shape[0]
    hooks = sorted({s.hook_name for s in sites}, key=lambda h: hook_layer(model, h))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=hooks)
        if isinstance(baseline, str):
            if baseline != "zeros":
                raise ValueError(f"baseline={baseline!r} is not 'zeros' or a token tensor")
            base = {h: torch.zeros_like(cache[h]) for h in hooks}
        else:
            _, base_cache = model.run_with_cache(baseline, names_filter=hooks)
            base = {h: base_cache[h] for h in hooks}
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    # per hook: `steps` path points plus one copy at alpha = 0 (the baseline's own metric)
    path = torch.cat([alphas, torch.zeros(1)])
    n = len(path)
    leaves: dict[str, Tensor] = {}

    def interpolate(name: str, first_group: int):
        def hook(act: Tensor) -> Tensor:
            # act: (groups, batch, ...); this hook's copies are groups first_group..+n
            shape = (n,) + (1,) * (act.ndim - 1)
            a, a0 = cache[name].to(act), base[name].to(act)
            points = (a0 + path.view(shape).to(act) * (a - a0)).requires_grad_(True)
            leaves[name] = points  # (n, batch, ...)
            return torch.cat([act[:first_group], points, act[first_group + n :]])

        return hook

    meta_hooks: dict[str, dict[str, Any]] = {}
    attributions: dict[str, Tensor] = {}
    # hooks whose paths share one forward and backward (which keeps about 2x the activations)
    fits = copies_per_forward(model, 2 * tokens.shape[0], tokens.shape[1], chunk_size)
    per_forward = max(1, fits // n)
    for start in range(0, len(hooks), per_forward):
        chunk = hooks[start : start + per_forward]
        group_hooks = {h: interpolate(h, 1 + i * n) for i, h in enumerate(chunk)}
        joins = [hook_layer(model, h) for h in chunk for _ in range(n)]
        with torch.enable_grad():
            logits = run_copies(model, tokens, joins, group_hooks)  # (1 + hooks * n, batch, ...)
            values = metric(logits)  # (groups, batch)
            path_values = values[1:].reshape(len(chunk), n, batch)[:, :steps]
            grads = torch.autograd.grad(path_values.sum() / batch, [leaves[h] for h in chunk])
        values = values.detach()
        for i, h in enumerate(chunk):
            # mean gradient over the path times (a - a'): (batch, ...)
            attributions[h] = (cache[h] - base[h]) * grads[i][:steps].mean(dim=0)
            at_baseline = values[1 + i * n + steps]
            meta_hooks[h] = {
                "completeness": float(attributions[h].sum()),
                "delta": float((values[0] - at_baseline).mean()),
            }
    scores = torch.stack([s.select(attributions[s.hook_name]).sum() for s in sites])
    return Scores.flat(
        scores,
        sites,
        method="integrated-gradients",
        meaning="integrated gradients from the baseline, summed over the site, mean over the batch",
        steps=steps,
        baseline="zeros" if isinstance(baseline, str) else "corrupted tokens",
        hooks=meta_hooks,
        _attributions=attributions,  # full tensors; left out of JSON
    )


def _activations_and_gradients(
    model: Any, tokens: Tensor, sites: Sequence[Site], metric: Metric
) -> tuple[dict[str, Tensor], dict[str, Tensor], float]:
    """Activations at the sites' hooks and the gradient of the batch-mean metric there."""
    hooks = sorted({s.hook_name for s in sites})
    acts: dict[str, Tensor] = {}

    def keeper(name: str) -> Any:
        # keyed by the name asked for (hook.name may be the bridge's canonical alias)
        def keep(act: Tensor, hook: Any) -> Tensor:
            acts[name] = act = act.clone()  # the kept tensor is the one the model reads on
            return act

        return keep

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(h, keeper(h)) for h in hooks])
        value = metric(logits).mean()
        grads = torch.autograd.grad(value, [acts[h] for h in hooks])
    return (
        {h: acts[h].detach() for h in hooks},
        dict(zip(hooks, grads, strict=True)),
        float(value.detach()),
    )


# ---- `mi-atlas run gradient-detection` --------------------------------------------------------


@register_method("gradient-detection", default_model="induction-deep")
def demo(model_name: str) -> Outcome:
    """Integrated gradients and gradient x activation over every head, over 5 data seeds."""
    task = _zoo.head_patching(model_name, "gradient-detection")
    sites, planted, decoys = task.sites, task.planted, task.decoys

    def one(seed: int) -> dict[str, Any]:
        clean, corrupted, metric = task.pair(seed)
        ig = integrated_gradients(task.model, clean, sites, metric, baseline=corrupted)
        # completeness: per hook, the attributions sum to the metric's change along the path
        completeness = {
            f"{what} {hook}": value
            for hook, numbers in ig.meta["hooks"].items()
            for what, value in numbers.items()
        }
        return {
            "ig": ig,
            "gxa": gradient_x_activation(task.model, clean, sites, metric),
            "margin": ig.margin(planted),
            **completeness,
        }

    seeds = _zoo.per_seed(one)
    numbers = {k: v for k, v in seeds.items() if isinstance(v[0], float)}
    result = locate_result_over_seeds(
        seeds["ig"],
        setting="integrated gradients from the corrupted run's head outputs to the clean ones; "
        f"{task.prompts}; {len(_zoo.SEEDS)} data seeds",
        metric=task.metric,
        planted=planted,
        numbers=numbers | _zoo.decoy_ranks(seeds["ig"], decoys),
        variants=[
            locate_result_over_seeds(
                seeds["gxa"],
                setting="gradient x activation at the clean run (one backward pass)",
                metric=task.metric,
                planted=planted,
                numbers=_zoo.decoy_ranks(seeds["gxa"], decoys),
                variant="gradient x activation",
            )
        ],
    )
    return Outcome(result, recovered=result.recovery.recovered, seeds=_zoo.SEEDS)
