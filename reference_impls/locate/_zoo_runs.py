"""Shared plumbing of the locate methods' `mi-atlas run` demos on zoo models.

Each method module registers one demo (`fn(model_name) -> registry.Outcome`) that picks the
inputs its zoo task provides, runs the method once per data seed (`SEEDS`: each seed draws its
own prompts) and scores the rankings against the planted sites as mean ± std over the seeds
(`scores.locate_result_over_seeds`). What they share lives here: the seeds, the per-seed loop,
the ranks of a task's look-alike decoys, the induction task's clean/corrupted pairs and planted
sites, and the one-sentence error for a zoo model a method has no demo for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from reference_impls import addressing as A
from reference_impls.registry import RegistryError

BATCH = 16  # prompt pairs per demo: enough for stable rankings, a second on a laptop CPU
SEEDS = (0, 1, 2, 3, 4)  # data seeds of every locate demo: each draws its own prompts


def per_seed(run: Callable[[int], dict[str, Any]], seeds: Sequence[int] = SEEDS) -> dict[str, list]:
    """`run(seed)` for every data seed; each key of its dict collected as a list in seed order.

    The lists feed `scores.locate_result_over_seeds` (a list of `Scores`) and its `numbers`
    (a list of floats becomes one Estimate, mean ± std over the seeds).
    """
    outs = [run(seed) for seed in seeds]
    return {key: [out[key] for out in outs] for key in outs[0]}


def decoy_ranks(per_seed: Sequence[Any], decoys: Sequence[A.Site]) -> dict[str, list[float]]:
    """Each decoy's 1-based rank in every seed's ranking (`Scores`), keyed 'rank of decoy LABEL'.

    A decoy looks like part of the mechanism (its attention pattern) but ablating it alone does
    not matter (the zoo card's measurement); a method that ranks a decoy above a planted site
    is fooled by the look-alike.
    """
    orders = [scores.ranking() for scores in per_seed]
    return {
        f"rank of decoy {site}": [float(order.index(site) + 1) for order in orders]
        for site in decoys
    }


@dataclass
class Induction:
    """The induction task's patching pair and its planted heads on one zoo model."""

    model: Any
    truth: dict[str, Any]
    clean: Tensor  # <bos> A_1..A_L A_1..A_{L-1}: the model predicts A_L at the last position
    corrupted: Tensor  # <bos> B_1..B_L A_1..A_{L-1}: nothing to induct from
    answer: Tensor
    length: int  # L: position L holds A_L's first copy, the induction head's target
    name: str = ""  # the zoo model's name

    def pair(self, seed: int) -> tuple[Tensor, Tensor, Tensor]:
        """This task's clean / corrupted prompts and answers drawn with data seed `seed`."""
        return induction_pair(self.name, self.clean.shape[0], self.length, seed)

    def planted(self) -> list[A.Site]:
        """The whole measured circuit where it acts: induction heads at the last position,
        previous-token heads at A_L's first copy (the key the induction heads look for)."""
        return self.induction_heads(pos=self.last) + self.previous_token_heads(pos=self.length)

    def decoys(self, pos: int | None = None) -> list[A.Site]:
        """Heads with a look-alike pattern whose ablation alone does not matter (the card's
        measured decoys; none on a model whose card lists none)."""
        return [A.head(*parse_head(label), pos=pos) for label in self.truth.get("decoys", {})]

    @property
    def last(self) -> int:
        return self.clean.shape[1] - 1

    def induction_heads(self, pos: int | None = None) -> list[A.Site]:
        return [A.head(layer, h, pos=pos) for layer, h in self.truth["induction_heads"]]

    def previous_token_heads(self, pos: int | None = None) -> list[A.Site]:
        return [A.head(layer, h, pos=pos) for layer, h in self.truth["previous_token_heads"]]


def parse_head(label: str) -> tuple[int, int]:
    """(layer, head) of a zoo card's head label such as 'L1H0'."""
    layer, head = label.removeprefix("L").split("H")
    return int(layer), int(head)


def induction(model_name: str, method: str, n: int = BATCH, length: int = 6) -> Induction:
    """Load an induction zoo model and its patching pair, or say which models the method runs on."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "induction_heads" not in truth:
        raise unsupported(method, model_name, "a model with planted induction heads")
    model = zoo.load(model_name)
    clean, corrupted, answer = induction_pair(model_name, n, length)
    return Induction(model, truth, clean, corrupted, answer, length, model_name)


def induction_pair(
    model_name: str, n: int = BATCH, length: int = 6, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """The induction task's clean / corrupted prompts and answers drawn with data seed `seed`."""
    from reference_impls import zoo

    return zoo.task(model_name).patching_pair(n=n, length=length, seed=seed)


IOI_PROMPTS = 32  # IOI prompt pairs per data seed


@dataclass
class HeadPatching:
    """A zoo task's clean / corrupted pairs per data seed, its head sites and planted heads."""

    model: Any
    pair: Callable[[int], tuple[Tensor, Tensor, Any]]  # seed -> (clean, corrupted, metric)
    sites: list[A.Site]
    planted: list[A.Site]
    decoys: list[A.Site]
    prompts: str  # one phrase: which prompt pairs
    metric: str  # one phrase: the metric


def head_patching(model_name: str, method: str) -> HeadPatching:
    """IOI (every head, all positions at once: names sit at different positions per prompt) or
    induction (every head at every position), or the error naming the models that fit."""
    from reference_impls import zoo
    from reference_impls.locate.metrics import CenteredLogit, LogitDiff

    truth = zoo.ground_truth(model_name)
    if "heads" in truth:  # the IOI card: head label -> role
        model, task = zoo.load(model_name), zoo.task(model_name)

        def ioi_pair(seed: int) -> tuple[Tensor, Tensor, Any]:
            clean, corrupted, io = task.patching_pair(IOI_PROMPTS, seed=seed)
            _, _, s = task.prompts(IOI_PROMPTS, seed=seed)  # the same draw: its S names
            return clean, corrupted, LogitDiff(io, s)

        return HeadPatching(
            model,
            ioi_pair,
            sites=A.heads(model, "out"),
            planted=[A.head(*parse_head(label)) for label in truth["heads"]],
            decoys=[],
            prompts=f"{IOI_PROMPTS} IOI prompt pairs (corrupted: S2 replaced by IO, so IO "
            "becomes S)",
            metric="logit(IO) - logit(S) at the last position",
        )
    if "induction_heads" not in truth:
        raise unsupported(method, model_name, "a model with planted IOI or induction heads")
    run = induction(model_name, method)

    def induction_pair_metric(seed: int) -> tuple[Tensor, Tensor, Any]:
        clean, corrupted, answer = run.pair(seed)
        return clean, corrupted, CenteredLogit(answer)

    return HeadPatching(
        run.model,
        induction_pair_metric,
        sites=A.heads(run.model, "out", positions=run.last + 1),
        planted=run.planted(),
        decoys=run.decoys(pos=run.last),
        prompts=f"{run.clean.shape[0]} induction prompt pairs (corrupted: the first copy of A "
        "replaced)",
        metric="answer logit minus mean logit at the last position",
    )


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
        "a model with planted IOI or induction heads": ("heads", "induction_heads"),
        "a model with planted IOI or induction heads or a located fact": (
            "heads",
            "induction_heads",
            "mlp_layer",
            "store",
        ),
        "a model with planted language neurons": ("language_neurons",),
        "a model with a planted residual direction": ("direction",),
    }.get(needs, ())
    return any(k in truth for k in keys)
