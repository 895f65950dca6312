"""Safety and reliability: find the refusal direction, then remove refusal or induce it at will.

Locate: a linear probe for "this prompt contains a trigger word" on the residual stream at the
answer position, at every layer; the earliest layer where the probe is (near) perfect is where
the refusal decision is written. Steer: the difference in means of triggered and benign
residuals there is the refusal direction; projecting it out of every residual site (directional
ablation) should remove refusal on triggered prompts without changing any benign answer, and,
the opposite, adding it at the answer position of benign prompts should make the model refuse
them. The control is a random direction of the same norm, steered the same way.

References:
- Arditi et al. 2024, "Refusal in Language Models Is Mediated by a Single Direction": the
  difference-in-means direction, directional ablation at every layer, and activation addition.
- Zou et al. 2023, "Representation Engineering": reading and steering with linear directions.
- Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes".
"""

from __future__ import annotations

from typing import Any

import torch

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate.probing import probe
from reference_impls.recipes.common import compare, over_seeds, recipe_result
from reference_impls.registry import Outcome, register_recipe
from reference_impls.steer import vector_arithmetic as va


def residual_sites_at(model: Any, pos: int) -> list[A.Site]:
    """The residual stream at `pos` before every block and after the last, earliest first."""
    n = A.dims(model).n_layers
    return [A.resid(layer, pos) for layer in range(n)] + [A.resid(n - 1, pos, where="post")]


def earliest_best(scores: Any, tolerance: float = 0.01) -> A.Site:
    """The first site (in the order scored) within `tolerance` of the best score."""
    values = scores.values.reshape(-1)
    best = float(values.max())
    return next(
        s for s, v in zip(scores.sites, values.tolist(), strict=True) if v >= best - tolerance
    )


def other_difference(
    model: Any, task: Any, site: Any, tokens: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """The data-derived control: a difference of means over a label that is not the trigger.

    The same prompts split by whether their first word is from the first half of the benign
    word list (on `refusal-deep` that label has a planted direction of its own, of the same
    norm as refusal's), rescaled to the norm of `like`.
    """
    first_half = torch.tensor([task.IDS[w] for w in task.BENIGN[: len(task.BENIGN) // 2]])
    split = torch.isin(tokens[:, 1], first_half)
    d = va.mean_difference(model, site, tokens[split], tokens[~split])
    return d / d.norm() * like.norm()


def run(model_name: str = "refusal", n: int = 128, seed: int = 0) -> Outcome:
    """Probe for the trigger, take the difference in means, ablate it (and add it), vs another."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    truth = zoo.ground_truth(model_name)
    pos = task.ANSWER_POS
    fit_trig, fit_ben = task.prompts(True, n, seed), task.prompts(False, n, seed + 1)
    eval_trig, eval_ben = task.prompts(True, 256, seed + 2), task.prompts(False, 256, seed + 3)

    # Locate: where is "trigger present" linearly readable at the answer position?
    labels = torch.cat([torch.ones(n), torch.zeros(n)]).long()
    probed = probe(model, torch.cat([fit_trig, fit_ben]), labels, residual_sites_at(model, pos))
    located = earliest_best(probed)
    direction = va.mean_difference(model, located, fit_trig, fit_ben)  # (d_model,)
    control = other_difference(model, task, located, torch.cat([fit_trig, fit_ben]), direction)
    cosine = float(
        torch.nn.functional.cosine_similarity(direction, torch.tensor(truth["direction"]), dim=0)
    )

    refuse = task.IDS[task.REFUSE]

    def answers(tokens: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(tokens)[:, pos].argmax(-1)

    benign_answers = answers(eval_ben)

    metrics = {
        "refusal on triggered prompts": (
            lambda: float((answers(eval_trig) == refuse).float().mean()),
            False,
        ),
        "benign answers unchanged": (
            lambda: float((answers(eval_ben) == benign_answers).float().mean()),
            True,
        ),
    }
    removed, restored = compare(
        model, lambda d: va.ablate_direction(model, d), direction, [control], metrics, eval_ben[:8]
    )
    # the opposite: add the direction at the answer position of benign prompts
    induced, restored_too = compare(
        model,
        lambda d: va.add_vector(model, located, d, coeff=1.0),
        direction,
        [control],
        {
            "refusal on benign prompts": (
                lambda: float((answers(eval_ben) == refuse).float().mean()),
                True,
            )
        },
        eval_ben[:8],
    )
    result = recipe_result(
        locate="probing: linear probe for the trigger on the residual stream at the answer position",
        steer="vector-arithmetic: mean_difference + ablate_direction (and add_vector)",
        metric=removed["refusal on triggered prompts"],
        collateral=[removed["benign answers unchanged"]],
        targets=[located],
        control=runs.Control(
            kind="data-derived-direction",
            description="another difference of means of the same activations: prompts whose "
            "first word is from the first half of the benign word list minus the others, scaled "
            f"to the same norm ({float(direction.norm()):.3f})",
        ),
        restored=restored and restored_too,
        details={
            "direction_cosine_with_planted": round(cosine, 4),
            "direction_norm": round(float(direction.norm()), 4),
        },
        other=[induced["refusal on benign prompts"]],
        located=probed.locate_result(
            setting=f"{n} trigger and {n} benign prompts; logistic probes at the answer position",
            metric="held-out probe accuracy",
        ),
    )
    return Outcome(result, recovered=located.layer == truth["layer"] and cosine > 0.9)


@register_recipe("safety-reliability", default_model="refusal")
def safety_reliability(model_name: str) -> Outcome:
    """Locate the refusal direction by probing; ablating it removes refusal, adding it induces it."""
    return over_seeds(run, model_name)
