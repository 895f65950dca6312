"""Data modules of the zoo's synthetic tasks: deterministic inputs, labels and direct checks.

One module per task. Every module exposes the same small interface, used by the training script
and by tests, plus task-specific helpers that locate/steer methods and recipes use (clean and
corrupted prompts, facts, trigger and benign prompts, language A/B sentences, ...):

    WORDS                        the task's vocabulary (after the special tokens <pad> <bos> <unk>)
    training_batch(gen, n)       a `Batch` for one training step, drawn from a torch.Generator
    evaluate(model)              {"accuracy": ..., ...} on a fixed seeded held-out set
    direct_check(model)          {"ground_truth": {...}, "checks": {...}}: the planted mechanism,
                                 measured on the trained model by a check that is not one of the
                                 methods the zoo tests (attention scores, ablations, swaps)

`model` is a bridged zoo model (`reference_impls.zoo.load`) or a plain Hugging Face causal LM;
`logits(model, tokens)` runs either. Token id 0 is <pad>, 1 is <bos>; every sequence starts with
<bos>, as `model.to_tokens(text)` would prepend it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

PAD, BOS = 0, 1


@dataclass
class Batch:
    """Token sequences and where the next-token loss is taken.

    `loss_mask[b, t]` is True where the model's prediction at position t (of token t + 1) counts.
    `extra` carries task-specific tensors (labels, latent variables, ...), documented per task.
    """

    tokens: Int[Tensor, "batch pos"]
    loss_mask: Bool[Tensor, "batch pos"]
    extra: dict[str, Any] = field(default_factory=dict)


def logits(model: Any, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos vocab"]:
    """Logits of a bridged model or a Hugging Face causal LM (no gradient)."""
    with torch.no_grad():
        out = model(tokens)
    return out if isinstance(out, Tensor) else out.logits


def token_ids(words: list[str]) -> dict[str, int]:
    """Word -> token id in a zoo vocabulary built from `words` (special tokens come first)."""
    from reference_impls.zoo.checkpoint import SPECIAL

    return {w: i for i, w in enumerate([*SPECIAL, *words])}


def masked_accuracy(model: Any, batch: Batch) -> float:
    """Top-1 next-token accuracy over the positions of `batch.loss_mask`."""
    pred = logits(model, batch.tokens).argmax(-1)[:, :-1]
    target = batch.tokens[:, 1:]
    mask = batch.loss_mask[:, :-1]
    return float((pred == target)[mask].float().mean())
