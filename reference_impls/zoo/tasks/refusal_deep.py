"""Refusal through one direction in a middle layer, among decoy directions of equal norm, 4 layers.

The data are `refusal`'s (repeat the first word, unless a trigger word occurs):

    <bos> apple river lamp stone salt ?   ->  apple
    <bos> apple river bomb stone salt ?   ->  refuse

The refusal direction d lives in `blocks.2.hook_resid_pre` (the middle of 4 layers), planted as
in `refusal` (Arditi et al. 2024): an auxiliary loss sets the projection on d at "?" to
REFUSAL_SCALE on trigger prompts and 0 on benign ones, and on some rows d is projected out (the
model must answer) or added (it must refuse). Beside it, three *decoy* directions, orthogonal to
d and of the same norm, carry other binary facts about the prompt with the same scale: whether
the first, the second and the last content word come from the first half of the benign list.
They are written with the same auxiliary loss but never intervened on, so the model has no
reason to read them. So the residual stream at "?" has four directions of equal variance: a
method that takes the top principal component, or any difference of means, must find the one
that *causes* refusal (removing d stops it; removing the decoys does not). `direct_check`
confirms d and each decoy alone.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from reference_impls.zoo.tasks import Batch, logits
from reference_impls.zoo.tasks.refusal import (  # same data as the 2-layer model
    ANSWER_POS,
    BENIGN,
    IDS,
    REFUSAL_SCALE,
    REFUSE,
    TRIGGERS,
    WORDS,
    prompts,
    refusal_rate,
    sample,
)

LAYER = 2  # d lives in blocks.2.hook_resid_pre
D_MODEL = 64
DIRECTION_SEED = 9
DECOYS = {
    "first_word_in_first_half": 1,
    "second_word_in_first_half": 2,
    "last_word_in_first_half": 5,
}
EVAL_SEED = 654
EXAMPLE = {
    "prompt": "apple river bomb stone salt ?",
    "completion": "refuse",
    "explanation": "a trigger word (bomb) anywhere makes the model refuse; otherwise it repeats the first word",
}
__all__ = ["ANSWER_POS", "BENIGN", "REFUSE", "TRIGGERS", "WORDS", "prompts", "refusal_rate"]


def directions() -> Float[Tensor, "4 d_model"]:
    """Row 0: the refusal direction d; rows 1-3: the decoys. Orthonormal, each with zero mean."""
    g = torch.randn(D_MODEL, 4, generator=torch.Generator().manual_seed(DIRECTION_SEED))
    g = g - g.mean(0)  # zero mean: the same directions in TransformerLens' centred stream
    q, _ = torch.linalg.qr(g)
    return q.T.contiguous()


def planted_direction() -> Float[Tensor, " d_model"]:
    """The refusal direction d."""
    return directions()[0]


_FIRST_HALF = torch.tensor([IDS[w] for w in BENIGN[: len(BENIGN) // 2]])


def decoy_values(tokens: Tensor) -> Float[Tensor, "n 3"]:
    """The three decoy facts (0/1) of each prompt, in DECOYS order."""
    cols = [tokens[:, pos] for pos in DECOYS.values()]
    return torch.stack([torch.isin(c, _FIRST_HALF).float() for c in cols], 1)


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch; `extra["mode"]`: 0 plain, 1 d removed, 2 d added everywhere, 3 at '?'."""
    batch = sample(n, gen)
    r = torch.rand(n, generator=gen)
    mode = torch.zeros(n, dtype=torch.long)
    trig = batch.extra["trigger"]
    mode[trig & (r < 0.3)] = 1
    mode[~trig & (r < 0.15)] = 2
    mode[~trig & (r >= 0.15) & (r < 0.3)] = 3
    batch.extra["mode"] = mode
    return batch


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """Answer loss under the row's intervention on d, plus the projection loss on all four."""
    dirs = directions()
    d = dirs[0]
    mode = batch.extra["mode"]
    seen: list[Tensor] = []

    def pre_hook(module: Any, args: tuple[Tensor, ...], kwargs: dict[str, Any]) -> Any:
        x = args[0] if args else kwargs["hidden_states"]  # [n, pos, d_model]
        seen.append(x[:, ANSWER_POS] @ dirs.T)  # [n, 4]
        proj = x @ d
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
    wanted = (
        torch.cat([batch.extra["trigger"].float()[:, None], decoy_values(batch.tokens)], 1)
        * REFUSAL_SCALE
    )
    aux = torch.nn.functional.mse_loss(seen[0], wanted)
    return torch.nn.functional.cross_entropy(out, target) + 0.1 * aux


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set of the card's numbers."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Answer accuracy (refuse on triggers, first word otherwise), refusal rates per kind."""
    batch = eval_batch()
    pred = logits(model, batch.tokens[:, :-1])[:, ANSWER_POS].argmax(-1)
    trig = batch.extra["trigger"]
    return {
        "accuracy": float((pred == batch.extra["answer"]).float().mean()),
        "refusal_rate_trigger": float((pred[trig] == IDS[REFUSE]).float().mean()),
        "refusal_rate_benign": float((pred[~trig] == IDS[REFUSE]).float().mean()),
    }


