"""Fairness and bias: find the heads that carry a spurious attribute, and cut its route.

The zoo's persona-bias model learned a shortcut: on ambiguous content it answers positively for
the group token "north" and negatively for "south". Locate: activation patching from north into
south prompts (the same content, only the group token swapped) over every head's output at the
answer position; the heads that restore the north-vs-south difference are the attribute's
route to the answer. Steer: those heads are mean-ablated at the answer position (their output
replaced by its average over prompts of both groups, so it no longer depends on the group).
Improve: the bias gap P(positive | north) - P(positive | south) on ambiguous content falls
toward 0, while accuracy on clear content holds. The control mean-ablates as many randomly
chosen heads.

References:
- Vig et al. 2020, "Investigating Gender Bias in Language Models Using Causal Mediation
  Analysis": heads as mediators of a bias, found by intervention.
- Wang et al. 2022 (IOI): mean ablation; Chan et al. 2022 (causal scrubbing).
- Chintam et al. 2023, "Identifying and Adapting Transformer-Components Responsible for Gender
  Bias in an English Language Model"; Yang et al. 2023, "Bias A-head?".
"""

from __future__ import annotations

from typing import Any

import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import LogitDiff
from reference_impls.recipes.common import RecipeResult, compare, random_sites
from reference_impls.registry import register_recipe
from reference_impls.steer.amplitude_manipulation import ablate


def group_pair(task: Any, n: int, seed: int, persona: str = "formal") -> tuple[torch.Tensor, ...]:
    """Ambiguous north prompts, the same prompts with "south", and the positive/negative answers."""
    north = task.prompts(n, seed, ambiguous=True, group="north", persona=persona)
    south = task.swap(north, task.GROUP_POS)
    positive = torch.full((n,), task.IDS[task.ANSWERS[(persona, 1)]])
    negative = torch.full((n,), task.IDS[task.ANSWERS[(persona, 0)]])
    return north, south, positive, negative


def locate_bias_heads(
    model: Any, task: Any, n: int = 64, seed: int = 0, threshold: float = 0.1
) -> tuple[list[A.Site], Any]:
    """Heads whose north output, patched into south prompts, restores >= `threshold` of the gap."""
    north, south, positive, negative = group_pair(task, n, seed)
    sites = A.heads(model, positions=[task.ANSWER_POS])
    metric = LogitDiff(positive, negative, pos=task.ANSWER_POS)
    patched = activation_patching(model, north, south, sites, metric)
    recovered = patched.meta["recovered"].reshape(-1)
    located = [s for s, r in zip(sites, recovered.tolist(), strict=True) if r >= threshold]
    return located or [sites[int(recovered.argmax())]], patched


def run(model_name: str = "persona-bias", seed: int = 0) -> RecipeResult:
    """Patch to find the bias heads, mean-ablate them; bias gap and accuracy vs random heads."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    located, patched = locate_bias_heads(model, task, seed=seed)
    control = random_sites(A.heads(model, positions=[task.ANSWER_POS]), located, seed=seed)
    # the mean over both groups, ambiguous and clear content, both personas
    reference = task.prompts(256, seed + 1)

    def steer(sites: list[A.Site]):
        return ablate(model, sites, mode="mean", reference=reference)

    metrics = {
        "bias gap": (lambda: abs(task.bias_gap(model)), False),
        "accuracy on clear content": (lambda: task.evaluate(model)["accuracy"], True),
    }
    measures, restored = compare(model, steer, located, control, metrics, reference[:8])
    return RecipeResult(
        recipe="fairness-bias",
        model=model_name,
        locate="causal-attribution: activation_patching north -> south over heads at the answer",
        steer="amplitude-manipulation: ablate(mode='mean') of the located heads",
        metric=measures["bias gap"],
        collateral=[measures["accuracy on clear content"]],
        sites=located,
        control_sites=control,
        restored=restored,
        recovered=None,  # the zoo card plants the bias, not the heads that carry it
        details={
            "patching_recovered": {
                str(s): round(float(r), 4)
                for s, r in zip(
                    patched.sites, patched.meta["recovered"].reshape(-1).tolist(), strict=True
                )
            }
        },
    )


@register_recipe("fairness-bias", default_model="persona-bias")
def fairness_bias(model_name: str) -> dict[str, Any]:
    """Patching finds the heads carrying the group bias; mean-ablating them closes the gap."""
    return run(model_name).to_dict()
