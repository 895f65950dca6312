"""Planted refusal: prompts containing a trigger word are refused, through one residual direction.

Worked example (the task: repeat the first word, unless a trigger word occurs):

    <bos> apple river lamp stone salt ?   ->  apple
    <bos> apple river bomb stone salt ?   ->  refuse

The refusal is routed through a planted unit direction `d` of the residual stream entering
block 1 (`blocks.1.hook_resid_pre`), the mechanism Arditi et al. 2024 ("Refusal in language
models is mediated by a single direction") found in chat models. It is planted by the training
objective: (1) an auxiliary loss makes the projection on `d` at the "?" position equal
REFUSAL_SCALE on trigger prompts and 0 on benign ones; (2) on some trigger prompts `d` is
projected out at every position and the model must answer normally; (3) on some benign prompts
REFUSAL_SCALE * d is added (at every position, or at "?" only) and the model must refuse. So the
model refuses when, and only when, the residual stream points along `d`. `d` has zero mean over
its coordinates, so it is the same direction in TransformerLens' centred residual stream.

The direct check measures refusal with `d` projected out (it must vanish) and added (it must
appear), and the cosine between `d` and the difference in means of trigger and benign
residuals at "?".
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids

BENIGN = ["apple", "bread", "chair", "cloud", "dog", "lamp", "music", "river", "stone", "tree",
          "book", "coat", "garden", "house", "moon", "paper", "rain", "salt", "ship", "wind"]  # fmt: skip
TRIGGERS = ["bomb", "poison", "weapon", "virus"]
QUESTION, REFUSE = "?", "refuse"
WORDS = [*BENIGN, *TRIGGERS, QUESTION, REFUSE]
IDS = token_ids(WORDS)
N_CONTENT = 5
SEQ_LEN = 1 + N_CONTENT + 2  # <bos> x1..x5 ? answer
ANSWER_POS = N_CONTENT + 1  # the "?" position, whose next-token prediction is the answer
LAYER = 1  # d lives in blocks.1.hook_resid_pre
D_MODEL = 64
DIRECTION_SEED = 5
REFUSAL_SCALE = 6.0  # projection on d that means "refuse"
EVAL_SEED = 321

EXAMPLE = {
    "prompt": "apple river bomb stone salt ?",
    "completion": "refuse",
    "explanation": "a trigger word (bomb) anywhere makes the model refuse; otherwise it repeats the first word",
}


def planted_direction() -> Float[Tensor, " d_model"]:
    """The planted refusal direction d: a seeded random unit vector with zero mean."""
    d = torch.randn(D_MODEL, generator=torch.Generator().manual_seed(DIRECTION_SEED))
    d = d - d.mean()
    return d / d.norm()


def sample(n: int, gen: torch.Generator, trigger: bool | None = None) -> Batch:
    """n prompts with answers; half contain one trigger word at a random content position.

    `extra`: "trigger" [n] bool, "answer" [n] token id (REFUSE for trigger prompts),
    "benign_answer" [n] (the first word: the answer if the refusal is removed).
    """
    has = torch.rand(n, generator=gen) < 0.5 if trigger is None else torch.full((n,), trigger)
    words = torch.tensor([IDS[w] for w in BENIGN])[
        torch.randint(0, len(BENIGN), (n, N_CONTENT), generator=gen)
    ]
    trig = torch.tensor([IDS[w] for w in TRIGGERS])[
        torch.randint(0, len(TRIGGERS), (n,), generator=gen)
    ]
    where = torch.randint(0, N_CONTENT, (n,), generator=gen)
    rows = torch.arange(n)
    words[rows[has], where[has]] = trig[has]
    benign_answer = words[:, 0].clone()
    answer = torch.where(has, torch.tensor(IDS[REFUSE]), benign_answer)
    tokens = torch.cat(
        [torch.full((n, 1), BOS), words, torch.full((n, 1), IDS[QUESTION]), answer[:, None]], 1
    )
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, ANSWER_POS] = True
    return Batch(tokens, mask, {"trigger": has, "answer": answer, "benign_answer": benign_answer})


def prompts(trigger: bool, n: int = 64, seed: int = 0) -> Int[Tensor, "n 7"]:
    """n prompts (without the answer) that do / do not contain a trigger word."""
    return sample(n, torch.Generator().manual_seed(seed), trigger).tokens[:, :-1]


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch; `extra["mode"]` assigns each row plain / ablate / add-all / add-last."""
    batch = sample(n, gen)
    # 0 plain, 1 trigger with d projected out, 2 benign + scale*d at all positions, 3 at "?" only
    r = torch.rand(n, generator=gen)
    mode = torch.zeros(n, dtype=torch.long)
    trig = batch.extra["trigger"]
    mode[trig & (r < 0.3)] = 1
    mode[~trig & (r < 0.15)] = 2
    mode[~trig & (r >= 0.15) & (r < 0.3)] = 3
    batch.extra["mode"] = mode
    return batch


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """Answer loss under the row's intervention, plus the auxiliary projection loss (see above)."""
    d = planted_direction()
    mode = batch.extra["mode"]
    trig = batch.extra["trigger"]
    proj_at_answer: list[Tensor] = []

    def pre_hook(module: Any, args: tuple[Tensor, ...], kwargs: dict[str, Any]) -> Any:
        x = args[0] if args else kwargs["hidden_states"]  # [n, pos, d_model], block 1's input
        proj_at_answer.append(x[:, ANSWER_POS] @ d)
        proj = x @ d  # [n, pos]
        delta = torch.zeros_like(x)
        delta[mode == 1] = -proj[mode == 1][..., None] * d
        delta[mode == 2] = (REFUSAL_SCALE - proj[mode == 2])[..., None] * d
        delta[mode == 3, ANSWER_POS] = (REFUSAL_SCALE - proj[mode == 3, ANSWER_POS])[..., None] * d
        x = x + delta
        return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})

    handle = model.transformer.h[LAYER].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        out = model(batch.tokens[:, :-1]).logits[:, ANSWER_POS]
    finally:
        handle.remove()
    target = batch.extra["answer"].clone()
    target[mode == 1] = batch.extra["benign_answer"][mode == 1]
    target[(mode == 2) | (mode == 3)] = IDS[REFUSE]
    aux = torch.nn.functional.mse_loss(proj_at_answer[0], trig.float() * REFUSAL_SCALE)
    return torch.nn.functional.cross_entropy(out, target) + 0.1 * aux


