"""logic-reasoning: fine-tuning the heads patching locates repairs carries on held-out test problems.

The patient (`arithmetic`) is right without a carry and mostly wrong with one (its card). The
fast tests check the three-way split, the locate step and, on validation problems the locate
step never saw, that the located heads are the ones the carry passes through (noising them
destroys it; the output-norm heads and the 13 other heads destroy less). The slow one runs the
registered recipe (5 seeds, the head count k chosen on validation): the located heads repair
test carries beyond as many output-norm heads and as many random heads by stated margins, and,
as measured (docs/recipes.md), the output-norm heads free to take their own k (three) do at
least as well on carries: the test asserts that too rather than hide it.
"""

from __future__ import annotations

import pytest
import torch

from reference_impls import zoo
from reference_impls.locate.causal_attribution import activation_patching
from reference_impls.locate.metrics import LogitDiff
from reference_impls.recipes import logic_reasoning as lr

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def pairs(tensor: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(p) for p in tensor.tolist()}


def test_train_validation_and_test_problems_are_disjoint():
    task = zoo.task("arithmetic")
    train, validation, test = (pairs(task.pool(s, None)) for s in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test
    assert validation | test == pairs(task.HELD_OUT)
    assert len(train) + len(validation) + len(test) == 10_000
    assert len(validation) == len(test) == 1000
    assert task.has_carry(task.pool("test", True)).all()
    with pytest.raises(ValueError, match="'heldout' is not one of train, held-out"):
        task.pool("heldout", None)
    clean, corrupted, answer, wrong = task.carry_pairs(32, seed=0)
    assert torch.equal(clean[:, [1, 3, 4, 6, 7]], corrupted[:, [1, 3, 4, 6, 7]])  # tens, +, =, c2
    assert (answer != wrong).all()


def test_patching_locates_few_heads_that_carry_the_carry():
    model, task = zoo.load("arithmetic"), zoo.task("arithmetic")
    heads, recovered = lr.locate(model, task, seed=0)
    top = sorted(recovered, reverse=True)
    assert len(heads) == 16
    assert sum(top[:3]) > 0.8  # three heads restore most of the carry's effect
    assert sum(top[3:]) < sum(top[:3])
    assert str(heads[recovered.index(top[0])]) == "head_out L0 H1"  # the head tuned first


def test_the_located_heads_carry_the_carry_on_validation_problems():
    """Noising (no-carry twin's output patched into the carry run) on problems locate never saw.

    Measured (3 data seeds): the top 3 located heads destroy 0.94 of the carry's effect on the
    tens digit, the 3 output-norm heads (one of them L0H1) 0.78-0.82, the other 13 heads
    together 0.47-0.51.
    """
    model, task = zoo.load("arithmetic"), zoo.task("arithmetic")
    heads, recovered = lr.locate(model, task, seed=0)
    ranked = [heads[i] for i in sorted(range(len(heads)), key=lambda i: -recovered[i])]
    norm = lr.output_norm_heads(model, task, 3, seed=0)
    assert set(norm) != set(ranked[:3])  # the control is a different set of heads
    clean, corrupted, answer, wrong = task.carry_pairs(128, seed=1, split="validation")
    scores = activation_patching(
        model,
        clean,
        corrupted,
        [ranked[:3], norm, ranked[3:]],
        LogitDiff(answer, wrong, pos=task.C1_POS - 1),
        direction="noising",
    )
    located, by_norm, others = scores.meta["recovered"].reshape(-1).tolist()
    assert located >= 0.85, located
    assert located >= by_norm + 0.08, (located, by_norm)
    assert located >= others + 0.3, (located, others)


def test_the_same_rule_chooses_k_for_every_arm():
    validation = {1: {"validation": 0.80}, 2: {"validation": 0.81}, 3: {"validation": 0.81}}
    assert lr.choose_k(validation) == 2  # the best; a tie goes to fewer heads
    assert lr.choose_k({1: {"validation": 0.9}, 3: {"validation": 0.7}}) == 1


@pytest.mark.slow
def test_the_recipe_repairs_test_carries_beyond_same_size_controls_and_reports_its_choices():
    from reference_impls import registry

    document = registry.run("logic-reasoning")  # the registered recipe, as `mi-atlas run` runs it
    result = document.result
    assert document.seeds == [0, 1, 2, 3, 4] and result.metric.after.n == 5
    carry = result.metric
    assert carry.after.mean > carry.before.mean + 0.2  # measured 0.356 -> 0.644 ± 0.022
    # as many output-norm heads: measured 0.528 ± 0.058, behind in each of the 5 seeds
    assert result.control.kind == "data-derived-sites"
    assert carry.gain - carry.control_gain >= 0.05, carry
    assert all(a > c for a, c in zip(carry.after.values, carry.control.values, strict=True))
    random_heads, own_k, validation = result.other  # as many random heads: measured 0.484
    assert random_heads.gain - random_heads.control_gain >= 0.08, random_heads
    # the output-norm heads at their own k on validation (3 in every seed): measured
    # 0.692 ± 0.038. Given more heads the control repairs more carries; the page says so.
    assert own_k.control.mean >= own_k.after.mean - 0.02, own_k
    assert carry.control.std > 0 and random_heads.control.std > 0  # spread over the data seeds
    (no_carry,) = result.collateral  # measured 1.000 -> 0.969
    assert no_carry.after.mean >= 0.9, no_carry
    assert result.restored
    # k was chosen on the located fine-tune's validation accuracy (test read only there), and
    # every arm's own k by the same rule
    numbers = result.numbers
    method_k = numbers["chosen k / located by patching"].values
    for label in lr.ARMS.values():
        own = numbers[f"own k on validation / {label}"].values
        assert len(own) == 5 and set(own) <= set(lr.K_GRID)
        for seed, k in enumerate(own):
            by_k = {j: numbers[f"validation at k = {j} / {label}"].values[seed] for j in lr.K_GRID}
            assert by_k[k] == max(by_k.values()) and k == min(j for j in by_k if by_k[j] == by_k[k])
    assert method_k == numbers["own k on validation / located by patching"].values

    def at_method_k(name: str, label: str) -> list[float]:
        return [
            numbers[f"{name} at k = {int(k)} / {label}"].values[s] for s, k in enumerate(method_k)
        ]

    assert carry.after.values == at_method_k("test carry", "located by patching")
    assert carry.control.values == at_method_k("test carry", "largest output norm")
    assert random_heads.control.values == at_method_k("test carry", "random")
    assert validation.after.values == at_method_k("validation", "located by patching")