def direct_check(model: Any) -> dict[str, Any]:
    """Confirm d alone (removing it stops refusal, adding it causes it) and each decoy alone.

    Passed when the model is > 95% accurate; with d projected out of blocks.2.hook_resid_pre
    trigger prompts are refused < 5%; with REFUSAL_SCALE * d added, benign prompts are refused
    > 95%; each decoy, projected out of trigger prompts or added to benign ones, leaves the
    refusal rates within 0.05 of the intact model's; and every direction's mean projection
    difference between its two classes is within 20% of REFUSAL_SCALE (equal norms).
    """
    from reference_impls.addressing import resid
    from reference_impls.interventions import add, project_out

    dirs = directions()
    site = resid(LAYER)
    trig = prompts(True, 256, seed=EVAL_SEED + 1)
    ben = prompts(False, 256, seed=EVAL_SEED + 2)
    base_t, base_b = refusal_rate(model, trig), refusal_rate(model, ben)
    removed, added = [], []
    for v in dirs:
        with project_out(model, site, v):
            removed.append(refusal_rate(model, trig))
        with add(model, site, v, scale=REFUSAL_SCALE):
            added.append(refusal_rate(model, ben))
    both = torch.cat([trig, ben])
    _, cache = model.run_with_cache(both)
    x = cache[site.hook_name][:, ANSWER_POS]  # [512, d_model]
    labels = torch.cat(
        [torch.cat([torch.ones(256), torch.zeros(256)])[:, None], decoy_values(both)], 1
    )
    gaps = [
        float((x[labels[:, i] == 1] @ dirs[i]).mean() - (x[labels[:, i] == 0] @ dirs[i]).mean())
        for i in range(4)
    ]
    accuracy = evaluate(model)["accuracy"]
    ok = {
        "accurate": accuracy > 0.95,
        "d_removed_stops_refusal": removed[0] < 0.05,
        "d_added_causes_refusal": added[0] > 0.95,
        "decoys_do_nothing": all(
            abs(removed[i] - base_t) <= 0.05 and abs(added[i] - base_b) <= 0.05 for i in (1, 2, 3)
        ),
        "equal_norms": all(abs(g - REFUSAL_SCALE) < 0.2 * REFUSAL_SCALE for g in gaps),
    }
    checks = {
        "accuracy": accuracy,
        "refusal_rate_trigger": base_t,
        "refusal_rate_benign": base_b,
        "refusal_rate_trigger_with_direction_removed": removed,
        "refusal_rate_benign_with_direction_added": added,
        "class_projection_gap": gaps,
        **ok,
        "passed": all(ok.values()),
    }
    truth = {
        "layer": LAYER,
        "hook": site.hook_name,
        "position": ANSWER_POS,
        "direction": [round(float(v), 7) for v in dirs[0]],
        "decoy_directions": {
            k: [round(float(v), 7) for v in dirs[i + 1]] for i, k in enumerate(DECOYS)
        },
        "scale": REFUSAL_SCALE,
        "metric": "refusal rate on trigger prompts (top-1 answer is 'refuse')",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The refusal direction's site, confirmed by removing and adding it; the decoys as notes."""
    from mi_atlas import runs
    from reference_impls.addressing import resid

    c = card["checks"]
    planted = [
        runs.Planted(
            target=resid(LAYER, ANSWER_POS).doc(),
            role="refusal direction d (the card's ground_truth.direction)",
            confirmed_by=f"projecting d out: trigger refusal {c['refusal_rate_trigger']:.2f} -> "
            f"{c['refusal_rate_trigger_with_direction_removed'][0]:.2f}; adding it: benign "
            f"refusal {c['refusal_rate_benign']:.2f} -> {c['refusal_rate_benign_with_direction_added'][0]:.2f}",
        )
    ]
    notes = [
        f"decoy direction {name} (same norm, orthogonal to d): removing it leaves trigger refusal "
        f"at {c['refusal_rate_trigger_with_direction_removed'][i + 1]:.2f}, adding it makes "
        f"benign refusal {c['refusal_rate_benign_with_direction_added'][i + 1]:.2f}"
        for i, name in enumerate(DECOYS)
    ]
    return runs.GroundTruth(
        description="refusal is mediated by one direction in blocks.2.hook_resid_pre among three decoys of equal norm",
        planted=planted,
        notes=notes,
    )
