"""Fairness and bias: find where a spurious attribute reaches the answer, and project it out.

The zoo's persona-bias model learned a shortcut: on ambiguous content it answers positively for
the group token "north" and negatively for "south". Locate: activation patching from north into
south prompts (the same content, only the group token swapped) over the residual stream entering
each block after the first, at every position; the site that restores the north-vs-south
difference is where the attribute has reached the answer (on the zoo model: the answer
position, after block 0's heads moved it there). Steer: the difference in means of north and
south residuals at that site, taken for each persona, gives the attribute's directions (nearly
parallel); their span is projected out of the residual stream at every layer and position. Improve: the bias gap P(positive | north) - P(positive |
south) on ambiguous content falls to about 0 while accuracy on clear content holds. The control
projects out, per persona, the top principal component of the same activations (data-derived);
random directions of the same norms are listed beside it.

Erasing a single pooled direction also ends the bias, but costs up to 10 points of accuracy on
clear content: the per-persona directions differ by a few degrees, and what the pooled one
misses, or adds, is read by the sentiment computation.

Mean-ablating the heads that carry the attribute (amplitude manipulation) was tried first and
is not used: on this model the same layer-0 heads also carry the content words, and ablating
them halves the accuracy. The attribute is a direction, not a set of components.

References:
- Ravfogel et al. 2020, "Null It Out: Guarding Protected Attributes by Iterative Nullspace
  Projection" (INLP); Belrose et al. 2023, "LEACE: Perfect linear concept erasure in closed
  form": removing an attribute by projecting out its direction.
- Vig et al. 2020, "Investigating Gender Bias in Language Models Using Causal Mediation
  Analysis": locating a bias's route by intervention.
- Arditi et al. 2024: difference-in-means directions and directional ablation at every layer.
"""

from __future__ import annotations

from typing import Any

import torch

from mi_atlas import runs
from reference_impls import zoo
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import LogitDiff
from reference_impls.recipes.common import (
    compare,
    draw_seed,
    inner_residual_sites,
    over_seeds,
    recipe_result,
    top_component,
)
from reference_impls.registry import Outcome, register_recipe
from reference_impls.steer import vector_arithmetic as va


def group_pair(task: Any, n: int, seed: int, **fixed: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """North prompts and the same prompts with the group token swapped to south."""
    north = task.prompts(n, seed, group="north", **fixed)
    return north, task.swap(north, task.GROUP_POS)


def locate_bias(model: Any, task: Any, n: int = 64, seed: int = 0) -> tuple[Any, Any]:
    """Denoising patching north -> south on ambiguous prompts over the inner residual sites;
    the site restoring most of the positive-vs-negative logit difference at the answer."""
    north, south = group_pair(task, n, seed, ambiguous=True, persona="formal")
    positive = torch.full((n,), task.IDS[task.ANSWERS[("formal", 1)]])
    negative = torch.full((n,), task.IDS[task.ANSWERS[("formal", 0)]])
    sites = inner_residual_sites(model, north.shape[1])
    patched = activation_patching(
        model, north, south, sites, LogitDiff(positive, negative, pos=task.ANSWER_POS)
    )
    return sites[int(patched.meta["recovered"].reshape(-1).argmax())], patched


def run(model_name: str = "persona-bias", n: int = 128, seed: int = 0) -> Outcome:
    """Patch to find the attribute, project its direction out everywhere, vs a random direction."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    located, patched = locate_bias(model, task, seed=seed)
    # one north - south direction per persona, from pairs where the group decides the answer;
    # their span is erased (the two are nearly parallel, but the small difference matters)
    directions, control = [], []
    for i, persona in enumerate(task.PERSONAS):
        north, south = group_pair(task, n, seed + 1 + i, ambiguous=True, persona=persona)
        directions.append(va.mean_difference(model, located, north, south))  # (d_model,)
        # data-derived control: the top principal component of the site's activations on
        # ordinary prompts of this persona (both groups, clear and ambiguous content); on the
        # north/south pairs themselves it would be the located direction by construction
        mixed = task.prompts(n, seed + 10 + i, persona=persona)
        control.append(top_component(model, located, mixed, directions[-1]))
    random = [va.random_direction(d, draw_seed(seed, i)) for i, d in enumerate(directions)]

    metrics = {
        "bias gap": (lambda: abs(task.bias_gap(model)), False),
        "accuracy on clear content": (lambda: task.evaluate(model)["accuracy"], True),
        "style accuracy": (lambda: task.evaluate(model)["style_accuracy"], True),
    }
    measures, restored = compare(
        model, lambda ds: va.ablate_directions(model, ds), directions, [control], metrics, north[:8]
    )
    randomly, _ = compare(
        model,
        lambda ds: va.ablate_directions(model, ds),
        directions,
        [random],
        {"bias gap": metrics["bias gap"]},
        north[:8],
    )
    truth = zoo.ground_truth(model_name)
    result = recipe_result(
        locate="causal-attribution: activation_patching north -> south over the inner residual stream",
        steer="vector-arithmetic: mean_difference (north - south, per persona) + ablate_directions at every layer",
        metric=measures["bias gap"],
        collateral=[measures["accuracy on clear content"], measures["style accuracy"]],
        targets=[located],
        control=runs.Control(
            kind="data-derived-direction",
            description="per persona, the top principal component of the located site's activations "
            "on ordinary prompts (both groups, clear and ambiguous content), scaled to the located direction's norm "
            f"({', '.join(f'{float(d.norm()):.3f}' for d in directions)}); their span projected "
            "out the same way",
        ),
        restored=restored,
        details={
            "direction_norms": [round(float(d.norm()), 4) for d in directions],
            "cosine of each located direction with its top principal component": [
                round(float(torch.nn.functional.cosine_similarity(d, c, dim=0)), 4)
                for d, c in zip(directions, control, strict=True)
            ],
            "random-direction control (same norms): bias gap": randomly["bias gap"].control.mean,
            "direction_cosine": round(
                float(torch.nn.functional.cosine_similarity(*directions, dim=0)), 4
            ),
        },
        located=patched.locate_result(
            setting="denoising: north-prompt residual streams patched into south prompts",
            metric="positive-minus-negative answer logit difference at the answer",
        ),
    )
    return Outcome(result, recovered=located.pos == truth["answer_position"])


@register_recipe("fairness-bias", default_model="persona-bias")
def fairness_bias(model_name: str) -> Outcome:
    """Patching finds where the group reaches the answer; projecting its direction out ends the bias."""
    return over_seeds(run, model_name)
