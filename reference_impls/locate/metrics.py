"""Patching metrics: functions from logits to one number per example.

Every metric accepts logits with any leading copy axes, `(*copies, batch, pos, vocab)`, and
returns `(*copies, batch)`, so the batched sweeps can score all patched copies at once and
TransformerLens' scalar-metric loops can use `metric(logits).mean()` on the very same function.
The logit difference between a correct and an incorrect answer is the metric Heimersheim &
Nanda 2024 ("How to use and interpret activation patching") recommend; the answer probability
is the one Meng et al. 2022 (ROME) trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor


def _answer_logits(
    logits: Float[Tensor, "*copies batch pos vocab"], answer: Int[Tensor, " batch"], pos: int
) -> Float[Tensor, "*copies batch"]:
    last = logits[..., pos, :]  # (*copies, batch, vocab)
    index = answer.to(last.device).expand(*last.shape[:-1]).unsqueeze(-1)
    return last.gather(-1, index).squeeze(-1)


@dataclass(frozen=True)
class LogitDiff:
    """logit(answer) - logit(wrong) at position `pos`, per example."""

    answer: Int[Tensor, " batch"]
    wrong: Int[Tensor, " batch"]
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        return _answer_logits(logits, self.answer, self.pos) - _answer_logits(
            logits, self.wrong, self.pos
        )


@dataclass(frozen=True)
class AnswerLogProb:
    """log p(answer) at position `pos`, per example."""

    answer: Int[Tensor, " batch"]
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        logprobs = torch.log_softmax(logits[..., self.pos : (self.pos + 1) or None, :], dim=-1)
        return _answer_logits(logprobs, self.answer, 0)


@dataclass(frozen=True)
class AnswerProb:
    """p(answer) at position `pos`, per example: the quantity ROME's causal tracing restores."""

    answer: Int[Tensor, " batch"]
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        return AnswerLogProb(self.answer, self.pos)(logits).exp()


@dataclass(frozen=True)
class CenteredLogit:
    """logit(answer) - mean logit at position `pos`, per example.

    Unlike log-probabilities it does not saturate when the model is already sure, so gradient
    methods still see how each component pushes the answer (Nanda's attribution patching and
    EAP use logit differences for the same reason).
    """

    answer: Int[Tensor, " batch"]
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        return _answer_logits(logits, self.answer, self.pos) - logits[..., self.pos, :].mean(-1)


@dataclass(frozen=True)
class AnswerLogit:
    """logit(answer) at position `pos`, per example (the raw logit, not centred)."""

    answer: Int[Tensor, " batch"]
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        return _answer_logits(logits, self.answer, self.pos)


@dataclass(frozen=True)
class NegativeKL:
    """-KL(reference || run) at position `pos`, per example: 0 where the run's next-token
    distribution equals the reference run's (the clean run), negative elsewhere, so that higher
    means "more like clean" as for the other metrics."""

    reference: Float[Tensor, "batch vocab"]  # the reference run's log-probabilities at `pos`
    pos: int = -1

    def __call__(self, logits: Float[Tensor, "*copies batch pos vocab"]) -> Tensor:
        run = torch.log_softmax(logits[..., self.pos, :].float(), dim=-1)
        ref = self.reference.to(run.device)
        return -(ref.exp() * (ref - run)).sum(dim=-1)
