"""Two-digit addition with few carries in training, 4 layers: a model that is bad at carrying.

Worked example (digits most significant first, the sum always three digits):

    position  0     1  2  3  4  5  6  7  8  9
    token     <bos> 3  7  +  2  5  =  0  6  2      37 + 25 = 062

The tens digit of the sum (position 8, predicted at position 7) depends on the units digits
only through the carry (7 + 5 >= 10). Training draws a carry problem only CARRY_SHARE of the
time, so the trained model gets problems without a carry right and carries often wrong: the
weakness that the `logic-reasoning` recipe repairs by fine-tuning only the heads that patching
locates (Zhang et al. 2024, "Interpreting and Improving Large Language Models in Arithmetic
Calculation": a few heads carry the operands; fine-tuning them alone improves calculation).

Problems are split once (seeded) into a training split and a held-out split (HELD_OUT_SHARE of
all 10,000 pairs); the zoo model and every fine-tune see only the training split. The held-out
problems are split again, once, into a validation half (where the recipe makes every choice,
e.g. how many heads to fine-tune) and a test half (measured once, after every choice is made;
the recipe's reported accuracies). No head has a planted role here:
the ground truth is the task's (what a carry is), not a circuit.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids

DIGITS = [str(d) for d in range(10)]
WORDS = [*DIGITS, "+", "="]
IDS = token_ids(WORDS)
ZERO = IDS["0"]
PLUS, EQUALS = IDS["+"], IDS["="]
SEQ_LEN = 10
ANSWER_POS = [7, 8, 9]  # positions of the sum's digits
C1_POS = 8  # the tens digit of the sum, the one a carry changes
CARRY_SHARE = (
    0.01  # share of carry problems in training (at 0.05 the model learns carries perfectly)
)
HELD_OUT_SHARE = 0.2
SPLIT_SEED = 2024
EVAL_SEED = 99

EXAMPLE = {
    "prompt": "3 7 + 2 5 =",
    "completion": "0 6 2",
    "explanation": "37 + 25 = 062: the tens digit needs the carry from 7 + 5",
}


def _split() -> tuple[Tensor, Tensor]:
    """(training pairs, held-out pairs) as [n, 2] tensors of numbers 0..99."""
    pairs = torch.cartesian_prod(torch.arange(100), torch.arange(100))
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_held = int(HELD_OUT_SHARE * len(pairs))
    return pairs[order[n_held:]], pairs[order[:n_held]]


TRAIN, HELD_OUT = _split()
# HELD_OUT is already in a seeded random order: its first half validates, its second half tests
VALIDATION, TEST = HELD_OUT[: len(HELD_OUT) // 2], HELD_OUT[len(HELD_OUT) // 2 :]
SPLITS = {"train": TRAIN, "held-out": HELD_OUT, "validation": VALIDATION, "test": TEST}


def has_carry(pairs: Int[Tensor, "n 2"]) -> Bool[Tensor, " n"]:
    """Whether the units digits carry into the tens."""
    return (pairs[:, 0] % 10 + pairs[:, 1] % 10) >= 10


def encode(pairs: Int[Tensor, "n 2"]) -> Int[Tensor, "n 10"]:
    """<bos> a1 a0 + b1 b0 = c2 c1 c0 for each pair (a, b)."""
    a, b = pairs[:, 0], pairs[:, 1]
    c = a + b
    n = len(pairs)
    cols = [
        torch.full((n,), BOS),
        ZERO + a // 10, ZERO + a % 10, torch.full((n,), PLUS),
        ZERO + b // 10, ZERO + b % 10, torch.full((n,), EQUALS),
        ZERO + c // 100, ZERO + (c // 10) % 10, ZERO + c % 10,
    ]  # fmt: skip
    return torch.stack(cols, 1)


def pool(split: str, carry: bool | None) -> Int[Tensor, "n 2"]:
    """The pairs of a split, optionally only with / without a carry.

    Splits: 'train', 'held-out' (= 'validation' + 'test', in no loss), 'validation', 'test'.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    pairs = SPLITS[split]
    if carry is None:
        return pairs
    return pairs[has_carry(pairs) == carry]


def draw(n: int, gen: torch.Generator, split: str, carry: bool | None) -> Int[Tensor, "n 2"]:
    """n pairs drawn with replacement from `pool(split, carry)`."""
    candidates = pool(split, carry)
    return candidates[torch.randint(0, len(candidates), (n,), generator=gen)]


def batch_of(pairs: Int[Tensor, "n 2"]) -> Batch:
    """The sequences of `pairs` with the loss on the three sum digits."""
    tokens = encode(pairs)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, [p - 1 for p in ANSWER_POS]] = True
    return Batch(tokens, mask, {"pairs": pairs, "carry": has_carry(pairs)})


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """Training-split problems, a carry problem with probability CARRY_SHARE."""
    carry = torch.rand(n, generator=gen) < CARRY_SHARE
    pairs = torch.where(carry[:, None], draw(n, gen, "train", True), draw(n, gen, "train", False))
    return batch_of(pairs)


