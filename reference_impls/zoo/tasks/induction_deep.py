"""Induction with decoys, 4 layers: one previous-token head and one induction head do the work.

Same data as `induction` (a random segment A, |A| 4..10, occurs twice among random fillers; the
second copy is predictable only by induction), worked example:

    <bos> t30 t12 t3 t27 t8 t31 t9 t12 t3 t27 ...
                                   ^ at the second t12, predict t3

but a 4-layer GPT-2 with 4 heads per layer where every head's attention is given a role
(`_planting`), so that the heads that *look* like parts of an induction circuit outnumber the
ones that are:

    layer 0   H0 self      H1 rest      H2 self       H3 duplicate (decoy)
    layer 1   H0 rest      H1 PREVIOUS  H2 self       H3 rest
    layer 2   H0 rest      H1 self      H2 free (INDUCTION)   H3 rest
    layer 3   H0 previous (decoy)       H1 rest       H2 self        H3 rest

The circuit (Olsson et al. 2022): L1H1 writes "preceded by t12" into the position of t3; L2H2 at
the second t12 attends there (K-composition with L1H1) and copies t3. L2H2 is the one head whose
attention is *not* supervised: it is the only head left that can learn induction, and the card
reports how far it did (its induction score). Supervising a content-matching pattern in layers
above 0 did not train here (a duplicate-token role in layer 1 or 2 stayed near uniform after 600
steps), so the duplicate-token decoy sits in layer 0, where it trains in a few hundred steps. The
decoys have the attention pattern of circuit heads but cannot feed the answer: L3H0 comes after
the induction head, and a duplicate-token head copies the current token, not the next one. The
decoys and the resting/self heads are dropped at random in training (probability 0.3), so the
model cannot come to depend on them. Each component is confirmed alone by zero ablation in
`direct_check`; a locate method that ranks by attention pattern alone scores the decoys as high
as the circuit.
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
    patching_pair,
    sample,
)


def _induction(tokens: Tensor) -> Tensor:
    return P.earlier_occurrence(tokens, shift=1)


def _duplicate(tokens: Tensor) -> Tensor:
    return P.earlier_occurrence(tokens, shift=0)


PREVIOUS_HEAD, INDUCTION_HEAD = (1, 1), (2, 2)
DECOYS = {(0, 3): "duplicate-token", (3, 0): "previous-token"}
ROLES: dict[tuple[int, int], P.Role] = {
    (0, 0): P.itself, (0, 1): P.resting, (0, 2): P.itself, (0, 3): _duplicate,
    (1, 0): P.resting, (1, 1): P.previous, (1, 2): P.itself, (1, 3): P.resting,
    (2, 0): P.resting, (2, 1): P.itself, (2, 3): P.resting,
    (3, 0): P.previous, (3, 1): P.resting, (3, 2): P.itself, (3, 3): P.resting,
}  # fmt: skip  (L2H2 is free)
DROPPED = [c for c in ROLES if c != PREVIOUS_HEAD]  # may not be depended on
DROPOUT = 0.3
ROLE_NAMES = {
    P.itself: "self",
    P.resting: "rest (<bos>)",
    P.previous: "previous-token",
    _duplicate: "duplicate-token",
    _induction: "induction",
}
ATTENTION_WEIGHT = 1.0  # weight of the attention-role loss beside the next-token loss

EXAMPLE = {
    "prompt": "t30 t12 t3 t27 t8 t31 t9 t12",
    "completion": "t3",
    "explanation": "the second t12 is followed by whatever followed the first t12",
}
__all__ = ["N_WORDS", "SEQ_LEN", "WORDS", "patching_pair", "sample"]


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (the `induction` task's `sample`) with per-row head-dropout masks."""
    batch = sample(n, gen)
    batch.extra["dropout"] = P.head_dropout(n, 4, DROPPED, DROPOUT, gen)
    return batch


