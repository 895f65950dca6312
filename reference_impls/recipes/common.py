"""What every improve recipe shares: the same-size random control and the result it reports.

A recipe chains Locate -> Steer -> a measured improvement. To show that the *located* sites
matter, and not merely that steering anything of that size changes the model, the same steer
is applied to randomly chosen sites (or a random direction) of the same size, and every metric
is measured three times: before steering, after steering the located sites, and under the
control. `compare` does exactly that, checks that the model is bit-for-bit restored afterwards,
and `RecipeResult` is the dictionary `mi-atlas run <recipe> --json` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from reference_impls import addressing as A
from reference_impls.addressing import Site


def random_sites(
    candidates: Iterable[Site], like: Sequence[Site], seed: int = 0, exclude: bool = True
) -> list[Site]:
    """`len(like)` sites drawn uniformly without replacement from `candidates`.

    With `exclude` (the default) the located sites themselves are never drawn, so the control
    asks "does steering *other* sites of the same size do it?"; without it the draw is from
    all candidates, as a random pruning mask is.
    """
    located = set(like)
    pool = [s for s in candidates if not (exclude and s in located)]
    if len(pool) < len(like):
        raise ValueError(f"only {len(pool)} candidate sites outside the {len(like)} located ones")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return [pool[i] for i in order[: len(like)].tolist()]


def inner_residual_sites(model: Any, n_pos: int) -> list[Site]:
    """The residual stream entering every block after the first, at every position.

    Block 0's input is the token embedding itself (patching it swaps the token); the sites
    after it are where the model has written what it read. (`resid_mid` is left out: in
    TransformerLens 4's bridge, writing to `hook_resid_mid` changes only the MLP's input, not
    the residual stream that skips the MLP.)
    """
    n_layers = A.dims(model).n_layers
    return [A.resid(layer, pos) for layer in range(1, n_layers) for pos in range(n_pos)]


def random_direction(like: Tensor, seed: int = 0) -> Tensor:
    """A random direction with the norm of `like`: the same-size control for a steering vector."""
    r = torch.randn(like.shape, generator=torch.Generator().manual_seed(seed))
    return r / r.norm() * like.norm()


@dataclass(frozen=True)
class Measure:
    """One metric measured before steering, after steering the located sites, and on the control."""

    name: str
    before: float
    after: float
    control: float
    higher_is_better: bool = True

    @property
    def gain(self) -> float:
        """Improvement from steering the located sites (positive = better)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * (self.after - self.before)

    @property
    def control_gain(self) -> float:
        """Improvement from the same steer on the control (positive = better)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * (self.control - self.before)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": round(self.before, 4),
            "after": round(self.after, 4),
            "control": round(self.control, 4),
            "higher_is_better": self.higher_is_better,
        }


Metric = Callable[[], float]  # evaluates the model as it is right now
Steer = Callable[[Any], AbstractContextManager]  # target (sites or a direction) -> steering context


def compare(
    model: Any,
    steer: Steer,
    located: Any,
    controls: Sequence[Any],
    metrics: dict[str, tuple[Metric, bool]],
    probe: Int[Tensor, "batch pos"],
) -> tuple[dict[str, Measure], bool]:
    """Measure every metric before, under `steer(located)`, and under `steer(c)` for each control.

    `metrics` maps a name to (zero-argument evaluation, higher is better). `steer(target)` is a
    context manager that steers while open and undoes itself on exit (a hook context, or a
    `WeightEdit`, which is applied when made and undone on exit). The control value is the
    mean over `controls` (one random draw, or several to average out the luck of one). Returns
    the measures and whether the model's logits on `probe` are bit-for-bit what they were.
    """
    with torch.no_grad():
        reference = model(probe)
    before = {name: fn() for name, (fn, _) in metrics.items()}
    with steer(located):
        after = {name: fn() for name, (fn, _) in metrics.items()}
    ctrl = {name: 0.0 for name in metrics}
    for control in controls:
        with steer(control):
            for name, (fn, _) in metrics.items():
                ctrl[name] += fn() / len(controls)
    with torch.no_grad():
        restored = torch.equal(model(probe), reference)
    measures = {
        name: Measure(name, before[name], after[name], ctrl[name], better)
        for name, (_, better) in metrics.items()
    }
    return measures, restored


@dataclass
class RecipeResult:
    """A recipe's outcome: the headline metric, collateral metrics, the sites, and the control.

    `metric` is the improvement the recipe is for; `collateral` holds what must not get worse
    (benign outputs, task accuracy, other facts). `sites` are the located sites steered and
    `control_sites` the same-size random sites (for a direction, its description).
    """

    recipe: str  # sub-goal id (taxonomy/goals.yaml)
    model: str  # zoo model name
    locate: str  # locate method used, "taxonomy-id: function"
    steer: str  # steer method used, "taxonomy-id: function"
    metric: Measure
    collateral: list[Measure]
    sites: list[Any]
    control_sites: list[Any]
    restored: bool  # the model's outputs are bit-for-bit the original after the recipe
    recovered: bool | None = None  # did the locate step find the planted sites
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; sites are written with `Site.to_dict` when they are sites.

        This is the `result` of `mi-atlas run <recipe> --json` (the registry adds the model's
        ground truth and moves `recovered` up).
        """

        def site(s: Any) -> Any:
            return s.to_dict() if isinstance(s, Site) else s

        return {
            "recipe": self.recipe,
            "model": self.model,
            "locate": self.locate,
            "steer": self.steer,
            "metric": self.metric.to_dict(),
            "before": round(self.metric.before, 4),
            "after": round(self.metric.after, 4),
            "control": round(self.metric.control, 4),
            "collateral": [m.to_dict() for m in self.collateral],
            "sites": [site(s) for s in self.sites],
            "control_sites": [site(s) for s in self.control_sites],
            "restored": self.restored,
            "recovered": self.recovered,
            "details": self.details,
        }


def masked_logprob(tokens: Int[Tensor, "batch pos"], loss_mask: Tensor):
    """A locate metric: each example's mean log-probability of its next tokens on `loss_mask`.

    Shaped like the locate metrics (`reference_impls.locate.metrics`): logits with any leading
    copy axes, (*copies, batch, pos, vocab) -> (*copies, batch).
    """
    target = tokens[:, 1:]
    weights = loss_mask[:, :-1].float()

    def metric(logits: Tensor) -> Tensor:
        logprobs = torch.log_softmax(logits[..., :-1, :], dim=-1)  # (*copies, batch, pos-1, vocab)
        index = target.expand(*logprobs.shape[:-1]).unsqueeze(-1)
        picked = logprobs.gather(-1, index).squeeze(-1)  # (*copies, batch, pos-1)
        return (picked * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)

    return metric