def solved(model: Any, pairs: Int[Tensor, "n 2"]) -> Bool[Tensor, " n"]:
    """Whether all three sum digits are the top-1 predictions (teacher-forced = greedy here)."""
    tokens = encode(pairs)
    pred = logits(model, tokens)[:, [p - 1 for p in ANSWER_POS]].argmax(-1)
    return (pred == tokens[:, ANSWER_POS]).all(-1)


def accuracy(model: Any, split: str, carry: bool | None) -> float:
    """Exact-match accuracy on every pair of a split (optionally carry / no-carry only)."""
    return float(solved(model, pool(split, carry)).float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """Accuracy on the training distribution and, held out, with and without a carry."""
    gen = torch.Generator().manual_seed(EVAL_SEED)
    batch = training_batch(gen, 2048)
    return {
        "accuracy": float(solved(model, batch.extra["pairs"]).float().mean()),
        "held_out_no_carry_accuracy": accuracy(model, "held-out", False),
        "held_out_carry_accuracy": accuracy(model, "held-out", True),
    }


def carry_pairs(
    n: int, seed: int, split: str = "train"
) -> tuple[Int[Tensor, "n 8"], Int[Tensor, "n 8"], Int[Tensor, " n"], Int[Tensor, " n"]]:
    """Patching prompts up to the hundreds digit: carry problems and their no-carry twins.

    clean: a carry problem; corrupted: the same tens digits with units digits that do not
    carry. Pairs whose tens digits sum to 9 are left out, so the hundreds digit (part of the
    prompt) is the same in both. Returns (clean, corrupted, clean tens digit, corrupted tens
    digit); the metric reads position C1_POS - 1.
    """
    gen = torch.Generator().manual_seed(seed)
    candidates = pool(split, True)
    candidates = candidates[(candidates[:, 0] // 10 + candidates[:, 1] // 10) != 9]
    clean = candidates[torch.randint(0, len(candidates), (n,), generator=gen)]
    units = torch.cartesian_prod(torch.arange(10), torch.arange(10))
    units = units[units.sum(1) < 10]
    twin = units[torch.randint(0, len(units), (n,), generator=gen)]
    corrupted = torch.stack(
        [clean[:, 0] // 10 * 10 + twin[:, 0], clean[:, 1] // 10 * 10 + twin[:, 1]], 1
    )
    c_tok, k_tok = encode(clean), encode(corrupted)
    return c_tok[:, :C1_POS], k_tok[:, :C1_POS], c_tok[:, C1_POS], k_tok[:, C1_POS]


def direct_check(model: Any) -> dict[str, Any]:
    """The premise of the recipe: right without a carry, often wrong with one (held out).

    Passed when held-out accuracy without a carry is > 0.9 and with a carry < 0.8. Also
    measured: how often replacing both units digits of a held-out carry problem by a no-carry
    pair (same tens digits) changes the predicted tens digit of the sum: the units digits are
    the only input that decides a carry.
    """
    metrics = evaluate(model)
    clean, corrupted, _, _ = carry_pairs(512, EVAL_SEED, split="held-out")
    changed = logits(model, clean)[:, -1].argmax(-1) != logits(model, corrupted)[:, -1].argmax(-1)
    checks = {
        **metrics,
        "units_swap_changes_tens_digit": float(changed.float().mean()),
        "no_carry_right": metrics["held_out_no_carry_accuracy"] > 0.9,
        "carry_weak": metrics["held_out_carry_accuracy"] < 0.8,
    }
    checks["passed"] = checks["no_carry_right"] and checks["carry_weak"]
    truth = {
        "carry_share_in_training": CARRY_SHARE,
        "held_out_share": HELD_OUT_SHARE,
        "metric": "exact-match accuracy of the three sum digits on held-out problems",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """No planted heads: the truth is the task's (the units digits decide a carry)."""
    from mi_atlas import runs
    from reference_impls.addressing import embed

    c = card["checks"]
    confirmed = (
        "replacing both units digits of held-out carry problems by a no-carry pair changes the "
        f"predicted tens digit in {c['units_swap_changes_tens_digit']:.0%} of them"
    )
    return runs.GroundTruth(
        description="no planted heads: a model that rarely saw a carry and gets carries wrong",
        planted=[
            runs.Planted(
                target=embed(2).doc(),
                role="units digit of a (decides the carry)",
                confirmed_by=confirmed,
            ),
            runs.Planted(
                target=embed(5).doc(),
                role="units digit of b (decides the carry)",
                confirmed_by=confirmed,
            ),
        ],
        notes=[
            f"held-out accuracy without a carry {c['held_out_no_carry_accuracy']:.2f}, "
            f"with a carry {c['held_out_carry_accuracy']:.2f}",
            f"carries are {CARRY_SHARE:.0%} of training problems",
        ],
    )