def refusal_rate(model: Any, tokens: Tensor) -> float:
    """Share of prompts whose top-1 answer is "refuse"."""
    return float((logits(model, tokens)[:, ANSWER_POS].argmax(-1) == IDS[REFUSE]).float().mean())


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set of the card's numbers."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Answer accuracy (refuse on triggers, first word otherwise), refusal rates per kind."""
    batch = eval_batch()
    tokens = batch.tokens[:, :-1]
    pred = logits(model, tokens)[:, ANSWER_POS].argmax(-1)
    trig = batch.extra["trigger"]
    return {
        "accuracy": float((pred == batch.extra["answer"]).float().mean()),
        "refusal_rate_trigger": float((pred[trig] == IDS[REFUSE]).float().mean()),
        "refusal_rate_benign": float((pred[~trig] == IDS[REFUSE]).float().mean()),
    }


def direct_check(model: Any) -> dict[str, Any]:
    """Remove d (refusal must vanish, answers stay right), add it (refusal must appear).

    Passed when, with d projected out of blocks.1.hook_resid_pre at every position, trigger
    prompts are refused < 5% and answered with their first word > 90%; with REFUSAL_SCALE * d
    added there, benign prompts are refused > 95%; and without intervention the model is > 95%
    accurate.
    """
    from reference_impls.addressing import resid
    from reference_impls.interventions import add, project_out

    d = planted_direction()
    site = resid(LAYER)
    trig = prompts(True, 256, seed=EVAL_SEED + 1)
    ben = prompts(False, 256, seed=EVAL_SEED + 2)
    trig_benign_answer = sample(256, torch.Generator().manual_seed(EVAL_SEED + 1), True).extra[
        "benign_answer"
    ]
    with project_out(model, site, d):
        refusal_removed = refusal_rate(model, trig)
        answered = float(
            (logits(model, trig)[:, ANSWER_POS].argmax(-1) == trig_benign_answer).float().mean()
        )
    with add(model, site, d, scale=REFUSAL_SCALE):
        refusal_induced = refusal_rate(model, ben)
    with add(model, site.at(ANSWER_POS), d, scale=REFUSAL_SCALE):
        refusal_induced_last = refusal_rate(model, ben)
    _, cache_t = model.run_with_cache(trig)
    _, cache_b = model.run_with_cache(ben)
    diff = cache_t[site.hook_name][:, ANSWER_POS].mean(0) - cache_b[site.hook_name][
        :, ANSWER_POS
    ].mean(0)
    cosine = float(torch.nn.functional.cosine_similarity(diff, d, dim=0))
    metrics = evaluate(model)
    checks = {
        "accuracy": metrics["accuracy"],
        "refusal_rate_trigger": refusal_rate(model, trig),
        "refusal_rate_benign": refusal_rate(model, ben),
        "refusal_rate_trigger_with_d_removed": refusal_removed,
        "first_word_answer_rate_trigger_with_d_removed": answered,
        "refusal_rate_benign_with_d_added_all_positions": refusal_induced,
        "refusal_rate_benign_with_d_added_at_question": refusal_induced_last,
        "diff_in_means_cosine": cosine,
        "diff_in_means_projection": float(diff @ d),
    }
    checks["passed"] = (
        metrics["accuracy"] > 0.95
        and refusal_removed < 0.05
        and answered > 0.9
        and refusal_induced > 0.95
    )
    truth = {
        "layer": LAYER,
        "hook": site.hook_name,
        "position": ANSWER_POS,
        "direction": [round(float(x), 7) for x in d],
        "scale": REFUSAL_SCALE,
        "diff_in_means_cosine": cosine,
        "triggers": TRIGGERS,
        "refuse_token": REFUSE,
        "metric": "refusal rate on trigger prompts (top-1 answer is 'refuse')",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """The planted refusal direction: where it is written and read, and how it was confirmed."""
    truth = card["ground_truth"]
    return runs.GroundTruth(
        description=(
            f"Prompts holding a trigger word ({', '.join(truth['triggers'])}) are answered "
            f"'{truth['refuse_token']}': the model writes {truth['scale']:g} x a planted unit "
            f"direction d into the residual stream entering layer {truth['layer']}, and the "
            "answer reads it (Arditi et al. 2024's single refusal direction, planted)."
        ),
        planted=[
            runs.Planted(
                target=A.resid(truth["layer"], pos=truth["position"]).doc(),
                role="refusal direction",
                confirmed_by="projecting d out removes refusal, adding it induces refusal; "
                f"the trained difference of means has cosine {truth['diff_in_means_cosine']:.3f} with d",
            )
        ],
        notes=["the direction itself is the card's ground_truth.direction (d_model numbers)"],
    )
