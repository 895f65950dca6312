"""Efficient inference: prune the heads (or neurons) that attribution says the task does not use.

Locate: gradient x activation of the task's log-likelihood scores every head (or neuron) by the
first-order change that removing it would cause (Michel et al.'s head importance); the least
important is pruned and the rest are re-scored, until the target sparsity is reached (one-shot
ranking fails here: the zoo's induction model has redundant heads, each unimportant only while
its twin is present). Steer: pruning is zero-ablation, which is what deleting the head's
weights does. Improve: task accuracy at 50% of the heads stays at the dense model's, while
pruning as many randomly chosen heads (8 random masks, averaged) loses far more. Two controls
of the same size are chosen by a statistic that is not the method: the heads with the smallest
weights (magnitude pruning: a property of the weights alone, so one deterministic number) and
the heads with the smallest mean output norm on the same prompts the locate step scores (the
classic data-derived pruning baseline); each is reported as its own measure. The zoo's MLP
neurons are not a test: zero-ablating 90% of them at random leaves every zoo task but fact
recall at full accuracy.

References:
- Michel et al. 2019, "Are Sixteen Heads Really Better than One?": head importance from the
  gradient of the loss with respect to a head mask, pruning the least important heads.
- Voita et al. 2019, "Analyzing Multi-Head Self-Attention: Specialized Heads Do the Heavy
  Lifting, the Rest Can Be Pruned".
- Molchanov et al. 2017, "Pruning Convolutional Neural Networks for Resource Efficient
  Inference": first-order (Taylor) importance; Han et al. 2015: magnitude pruning baseline.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

import torch

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.interventions import weight
from reference_impls.locate.gradient_detection import gradient_x_activation
from reference_impls.recipes.common import (
    compare,
    draw_seed,
    head_output_norms,
    masked_logprob,
    over_seeds,
    random_sites,
    random_sites_control,
    recipe_result,
)
from reference_impls.registry import Outcome, register_recipe
from reference_impls.steer.amplitude_manipulation import ablate


def candidates(model: Any, kind: Literal["heads", "neurons"]) -> list[A.Site]:
    """Every head output, or every MLP neuron of every layer: what may be pruned."""
    if kind == "heads":
        return A.heads(model)
    return [s for layer in range(A.dims(model).n_layers) for s in A.neurons(model, layer)]


def weight_magnitude(model: Any, site: A.Site) -> float:
    """The magnitude-pruning score: the norms of the weights that read into and write out of
    the site (a head's W_V and W_O slices, a neuron's W_in column and W_out row), multiplied."""
    with torch.no_grad():
        if site.kind == "head_out":
            d = A.dims(model)
            kv = site.head // (d.n_heads // d.n_kv_heads)  # the value head it reads (GQA)
            w_in = weight(model, f"blocks.{site.layer}.attn.W_V")[kv]
            w_out = weight(model, f"blocks.{site.layer}.attn.W_O")[site.head]
        else:
            w_in = weight(model, f"blocks.{site.layer}.mlp.W_in")[:, site.index]
            w_out = weight(model, f"blocks.{site.layer}.mlp.W_out")[site.index]
        return float(w_in.norm() * w_out.norm())


def prune_by_attribution(model: Any, sites: list[A.Site], k: int, tokens, metric) -> list[A.Site]:
    """Prune `k` sites one at a time, each time the one with the smallest |gradient x activation|
    with the sites pruned so far already removed (importance is re-scored after every step,
    as Michel et al. do, because redundant heads only look important until their twin is gone)."""
    pruned: list[A.Site] = []
    while len(pruned) < k:
        rest = [s for s in sites if s not in pruned]
        with ablate(model, pruned, mode="zero") if pruned else nullcontext():
            importance = gradient_x_activation(model, tokens, rest, metric).values.abs()
        pruned.append(rest[int(torch.argsort(importance, stable=True)[0])])
    return pruned


def run(
    model_name: str = "induction",
    kind: Literal["heads", "neurons"] = "heads",
    sparsity: float = 0.5,
    n_fit: int = 128,
    n_random: int = 8,
    seed: int = 0,
) -> Outcome:
    """Prune `sparsity` of the heads by attribution; compare random, magnitude and output norm."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    fit = task.training_batch(torch.Generator().manual_seed(seed + 1000), n_fit)
    sites = candidates(model, kind)
    k = round(sparsity * len(sites))

    # Locate: iterated |gradient x activation| of the task log-likelihood, lowest pruned first
    pruned = prune_by_attribution(
        model, sites, k, fit.tokens, masked_logprob(fit.tokens, fit.loss_mask)
    )
    # controls: `n_random` random masks of the same size (one draw is luck), and two statistics
    # that are not the method, each pruning its k smallest at once: the weights' magnitude, and
    # (heads only) the output norm on the very prompts the attribution was computed on
    controls = [
        random_sites(sites, pruned, seed=draw_seed(seed, i), exclude=False) for i in range(n_random)
    ]
    magnitudes = torch.tensor([weight_magnitude(model, s) for s in sites])
    by_magnitude = [sites[i] for i in torch.argsort(magnitudes, stable=True)[:k].tolist()]
    by_output = None
    if kind == "heads":
        norms = head_output_norms(model, sites, fit.tokens)
        by_output = [sites[i] for i in torch.argsort(norms, stable=True)[:k].tolist()]

    def accuracy() -> float:
        return float(task.evaluate(model)["accuracy"])

    def prune(chosen):
        return ablate(model, chosen, mode="zero")

    measures, restored = compare(
        model, prune, pruned, controls, {"accuracy": (accuracy, True)}, fit.tokens[:8]
    )
    random_accuracies = []
    for control in controls:
        with prune(control):
            random_accuracies.append(round(accuracy(), 4))
    m = measures["accuracy"]
    data = "the task's fixed held-out evaluation set (512 sequences)"

    def against(chosen: list[A.Site], name: str, how: str) -> runs.Measure:
        """Accuracy before / pruned as located / with the `chosen` control pruned instead."""
        with prune(chosen):
            control = runs.Estimate.of(accuracy())
        return m.model_copy(update={"name": name, "control": control, "data": f"{data}; {how}"})

    norms_of = {"heads": "||W_V||·||W_O||", "neurons": "||W_in||·||W_out||"}
    others = [
        against(
            by_magnitude,
            f"task accuracy against magnitude pruning ({k} smallest {norms_of[kind]})",
            "control: the sites with the smallest weight norms; it depends on the weights alone, "
            "so it is one deterministic number, the same in every seed (its std 0 is no spread)",
        )
    ]
    if by_output is not None:
        others.append(
            against(
                by_output,
                f"task accuracy against output-norm pruning ({k} smallest mean ||z W_O||)",
                f"control: the heads with the smallest mean output norm over every position of "
                f"the seed's {n_fit} fitting sequences (the prompts the attribution scores), "
                "pruned at once",
            )
        )
    result = recipe_result(
        locate="gradient-detection: gradient_x_activation, re-scored after each pruned site",
        steer="amplitude-manipulation: ablate(mode='zero') (pruning)",
        metric=m.model_copy(
            update={"name": f"task accuracy with {k}/{len(sites)} {kind} pruned", "data": data}
        ),
        collateral=[],
        targets=pruned,
        control=random_sites_control(controls, f"masks of {k} {kind}"),
        restored=restored,
        details={
            "sparsity": k / len(sites),
            "pruned": k,
            "of": len(sites),
            # one seed's single masks, lowest and highest (each seed draws its own masks)
            "single random mask": {
                "lowest": min(random_accuracies),
                "highest": max(random_accuracies),
            },
            "magnitude_sites": [str(s) for s in by_magnitude],
            **({"output_norm_sites": [str(s) for s in by_output]} if by_output else {}),
        },
        other=others,
    )
    return Outcome(result)


@register_recipe("efficient-inference", default_model="induction")
def efficient_inference(model_name: str) -> Outcome:
    """Prune half the heads by gradient attribution; accuracy vs random and magnitude pruning."""
    return over_seeds(run, model_name)
