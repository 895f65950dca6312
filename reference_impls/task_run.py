"""A task file on a model: token tensors, answers and the metric, ready for any method.

`mi_atlas.tasks` validates the file (torch-free); here its prompts are tokenised by the model's
own tokenizer (or taken as ids), checked against the model (equal clean/corrupted lengths, ids
inside the vocabulary, one-token answers) and stacked into a batch, and its metric becomes one
of `reference_impls.locate.metrics`. Every problem is a `TaskError` naming the file, the prompt
and what would be valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas.tasks import Fact, Prompt, Task, TaskError
from reference_impls.locate import metrics as M
from reference_impls.locate._batched_patch import Metric


@dataclass(frozen=True)
class TaskBatch:
    """A task's prompt pairs on one model: clean/corrupted ids, answers, and the read position."""

    task: Task
    source: str  # the task file
    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]
    answer: Int[Tensor, " batch"]
    counterfactual: Int[Tensor, " batch"] | None
    position: int  # non-negative

    @property
    def n(self) -> int:
        return self.clean.shape[0]

    @property
    def n_pos(self) -> int:
        return self.clean.shape[1]

    @property
    def differing(self) -> list[int]:
        """Positions where some clean prompt differs from its corrupted one."""
        return (self.clean != self.corrupted).any(dim=0).nonzero().flatten().tolist()

    def metric(self, model: Any) -> Metric:
        """The task's metric as a function of logits, reading `position`."""
        name, pos = self.task.metric, self.position
        if name == "logit-diff":
            return M.LogitDiff(self.answer, self.counterfactual, pos)
        if name == "answer-logit":
            return M.AnswerLogit(self.answer, pos)
        if name == "answer-prob":
            return M.AnswerProb(self.answer, pos)
        if name == "answer-logprob":
            return M.AnswerLogProb(self.answer, pos)
        with torch.no_grad():  # kl: against the clean run's own distribution
            reference = torch.log_softmax(model(self.clean.to(_device(model)))[:, pos].float(), -1)
        return M.NegativeKL(reference, pos)

    def to(self, device: Any) -> TaskBatch:
        cf = None if self.counterfactual is None else self.counterfactual.to(device)
        return TaskBatch(
            self.task,
            self.source,
            self.clean.to(device),
            self.corrupted.to(device),
            self.answer.to(device),
            cf,
            self.position,
        )


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def prepare(task: Task, model: Any, source: str | Path = "") -> TaskBatch:
    """Tokenise and check `task` against `model`; TaskError names the prompt that does not fit."""
    where = str(source) or task.name
    vocab = model.cfg.d_vocab
    tokenizer = getattr(model, "tokenizer", None)
    clean, corrupted, answers, counterfactuals = [], [], [], []
    for i, prompt in enumerate(task.prompts):
        ids = _pair(prompt, tokenizer, f"{where}: prompts.{i}")
        for field, seq in zip(("clean", "corrupted"), ids, strict=True):
            bad = [t for t in seq if not 0 <= t < vocab]
            if bad:
                raise TaskError(
                    f"{where}: prompts.{i}.{field}: token id {bad[0]} is outside the model's "
                    f"vocabulary (0..{vocab - 1})"
                )
        clean.append(ids[0])
        corrupted.append(ids[1])
        answers.append(
            _one(prompt.answer, prompt.answer_id, tokenizer, f"{where}: prompts.{i}.answer", vocab)
        )
        if prompt.has_counterfactual:
            counterfactuals.append(
                _one(
                    prompt.counterfactual,
                    prompt.counterfactual_id,
                    tokenizer,
                    f"{where}: prompts.{i}.counterfactual",
                    vocab,
                )
            )
    lengths = {len(c) for c in clean}
    if len(lengths) > 1:
        first = len(clean[0])
        other = next(i for i, c in enumerate(clean) if len(c) != first)
        raise TaskError(
            f"{where}: prompts.0 has {first} tokens but prompts.{other} has {len(clean[other])}; "
            "every pair of a task must have the same length (sites are compared by position)"
        )
    n_pos = len(clean[0])
    if not -n_pos <= task.position < n_pos:
        raise TaskError(
            f"{where}: position {task.position} is outside the prompts' {n_pos} tokens "
            f"(valid: {-n_pos}..{n_pos - 1})"
        )
    cf = torch.tensor(counterfactuals) if len(counterfactuals) == len(answers) else None
    return TaskBatch(
        task,
        where,
        torch.tensor(clean),
        torch.tensor(corrupted),
        torch.tensor(answers),
        cf,
        task.position % n_pos,
    )


