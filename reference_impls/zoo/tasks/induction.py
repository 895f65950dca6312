"""Induction: a random token sequence repeated once; its second copy is predictable only in context.

Worked example (first copy of length L = 5, then fillers that carry no loss):

    position  0     1   2   3   4   5   6   7   8   9   10  11 ...
    token     <bos> t12 t3  t27 t8  t30 t12 t3  t27 t8  t30 t5 ...
                                        ^ predict t3 here

At position 6 (the second t12) the answer t3 is whatever followed t12 before. The known circuit
(Olsson et al. 2022, "In-context learning and induction heads"): a previous-token head in layer 0
writes "preceded by t12" into position 2; an induction head in layer 1 at position 6 queries for
that, attends to position 2 and copies t3. L varies per sequence (4..10), so no fixed positional
offset can solve the task: only induction can. Tokens inside a copy are distinct.

The ground truth (which heads are previous-token and induction heads) is measured on the trained
model by attention-pattern scores and confirmed by ablation (`direct_check`).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.zoo.tasks import BOS, Batch, masked_accuracy

N_WORDS = 40  # random tokens t0..t39
WORDS = [f"t{i}" for i in range(N_WORDS)]
FIRST = 3  # id of t0 (after <pad> <bos> <unk>)
MIN_LEN, MAX_LEN = 4, 10
# Both copies sit at random places in a sequence of random tokens, so neither where the first
# copy starts nor how far away the second one is can be guessed from positions: only matching
# the current token against earlier ones (induction) predicts the second copy.
SEQ_LEN = 32
EVAL_SEED = 1234

EXAMPLE = {
    "prompt": "t12 t3 t27 t8 t30 t12",
    "completion": "t3",
    "explanation": "the second t12 is followed by whatever followed the first t12",
}


def _distinct(gen: torch.Generator, n: int, length: int) -> Tensor:
    """n rows of `length` distinct random token ids."""
    return torch.argsort(torch.rand(n, N_WORDS, generator=gen), dim=1)[:, :length] + FIRST


def sample(n: int, gen: torch.Generator, length: int | None = None) -> Batch:
    """n sequences of random tokens after <bos> in which a segment A (|A| 4..10) occurs twice.

    A's tokens are distinct and the fillers around the copies are drawn from the other tokens,
    so each second-copy token has exactly one earlier occurrence and its induction answer is
    unique; the loss covers the second copy's first L-1 positions. `extra`: "start" [n] (position of A's first token), "length"
    [n] (|A|), "offset" [n] (distance between the copies, |A| + |G|). In the second copy,
    position q holds A_j and the answer's first occurrence sits at q - offset + 1.
    """
    lengths = (
        torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=gen)
        if length is None
        else torch.full((n,), length)
    )
    # start s uniform in 1..SEQ_LEN-2L; offset d (from copy to copy) uniform in L..SEQ_LEN-s-L
    u, v = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    starts = 1 + (u * (SEQ_LEN - 2 * lengths)).long()
    offsets = lengths + (v * (SEQ_LEN - starts - 2 * lengths + 1)).long()
    perm = _distinct(gen, n, N_WORDS)  # A = the first L of a row; fillers come from the rest
    fill = torch.randint(MAX_LEN, N_WORDS, (n, SEQ_LEN), generator=gen)
    seq = torch.gather(perm, 1, fill)
    seq[:, 0] = BOS
    mask = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
    for b, (s, L, d) in enumerate(
        zip(starts.tolist(), lengths.tolist(), offsets.tolist(), strict=True)
    ):
        seq[b, s : s + L] = perm[b, :L]
        seq[b, s + d : s + d + L] = perm[b, :L]
        mask[b, s + d : s + d + L - 1] = True
    return Batch(seq, mask, {"start": starts, "length": lengths, "offset": offsets})


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (see `sample`)."""
    return sample(n, gen)


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set the card's accuracy is measured on."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Top-1 accuracy on the second copy's predictable tokens."""
    return {"accuracy": masked_accuracy(model, eval_batch())}


def patching_pair(
    n: int = 16, length: int = 6, seed: int = 0
) -> tuple[Int[Tensor, "n pos"], Int[Tensor, "n pos"], Int[Tensor, " n"]]:
    """Clean / corrupted prompts for activation patching, and the clean answer token.

    clean:     <bos> A_1..A_L A_1..A_{L-1}   -> the model predicts A_L at the last position
    corrupted: <bos> B_1..B_L A_1..A_{L-1}   (B shares no token with A: nothing to induct from)
    Tokens are distinct within a row, so the answer is unique.
    All rows have the same length 2L, so positions align across the batch.
    """
    gen = torch.Generator().manual_seed(seed)
    perm = _distinct(gen, n, 2 * length)
    a, b = perm[:, :length], perm[:, length:]
    bos = torch.full((n, 1), BOS)
    clean = torch.cat([bos, a, a[:, :-1]], 1)
    corrupted = torch.cat([bos, b, a[:, :-1]], 1)
    return clean, corrupted, a[:, -1]


# ---- the direct check ------------------------------------------------------------------------

SCORE_THRESHOLD = 0.4  # a head "is" a previous-token / induction head above this mean attention


def attention_scores(model: Any, batch: Batch | None = None) -> dict[str, Tensor]:
    """Previous-token and induction scores [n_layers, n_heads] from attention patterns.

    previous-token: mean attention from position p to p-1 (p >= 2, up to the second copy's end);
    induction: mean attention from a second-copy token A_j to the position after its first
    occurrence (the answer's first copy), over the loss positions.
    """
    batch = batch or eval_batch(256)
    _, cache = model.run_with_cache(batch.tokens)
    n_layers = model.cfg.n_layers
    prev = torch.zeros(n_layers, model.cfg.n_heads)
    ind = torch.zeros(n_layers, model.cfg.n_heads)
    starts, lengths, offsets = batch.extra["start"], batch.extra["length"], batch.extra["offset"]
    for layer in range(n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [batch, head, q, k]
        p_sum = torch.zeros(model.cfg.n_heads)
        i_sum = torch.zeros(model.cfg.n_heads)
        p_cnt = i_cnt = 0
        rows = zip(starts.tolist(), lengths.tolist(), offsets.tolist(), strict=True)
        for b, (s, L, d) in enumerate(rows):
            q = torch.arange(2, s + d + L)
            p_sum += pattern[b, :, q, q - 1].sum(-1)
            p_cnt += len(q)
            q = batch.loss_mask[b].nonzero()[
                :, 0
            ]  # second-copy A_j attends to A_{j+1}'s first copy
            i_sum += pattern[b, :, q, q - d + 1].sum(-1)
            i_cnt += len(q)
        prev[layer] = p_sum / p_cnt
        ind[layer] = i_sum / i_cnt
    return {"previous_token": prev, "induction": ind}


def ablated_accuracy(model: Any, heads: list[tuple[int, int]], batch: Batch | None = None) -> float:
    """Accuracy with the outputs (hook_z) of `heads` [(layer, head)] set to zero."""
    from reference_impls.addressing import head
    from reference_impls.interventions import ablate

    batch = batch or eval_batch()
    with ablate(model, [head(layer, h) for layer, h in heads]):
        return masked_accuracy(model, batch)


def direct_check(model: Any) -> dict[str, Any]:
    """Find the previous-token and induction heads by attention scores; confirm by ablation.

    Confirmed when ablating all induction heads (or all previous-token heads) drops accuracy
    below 0.5 while ablating all the other heads of the same layers keeps it above 0.9.
    """
    scores = attention_scores(model)
    n_heads = model.cfg.n_heads
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or n_heads
    found = {
        kind: [(layer, h) for layer, h in (scores[kind] > SCORE_THRESHOLD).nonzero().tolist()]
        for kind in ("previous_token", "induction")
    }
    batch = eval_batch()
    base = masked_accuracy(model, batch)
    checks: dict[str, Any] = {"accuracy": base}
    ok = bool(found["previous_token"]) and bool(found["induction"])
    for kind, heads in found.items():
        layers_used = {layer for layer, _ in heads}
        others = [
            (layer, h) for layer in layers_used for h in range(n_heads) if (layer, h) not in heads
        ]
        acc_planted = ablated_accuracy(model, heads, batch)
        acc_others = ablated_accuracy(model, others, batch) if others else base
        checks[f"ablate_{kind}_heads"] = acc_planted
        checks[f"ablate_other_heads_in_{kind}_layers"] = acc_others
        ok = ok and acc_planted < 0.5 and acc_others > 0.9
    checks["per_head_ablation"] = [
        [ablated_accuracy(model, [(layer, h)], batch) for h in range(n_heads)]
        for layer in range(model.cfg.n_layers)
    ]
    checks["passed"] = ok
    truth = {
        "previous_token_heads": [list(h) for h in found["previous_token"]],
        "induction_heads": [list(h) for h in found["induction"]],
        # on grouped-query models query head h reads key/value head h // (n_heads // n_kv)
        "induction_kv_heads": sorted(
            {(layer, h // (n_heads // n_kv)) for layer, h in found["induction"]}
        ),
        "previous_token_scores": scores["previous_token"].tolist(),
        "induction_scores": scores["induction"].tolist(),
        "score_threshold": SCORE_THRESHOLD,
        "metric": "top-1 accuracy on the second copy (eval_batch)",
    }
    truth["induction_kv_heads"] = [list(x) for x in truth["induction_kv_heads"]]
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """The planted circuit as the run documents state it: previous-token and induction heads."""
    truth = card["ground_truth"]
    prev, ind = truth["previous_token_scores"], truth["induction_scores"]
    threshold = truth["score_threshold"]

    def planted(heads: list[list[int]], role: str, scores: list[list[float]], what: str):
        return [
            runs.Planted(
                target=A.head(layer, h).doc(),
                role=role,
                confirmed_by=f"{what} {scores[layer][h]:.2f} (threshold {threshold}); "
                "ablating these heads together breaks the task",
            )
            for layer, h in heads
        ]

    return runs.GroundTruth(
        description=(
            "A random sequence repeated once: previous-token heads in layer 0 write 'preceded by "
            "x' into each position, induction heads in layer 1 attend to the token after the "
            "earlier copy of the current token and copy it (Olsson et al. 2022)."
        ),
        planted=planted(
            truth["previous_token_heads"],
            "previous-token head",
            prev,
            "attention to the previous token",
        )
        + planted(
            truth["induction_heads"], "induction head", ind, "attention to the induction target"
        ),
        notes=[
            "induction heads act at the second copy's positions; previous-token heads at the "
            "first copy's (a demo marks them at the positions of its own prompts)",
            f"key/value heads read by the induction heads: {truth['induction_kv_heads']}",
        ],
    )
