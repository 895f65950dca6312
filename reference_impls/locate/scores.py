"""The result every locate method returns: scores over sites, with what they mean.

`Scores` is `addressing.SiteScores` (a score tensor and the sites it is indexed by) plus the
method that produced it, one sentence on what a value means, and metadata (baselines, the
parameters used, other per-site tensors). It adds the questions a test or a reader asks of a
ranking: by how much do the planted sites beat the rest, and how does the ranking score against
them (`recovery`: AUROC, precision at k, 1-based ranks, from `mi_atlas.runs`). `scored()` and
`locate_result()` turn it into the typed run document; ranking is written once, in `runs.ranked`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mi_atlas import runs
from reference_impls.addressing import Site, SiteError, SiteScores


@dataclass(frozen=True)
class Scores(SiteScores):
    """Scores over sites; by convention a higher value means "more implicated"."""

    method: str = ""
    meaning: str = ""  # one sentence: what a value is
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def flat(
        cls, values: Tensor, sites: Iterable[Site], method: str, meaning: str, **meta: Any
    ) -> Scores:
        """One score per site, in the order of `sites` (detached, on CPU)."""
        sites = tuple(sites)
        return cls(
            values.detach().float().cpu().reshape(len(sites)),
            sites,
            ("site",),
            method=method,
            meaning=meaning,
            meta=meta,
        )

    def ranking(self) -> list[Site]:
        """All sites, highest score first (ties keep site order)."""
        order = torch.argsort(self.values.reshape(-1), descending=True, stable=True)
        return [self.sites[i] for i in order.tolist()]

    def margin(self, planted: Iterable[Site]) -> float:
        """Lowest planted score minus highest score of any other site (> 0: planted on top)."""
        planted = set(planted)
        flat = self.values.reshape(-1)
        inside = [float(flat[i]) for i, s in enumerate(self.sites) if s in planted]
        outside = [float(flat[i]) for i, s in enumerate(self.sites) if s not in planted]
        if len(inside) != len(planted):
            missing = sorted(str(s) for s in planted - set(self.sites))
            raise SiteError(f"planted sites were not scored: {', '.join(missing)}")
        return min(inside) - (max(outside) if outside else float("-inf"))

    def recovered(self, planted: Iterable[Site]) -> bool:
        """Whether the planted sites are exactly the top len(planted) sites."""
        planted = set(planted)
        return set(self.ranking()[: len(planted)]) == planted

    def scored(self) -> list[runs.Scored]:
        """Every site (or edge) with its score, highest first, ranked from 1 (`runs.ranked`)."""
        flat = self.values.reshape(-1).tolist()
        return runs.ranked([s.doc() for s in self.sites], [runs.Estimate.of(v) for v in flat])

    def recovery(self, planted: Iterable[Site]) -> runs.Recovery:
        """AUROC, precision at k and the 1-based ranks of the planted sites (`runs.recovery`)."""
        return recovery_over_seeds([self], planted)

    def locate_result(
        self,
        setting: str,
        metric: str,
        planted: Iterable[Site] = (),
        numbers: dict[str, float | Sequence[float]] | None = None,
        variant: str = "",
        **fields: Any,
    ) -> runs.LocateResult:
        """This ranking as a run document's locate result, scored against `planted` (if any)."""
        return locate_result_over_seeds(
            [self], setting, metric, planted, numbers, variant, **fields
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: SiteScores.to_dict plus method, meaning and metadata."""
        return {
            "method": self.method,
            "meaning": self.meaning,
            **super().to_dict(),
            "meta": _jsonable(self.meta),  # without "_"-prefixed keys
        }


def locate_result_over_seeds(
    per_seed: Sequence[Scores],
    setting: str,
    metric: str,
    planted: Iterable[Site] = (),
    numbers: dict[str, float | Sequence[float]] | None = None,
    variant: str = "",
    **fields: Any,
) -> runs.LocateResult:
    """One ranking per data seed (over the same sites) as one locate result: every site's score,
    the recovery and each of `numbers` (a value or one value per seed) as mean ± std."""
    first = per_seed[0]
    if any(s.sites != first.sites for s in per_seed):
        raise SiteError("every seed's scores must be over the same sites, in the same order")
    planted = list(planted)
    per_site = zip(*(s.values.reshape(-1).tolist() for s in per_seed), strict=True)
    scores = runs.ranked([s.doc() for s in first.sites], [runs.Estimate.of(v) for v in per_site])
    return runs.LocateResult(
        setting=setting,
        metric=metric,
        meaning=first.meaning,
        scores=scores,
        recovery=recovery_over_seeds(per_seed, planted) if planted else None,
        numbers={k: runs.Estimate.of(v) for k, v in (numbers or {}).items()},
        variant=variant,
        **fields,
    )


def recovery_over_seeds(per_seed: Sequence[Scores], planted: Iterable[Site]) -> runs.Recovery:
    """AUROC, precision at k and planted ranks of rankings over the same sites, one per seed."""
    sites = per_seed[0].sites
    planted = list(planted)
    missing = [str(s) for s in planted if s not in sites]
    if missing:
        raise SiteError(f"planted sites were not scored: {', '.join(missing)}")
    return runs.recovery(
        [s.values.reshape(-1).tolist() for s in per_seed], [str(s) for s in sites],
        map(str, planted),
    )  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Site):
        return value.to_dict()
    if isinstance(value, dict):
        # keys starting with "_" hold bulky tensors for library callers, not for JSON
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