def _pair(prompt: Prompt, tokenizer: Any, where: str) -> tuple[list[int], list[int]]:
    if prompt.clean_ids is not None:
        return list(prompt.clean_ids), list(prompt.corrupted_ids or [])
    clean = _tokenise(prompt.clean or "", tokenizer, where + ".clean")
    corrupted = _tokenise(prompt.corrupted or "", tokenizer, where + ".corrupted")
    if len(clean) != len(corrupted):
        raise TaskError(
            f"{where}: clean is {len(clean)} tokens but corrupted is {len(corrupted)} tokens; "
            "patching needs equal lengths (clean: "
            f"{_show(tokenizer, clean)}; corrupted: {_show(tokenizer, corrupted)})"
        )
    return clean, corrupted


def _tokenise(text: str, tokenizer: Any, where: str) -> list[int]:
    if tokenizer is None:
        raise TaskError(
            f"{where}: the model has no tokenizer, so prompts must be token ids "
            "(clean_ids / corrupted_ids, answer_id)"
        )
    # exactly the text's tokens: a BOS token is part of the prompt only if the text has it
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise TaskError(f"{where}: {text!r} has no tokens")
    return list(ids)


def _show(tokenizer: Any, ids: list[int]) -> str:
    return " | ".join(tokenizer.convert_ids_to_tokens(ids))


def _one(text: str | None, token_id: int | None, tokenizer: Any, where: str, vocab: int) -> int:
    if token_id is not None:
        if token_id >= vocab:
            raise TaskError(
                f"{where}: token id {token_id} is outside the model's vocabulary (0..{vocab - 1})"
            )
        return token_id
    ids = _tokenise(text or "", tokenizer, where)
    if len(ids) != 1:
        raise TaskError(
            f"{where}: {text!r} is {len(ids)} tokens ({_show(tokenizer, ids)}); an answer is one "
            "token (or give its id)"
        )
    return ids[0]


@dataclass(frozen=True)
class FactInputs:
    """A task's fact as ids: the prompt, the subject position and the new target."""

    prompt: Int[Tensor, "1 pos"]
    subject_position: int
    target: int
    layer: int | None  # None: the caller locates it


def fact_inputs(fact: Fact, model: Any, where: str) -> FactInputs:
    """The fact of a task on `model`; TaskError where it does not fit."""
    tokenizer = getattr(model, "tokenizer", None)
    if fact.prompt_ids is not None:
        ids = list(fact.prompt_ids)
    else:
        ids = _tokenise(fact.prompt or "", tokenizer, f"{where}: fact.prompt")
    n = len(ids)
    if not -n <= fact.subject_position < n:
        raise TaskError(
            f"{where}: fact.subject_position {fact.subject_position} is outside the prompt's {n} "
            "tokens"
        )
    target = _one(
        fact.target, fact.target_id, tokenizer, f"{where}: fact.target", model.cfg.d_vocab
    )
    layer = fact.layer
    if layer is not None and layer >= model.cfg.n_layers:
        raise TaskError(f"{where}: fact.layer {layer} is not in 0..{model.cfg.n_layers - 1}")
    return FactInputs(torch.tensor([ids]), fact.subject_position % n, target, layer)