def prepare(model: Any) -> None:
    """Eager attention, so training sees the attention probabilities it supervises."""
    P.eager(model)


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """Next-token loss on the second copy plus the attention-role loss of every head."""
    with P.heads_scaled(model, batch.extra["dropout"]):
        logits, attentions = P.forward(model, batch.tokens)
    mask = batch.loss_mask[:, :-1]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1][mask], batch.tokens[:, 1:][mask])
    return ce + ATTENTION_WEIGHT * P.attention_loss(attentions, batch.tokens, ROLES)


def induction_score(model: Any, batch: Batch) -> float:
    """Mean attention of the free head L2H2 on the induction target at the loss positions."""
    _, cache = model.run_with_cache(batch.tokens)
    pattern = cache[f"blocks.{INDUCTION_HEAD[0]}.attn.hook_pattern"][:, INDUCTION_HEAD[1]]
    target = _induction(batch.tokens)
    picked = pattern.gather(-1, target[..., None])[..., 0]
    return float(picked[batch.loss_mask].mean())


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set the card's accuracy is measured on."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Top-1 accuracy on the second copy's predictable tokens."""
    return {"accuracy": masked_accuracy(model, eval_batch())}


def direct_check(model: Any) -> dict[str, Any]:
    """Each head's attention matches its role; each component confirmed by ablating it alone.

    Passed when every supervised head puts > 0.5 of its attention on its role's target (the
    free head's induction score is reported); zero-ablating the
    previous-token head L1H1 alone, or the induction head L2H2 alone, drops accuracy below 0.5;
    and zero-ablating any one decoy keeps accuracy within 0.05 of the intact model.
    """
    batch = eval_batch()
    scores = P.role_scores(model, eval_batch(128).tokens, ROLES)
    base = masked_accuracy(model, batch)

    def acc() -> float:
        return masked_accuracy(model, batch)

    alone = {P.label(c): P.ablated(model, [c], acc) for c in ROLES}
    planted_ok = all(alone[P.label(c)] < 0.5 for c in (PREVIOUS_HEAD, INDUCTION_HEAD))
    decoys_ok = all(alone[P.label(c)] > base - 0.05 for c in DECOYS)
    patterns_ok = min(scores.values()) > 0.5
    induction = induction_score(model, eval_batch(128))
    checks = {
        "accuracy": base,
        "free_head_induction_score": induction,
        "role_attention": {P.label(c): s for c, s in scores.items()},
        "ablate_alone_accuracy": alone,
        "planted_heads_needed": planted_ok,
        "decoys_not_needed": decoys_ok,
        "patterns_match_roles": patterns_ok,
        "passed": planted_ok and decoys_ok and patterns_ok,
    }
    truth = {
        "previous_token_heads": [list(PREVIOUS_HEAD)],
        "induction_heads": [list(INDUCTION_HEAD)],
        "decoys": {P.label(c): role for c, role in DECOYS.items()},
        "roles": {P.label(c): ROLE_NAMES[r] for c, r in ROLES.items()}
        | {P.label(INDUCTION_HEAD): "free (learned induction)"},
        "metric": "top-1 accuracy on the second copy (eval_batch)",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> runs.GroundTruth (import kept torch-free at top)
    """The planted circuit as a run document states it, confirmed by the card's ablations."""
    from mi_atlas import runs
    from reference_impls.addressing import head

    alone = card["checks"]["ablate_alone_accuracy"]
    base = card["checks"]["accuracy"]

    def confirmed(c: tuple[int, int]) -> str:
        return f"zero-ablating {P.label(c)} alone: accuracy {base:.2f} -> {alone[P.label(c)]:.2f}"

    planted = [
        runs.Planted(target=head(*PREVIOUS_HEAD).doc(), role="previous-token head",
                     confirmed_by=confirmed(PREVIOUS_HEAD)),
        runs.Planted(target=head(*INDUCTION_HEAD).doc(), role="induction head",
                     confirmed_by=confirmed(INDUCTION_HEAD)),
    ]  # fmt: skip
    notes = [
        f"decoy {P.label(c)} ({role} pattern, not on the answer's path): {confirmed(c)}"
        for c, role in DECOYS.items()
    ]
    return runs.GroundTruth(
        description="L1H1 (previous token) -> L2H2 (induction) among look-alike decoy heads",
        planted=planted,
        notes=notes,
    )
