"""Persona and role: find where the persona is carried, and switch the voice on demand.

Locate: activation patching from casual into formal prompts (the same content, only the
persona token swapped) over the residual stream entering each block after the first, at every
position; the site that restores most of the casual answer is where the model holds the
persona (on the zoo model: the persona token's own position, after block 0). Steer: the
difference in means of casual and formal residuals there is a persona vector; adding it at
every position of that layer (contrastive activation addition) makes formal prompts answer in
the casual voice, subtracting it makes casual prompts formal, and the sentiment of the answer
does not change. The control adds the top principal component of the same activations
(data-derived, same sign and norm) the same way; a random direction of the same norm is listed
beside it.

References:
- Rimsky et al. 2024, "Steering Llama 2 via Contrastive Activation Addition" (CAA).
- Turner et al. 2023, "Steering Language Models With Activation Engineering" (ActAdd).
- Li et al. 2023, "Inference-Time Intervention"; Chen et al. 2025, "Persona Vectors".
- Heimersheim & Nanda 2024, "How to use and interpret activation patching".
"""

from __future__ import annotations

from typing import Any

import torch

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import LogitDiff
from reference_impls.recipes.common import (
    compare,
    inner_residual_sites,
    over_seeds,
    recipe_result,
    top_component,
)
from reference_impls.registry import Outcome, register_recipe
from reference_impls.steer import vector_arithmetic as va


def persona_pair(
    task: Any, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Formal prompts, the same prompts made casual, and each one's formal and casual answer."""
    batch = task.sample(n, torch.Generator().manual_seed(seed), ambiguous=False, persona="formal")
    formal = batch.tokens[:, :-1]
    casual = task.swap(formal, task.PERSONA_POS)
    sentiment = batch.extra["sentiment"].tolist()
    formal_answer = torch.tensor([task.IDS[task.ANSWERS[("formal", s)]] for s in sentiment])
    casual_answer = torch.tensor([task.IDS[task.ANSWERS[("casual", s)]] for s in sentiment])
    return formal, casual, formal_answer, casual_answer


def locate_persona(model: Any, task: Any, n: int = 64, seed: int = 0) -> tuple[A.Site, Any]:
    """Denoising patching casual -> formal over the inner residual sites; the site that restores
    the most of the casual-vs-formal logit difference at the answer."""
    formal, casual, formal_answer, casual_answer = persona_pair(task, n, seed)
    sites = inner_residual_sites(model, formal.shape[1])
    metric = LogitDiff(casual_answer, formal_answer, pos=task.ANSWER_POS)
    patched = activation_patching(model, casual, formal, sites, metric)
    recovered = patched.meta["recovered"].reshape(-1)
    return sites[int(recovered.argmax())], patched


def run(model_name: str = "persona-bias", n: int = 128, seed: int = 0) -> Outcome:
    """Patch to find the persona, add the casual-minus-formal vector there, vs a random vector."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    located, patched = locate_persona(model, task, seed=seed)
    fit_formal, fit_casual, _, _ = persona_pair(task, n, seed + 1)
    vector = va.mean_difference(model, located, fit_casual, fit_formal)  # casual - formal
    # the headline control is data-derived: the top principal component of the same
    # activations (sign and norm of the persona vector); a random direction is listed too
    # (on ordinary prompts of both personas and groups, clear and ambiguous content: on the
    # formal/casual pairs alone it would be the persona vector by construction)
    control = top_component(model, located, task.prompts(n, seed + 10), vector)
    random = va.random_direction(vector, seed)
    steered = located.at(None)  # CAA adds the vector at every position of that layer
    formal, casual, _, _ = persona_pair(task, 256, seed + 2)

    def predict(tokens: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(tokens)[:, task.ANSWER_POS].argmax(-1)

    sentiment = {
        "formal": task.is_positive(predict(formal)),
        "casual": task.is_positive(predict(casual)),
    }

    def casual_rate(tokens: torch.Tensor) -> float:
        return float(task.is_casual(predict(tokens)).float().mean())

    def sentiment_kept(tokens: torch.Tensor, persona: str) -> float:
        return float((task.is_positive(predict(tokens)) == sentiment[persona]).float().mean())

    to_casual, restored = compare(
        model,
        lambda v: va.add_vector(model, steered, v, coeff=1.0),
        vector,
        [control],
        {
            "formal prompts answered casually": (lambda: casual_rate(formal), True),
            "sentiment unchanged (formal -> casual)": (
                lambda: sentiment_kept(formal, "formal"),
                True,
            ),
        },
        formal[:8],
    )
    to_formal, restored_too = compare(
        model,
        lambda v: va.add_vector(model, steered, v, coeff=-1.0),
        vector,
        [control],
        {
            "casual prompts answered formally": (lambda: 1.0 - casual_rate(casual), True),
            "sentiment unchanged (casual -> formal)": (
                lambda: sentiment_kept(casual, "casual"),
                True,
            ),
        },
        casual[:8],
    )
    randomly, _ = compare(
        model,
        lambda v: va.add_vector(model, steered, v, coeff=1.0),
        vector,
        [random],
        {"formal prompts answered casually": (lambda: casual_rate(formal), True)},
        formal[:8],
    )
    truth = zoo.ground_truth(model_name)
    result = recipe_result(
        locate="causal-attribution: activation_patching casual -> formal over the inner residual stream",
        steer="vector-arithmetic: mean_difference (casual - formal) + add_vector, coeff +1 / -1",
        metric=to_casual["formal prompts answered casually"],
        collateral=[
            to_casual["sentiment unchanged (formal -> casual)"],
            to_formal["sentiment unchanged (casual -> formal)"],
        ],
        targets=[steered],
        control=runs.Control(
            kind="data-derived-direction",
            description="the top principal component of the located site's activations on "
            "ordinary prompts (both personas and groups, clear and ambiguous content), signed to agree with the persona vector and "
            f"scaled to its norm ({float(vector.norm()):.3f}), added the same way",
        ),
        restored=restored and restored_too,
        details={
            "vector_norm": round(float(vector.norm()), 4),
            "vector_from": str(located),
            "cosine of the persona vector with the top principal component": round(
                float(torch.nn.functional.cosine_similarity(vector, control, dim=0)), 4
            ),
            "random-direction control (same norm): formal prompts answered casually": randomly[
                "formal prompts answered casually"
            ].control.mean,
        },
        other=[to_formal["casual prompts answered formally"]],
        located=patched.locate_result(
            setting="denoising: casual-prompt residual streams patched into formal prompts",
            metric="casual-minus-formal answer logit difference at the answer",
        ),
    )
    return Outcome(result, recovered=located.pos == truth["persona"]["position"])


@register_recipe("persona-role", default_model="persona-bias")
def persona_role(model_name: str) -> Outcome:
    """Patching finds the persona; adding +/- the persona vector switches formal <-> casual."""
    return over_seeds(run, model_name)
