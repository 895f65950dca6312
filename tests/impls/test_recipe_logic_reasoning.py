"""logic-reasoning: fine-tuning the heads patching locates repairs carries on held-out problems.

The patient (`arithmetic`) is right without a carry and mostly wrong with one (its card). The
fast tests check the locate step and the data split; the slow one runs the registered recipe
(5 seeds, 15 fine-tunes): it repairs held-out carries and beats random heads; the heads a
magnitude statistic picks do better on carries (that control can and does win).
"""

from __future__ import annotations

import pytest
import torch

from reference_impls import zoo
from reference_impls.recipes import logic_reasoning as lr

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def test_held_out_problems_are_in_no_training_split():
    task = zoo.task("arithmetic")
    train = {tuple(p) for p in task.TRAIN.tolist()}
    assert not train & {tuple(p) for p in task.HELD_OUT.tolist()}
    assert len(train) + len(task.HELD_OUT) == 10_000
    clean, corrupted, answer, wrong = task.carry_pairs(32, seed=0)
    assert torch.equal(clean[:, [1, 3, 4, 6, 7]], corrupted[:, [1, 3, 4, 6, 7]])  # tens, +, =, c2
    assert (answer != wrong).all()


def test_patching_locates_few_heads_that_carry_the_carry():
    model, task = zoo.load("arithmetic"), zoo.task("arithmetic")
    heads, recovered = lr.locate(model, task, seed=0)
    top = sorted(recovered, reverse=True)
    assert len(heads) == 16
    assert sum(top[: lr.K]) > 0.8  # three heads restore most of the carry's effect
    assert sum(top[lr.K :]) < sum(top[: lr.K])


@pytest.mark.slow
def test_the_recipe_repairs_held_out_carries_and_beats_random_heads():
    from reference_impls import registry

    document = registry.run("logic-reasoning")  # the registered recipe, as `mi-atlas run` runs it
    result = document.result
    assert document.seeds == [0, 1, 2, 3, 4] and result.metric.after.n == 5
    assert result.metric.after.mean > result.metric.before.mean + 0.2  # carries repaired
    assert all(m.beats_control for m in result.other)  # against random heads
    # against the output-norm heads (the headline control) it does not win on carries: measured
    # 0.71 vs 0.76 (docs/recipes.md); it keeps more of the no-carry accuracy (0.94 vs 0.91)
    assert result.collateral[0].beats_control
    assert result.restored
