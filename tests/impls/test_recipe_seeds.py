"""common.over_seeds: every registered recipe's numbers are mean ± std over its data seeds."""

from __future__ import annotations

import statistics

import pytest

from mi_atlas import runs
from reference_impls.addressing import head
from reference_impls.recipes.common import over_seeds
from reference_impls.registry import Outcome

pytestmark = pytest.mark.impls


def fake_run(model_name: str, seed: int = 0) -> Outcome:
    """A recipe whose numbers are known functions of the seed."""

    def measure(name: str, scale: float) -> runs.Measure:
        return runs.Measure(
            name=name,
            before=runs.Estimate.of(1.0),
            after=runs.Estimate.of(scale * seed),
            control=runs.Estimate.of([seed, seed + 2.0]),  # a control averaged over two draws
        )

    result = runs.RecipeResult(
        locate="x",
        steer="y",
        metric=measure("m", 1.0),
        collateral=[measure("c", 2.0)],
        other=[measure("o", 3.0)],
        targets=[head(0, seed % 2).doc()],
        control=runs.Control(kind="random-sites", description="z"),
        restored=seed != 3,
        numbers={
            "k": runs.Estimate.of(10.0 * seed),
            **({"only0": runs.Estimate.of(1.0)} if seed == 0 else {}),
        },
    )
    return Outcome(result, recovered=seed < 10)


def test_over_seeds_takes_one_value_per_seed_for_every_number():
    out = over_seeds(fake_run, "any", seeds=(0, 1, 2, 3, 4))
    r = out.result
    assert out.seeds == (0, 1, 2, 3, 4) and out.recovered is True
    assert r.metric.after.values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert r.metric.after.std == pytest.approx(statistics.stdev([0, 1, 2, 3, 4]))
    assert r.metric.control.values == [1.0, 2.0, 3.0, 4.0, 5.0]  # each seed's mean over draws
    assert r.collateral[0].after.values == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert r.other[0].after.mean == pytest.approx(6.0)
    assert r.numbers["k"].values == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert "only0" not in r.numbers  # a number missing in some seed is not averaged
    assert r.restored is False  # one seed did not restore the model
    assert any("differ between seeds" in note for note in r.notes)
