"""Induction, 4 layers, nothing planted but the data: which heads do the work is measured.

Same data as `induction` (a random segment A, |A| 4..10, occurs twice among random fillers; the
second copy is predictable only by induction), worked example:

    <bos> t30 t12 t3 t27 t8 t31 t9 t12 t3 t27 ...
                                   ^ at the second t12, predict t3

on a 4-layer Llama (4 heads per layer, 16 heads) trained by next-token loss alone. An attempt to
plant the circuit by supervising every head's attention (`_planting`, as `ioi` and
`facts-deep` are planted) did not train here: content-matching roles (duplicate-token,
induction) in layers 1-3 stayed near uniform attention after 750 steps, with 40 or with 20
tokens, while positional roles trained in 100 steps. So this model's ground truth is *measured*,
the way Olsson et al. 2022 found induction heads: attention scores for every head (previous
token, duplicate token, induction), then ablation of each head alone and of each group. Heads
whose pattern looks like part of the circuit but whose ablation does not matter are the decoys a
pattern-only method would pick; the card lists them with their numbers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reference_impls.zoo.tasks import Batch, masked_accuracy
from reference_impls.zoo.tasks import _planting as P
from reference_impls.zoo.tasks.induction import (  # same data as the 2-layer model
    EVAL_SEED,
    N_WORDS,
    SEQ_LEN,
    WORDS,
    attention_scores,
    patching_pair,
    sample,
)

SCORE_THRESHOLD = 0.4  # a head "looks like" a role above this mean attention on its target
MATTERS = 0.05  # a head matters when ablating it alone costs more than this accuracy
EXAMPLE = {
    "prompt": "t30 t12 t3 t27 t8 t31 t9 t12",
    "completion": "t3",
    "explanation": "the second t12 is followed by whatever followed the first t12",
}
__all__ = ["N_WORDS", "SEQ_LEN", "WORDS", "patching_pair", "sample"]


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (the `induction` task's `sample`)."""
    return sample(n, gen)


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set the card's accuracy is measured on."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Top-1 accuracy on the second copy's predictable tokens."""
    return {"accuracy": masked_accuracy(model, eval_batch())}


def duplicate_scores(model: Any, batch: Batch) -> Tensor:
    """Mean attention [layer, head] on the earlier copy of the current token, where there is one."""
    _, cache = model.run_with_cache(batch.tokens)
    target = P.earlier_occurrence(batch.tokens)
    has = target > 0
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [b, head, q, k]
        picked = pattern.gather(-1, target[:, None, :, None].expand(-1, pattern.shape[1], -1, 1))
        out[layer] = picked[..., 0].transpose(0, 1)[:, has].mean(-1)
    return out


def direct_check(model: Any) -> dict[str, Any]:
    """Score every head's pattern; ablate each head alone and each group of look-alikes.

    A head is *planted* (on the answer's path) when its previous-token or induction score is
    above SCORE_THRESHOLD and ablating it alone costs more than MATTERS accuracy; a *decoy* when
    one of its scores (previous-token, duplicate-token, induction) is above the threshold but
    ablating it alone costs less. Passed when accuracy > 0.95, at least one previous-token and
    one induction head are on the path, and ablating all induction-scored heads together drops
    accuracy below 0.5.
    """
    batch = eval_batch()
    scores = attention_scores(model)
    scores["duplicate_token"] = duplicate_scores(model, eval_batch(128))
    base = masked_accuracy(model, batch)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads

    def acc() -> float:
        return masked_accuracy(model, batch)

    every = [(layer, h) for layer in range(n_layers) for h in range(n_heads)]
    alone = {P.label(c): P.ablated(model, [c], acc) for c in every}
    looks = {
        kind: [c for c in every if scores[kind][c] > SCORE_THRESHOLD]
        for kind in ("previous_token", "induction", "duplicate_token")
    }
    matters = {c for c in every if alone[P.label(c)] < base - MATTERS}
    planted = {
        kind: [c for c in looks[kind] if c in matters] for kind in ("previous_token", "induction")
    }
    decoys = {P.label(c): kind for kind, heads in looks.items() for c in heads if c not in matters}
    group = {kind: P.ablated(model, looks[kind], acc) for kind in looks}
    ok = {
        "accurate": base > 0.95,
        "circuit_found": bool(planted["previous_token"]) and bool(planted["induction"]),
        "induction_group_needed": group["induction"] < 0.5,
    }
    checks = {
        "accuracy": base,
        "scores": {k: v.tolist() for k, v in scores.items()},
        "ablate_alone_accuracy": alone,
        "ablate_group_accuracy": group,
        **ok,
        "passed": all(ok.values()),
    }
    truth = {
        "previous_token_heads": [list(c) for c in planted["previous_token"]],
        "induction_heads": [list(c) for c in planted["induction"]],
        "decoys": decoys,
        "score_threshold": SCORE_THRESHOLD,
        "metric": "top-1 accuracy on the second copy (eval_batch)",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The measured circuit heads with their ablations; the look-alike decoys as notes."""
    from mi_atlas import runs
    from reference_impls.addressing import head

    c, t = card["checks"], card["ground_truth"]
    base = c["accuracy"]

    def confirmed(layer: int, h: int) -> str:
        return (
            f"zero-ablating L{layer}H{h} alone: accuracy {base:.2f} -> "
            f"{c['ablate_alone_accuracy'][f'L{layer}H{h}']:.2f}"
        )

    planted = [
        runs.Planted(target=head(*hd).doc(), role=role, confirmed_by=confirmed(*hd))
        for key, role in (
            ("previous_token_heads", "previous-token head"),
            ("induction_heads", "induction head"),
        )
        for hd in t[key]
    ]
    notes = [
        f"look-alike {label} ({kind.replace('_', '-')} pattern, not needed alone): accuracy "
        f"{base:.2f} -> {c['ablate_alone_accuracy'][label]:.2f} when ablated alone"
        for label, kind in t["decoys"].items()
    ]
    notes.append(
        f"ablating every induction-scored head together: accuracy {c['ablate_group_accuracy']['induction']:.2f}"
    )
    return runs.GroundTruth(
        description="measured induction circuit (previous-token -> induction heads) of a 4-layer model",
        planted=planted,
        notes=notes,
    )
