"""Shared plumbing of the locate methods' `mi-atlas run` demos on zoo models.

Each method module registers one demo (`fn(model_name) -> registry.Outcome`) that picks the
inputs its zoo task provides, runs the method and scores the ranking against the planted sites
(`Scores.locate_result`). What they share lives here: the induction task's clean/corrupted pairs
and planted sites, and the one-sentence error for a zoo model a method has no demo for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from reference_impls import addressing as A
from reference_impls.registry import RegistryError

BATCH = 16  # prompt pairs per demo: enough for stable rankings, a second on a laptop CPU


@dataclass
class Induction:
    """The induction task's patching pair and its planted heads on one zoo model."""

    model: Any
    truth: dict[str, Any]
    clean: Tensor  # <bos> A_1..A_L A_1..A_{L-1}: the model predicts A_L at the last position
    corrupted: Tensor  # <bos> B_1..B_L A_1..A_{L-1}: nothing to induct from
    answer: Tensor
    length: int  # L: position L holds A_L's first copy, the induction head's target

    @property
    def last(self) -> int:
        return self.clean.shape[1] - 1

    def induction_heads(self, pos: int | None = None) -> list[A.Site]:
        return [A.head(layer, h, pos=pos) for layer, h in self.truth["induction_heads"]]

    def previous_token_heads(self, pos: int | None = None) -> list[A.Site]:
        return [A.head(layer, h, pos=pos) for layer, h in self.truth["previous_token_heads"]]


def induction(model_name: str, method: str, n: int = BATCH, length: int = 6) -> Induction:
    """Load an induction zoo model and its patching pair, or say which models the method runs on."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "induction_heads" not in truth:
        raise unsupported(method, model_name, "a model with planted induction heads")
    model = zoo.load(model_name)
    clean, corrupted, answer = induction_pair(model_name, n, length)
    return Induction(model, truth, clean, corrupted, answer, length)


def induction_pair(
    model_name: str, n: int = BATCH, length: int = 6, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """The induction task's clean / corrupted prompts and answers drawn with data seed `seed`."""
    from reference_impls import zoo

    return zoo.task(model_name).patching_pair(n=n, length=length, seed=seed)


def unsupported(method: str, model_name: str, needs: str) -> RegistryError:
    """The error for a zoo model the method's demo cannot use."""
    from reference_impls import zoo

    return RegistryError(
        f"{method} has no demo for zoo model {model_name!r}; it needs {needs}: "
        f"{', '.join(n for n in zoo.names() if _fits(n, needs))}"
    )


def _fits(name: str, needs: str) -> bool:
    from reference_impls import zoo

    truth = zoo.ground_truth(name)
    keys = {
        "a model with planted induction heads": ("induction_heads",),
        "a model with planted induction heads or a located fact": ("induction_heads", "mlp_layer"),
        "a model with planted language neurons": ("language_neurons",),
        "a model with a planted residual direction": ("direction",),
    }.get(needs, ())
    return any(k in truth for k in keys)
