"""The run document's scoring helpers against independent computations (scikit-learn, numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mi_atlas import runs as R


def site(layer: int, head: int) -> R.Site:
    return R.Site(
        kind="head_out",
        hook=f"blocks.{layer}.attn.hook_z",
        object="attention-head",
        label=f"L{layer}H{head}",
        layer=layer,
        head=head,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40).filter(
        lambda xs: any(p for _, p in xs) and not all(p for _, p in xs)
    )
)
def test_auroc_equals_sklearn_with_ties(pairs):
    from sklearn.metrics import roc_auc_score

    scores = [float(s) for s, _ in pairs]
    labels = [p for _, p in pairs]
    assert R.auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_auroc_is_none_for_one_class():
    assert R.auroc([1.0, 2.0], [True, True]) is None
    assert R.auroc([1.0, 2.0], [False, False]) is None


def test_recovery_ranks_precision_and_auroc_over_seeds():
    labels = ["a", "b", "c", "d"]
    per_seed = [[4, 3, 2, 1], [4, 1, 3, 2]]  # planted a, b: top 2 in seed 0; b is last in seed 1
    rec = R.recovery(per_seed, labels, ["a", "b"])
    assert rec.k == 2
    assert rec.ranks["a"].values == [1, 1]
    assert rec.ranks["b"].values == [2, 4]
    assert rec.precision_at_k.values == [1.0, 0.5]
    assert rec.auroc.values == [1.0, 0.5]
    assert rec.recovered is False
    assert rec.precision_at_k.std == pytest.approx(np.std([1.0, 0.5], ddof=1))


def test_recovery_ignores_planted_components_that_were_not_scored():
    rec = R.recovery([[3, 2, 1]], ["a", "b", "c"], ["a", "z"])
    assert rec.k == 1 and rec.recovered and rec.planted_scored == 1
    with pytest.raises(ValueError, match="none of the planted"):
        R.recovery([[3, 2, 1]], ["a", "b", "c"], ["z"])


def test_faithfulness_areas_match_numpy_trapezoid():
    sizes, n = [0, 2, 5, 10], 10
    curves = [[0.0, 0.6, 0.9, 1.0], [0.1, 0.5, 1.1, 1.0]]
    fc = R.faithfulness_curve(sizes, curves, n)
    xs = np.array(sizes) / n
    assert fc.cpr.values == pytest.approx([np.trapezoid(c, xs) for c in curves])
    assert fc.cmd.values == pytest.approx(
        [np.trapezoid(np.abs(1 - np.array(c)), xs) for c in curves]
    )
    assert [e.mean for e in fc.faithfulness] == pytest.approx(np.mean(curves, axis=0))


def test_ranked_orders_by_mean_and_the_document_round_trips():
    sites = [site(0, h) for h in range(3)]
    scored = R.ranked(sites, [R.Estimate.of(v) for v in ([0.1, 0.3], [2.0], [0.5])])
    assert [s.target.label for s in scored] == ["L0H1", "L0H2", "L0H0"]
    assert [s.rank for s in scored] == [1, 2, 3]
    run = R.Run(
        name="causal-attribution",
        kind="method",
        method="causal-attribution",
        model=R.ModelRef(name="induction"),
        task=R.TaskRef(name="induction"),
        result=R.LocateResult(setting="s", metric="m", meaning="m", scores=scored),
    )
    assert R.Run.model_validate_json(run.model_dump_json()) == run


def test_scores_out_of_rank_order_are_rejected():
    scored = R.ranked([site(0, 0), site(0, 1)], [R.Estimate.of(1), R.Estimate.of(2)])
    with pytest.raises(ValidationError, match="listed by rank"):
        R.LocateResult(setting="s", metric="m", meaning="m", scores=scored[::-1])


def test_estimate_of_one_value_and_of_seeds():
    assert R.Estimate.of(0.5) == R.Estimate(mean=0.5, std=0.0, n=1, values=[0.5])
    e = R.Estimate.of([1.0, 2.0, 3.0])
    assert (e.mean, e.std, e.n) == (2.0, 1.0, 3)
    with pytest.raises(ValueError, match="at least one"):
        R.Estimate.of([])


def test_the_site_has_words_for_every_control_kind():
    from typing import get_args

    from mi_atlas.site.result_view import CONTROL_WORDS

    assert set(CONTROL_WORDS) == set(get_args(R.ControlKind))


def test_role_for_matches_a_planted_site_at_any_position_or_its_own():
    head = site(1, 2)  # planted without a position: an induction head
    at = site(1, 2).model_copy(update={"pos": 11, "label": "head_out L1 H2 @11"})
    fixed = site(0, 1).model_copy(update={"pos": 3, "label": "head_out L0 H1 @3"})
    edge = R.Edge(upstream=site(0, 1), downstream=site(1, 2), label="L0H1 -> L1H2")
    truth = R.GroundTruth(
        description="d",
        planted=[
            R.Planted(target=head, role="induction head"),
            R.Planted(target=fixed, role="previous-token head"),
            R.Planted(target=edge, role="K-composition"),
        ],
    )
    assert truth.role_for(at) == "induction head"
    assert truth.role_for(fixed) == "previous-token head"
    assert truth.role_for(fixed.model_copy(update={"pos": 4})) is None  # another position
    assert truth.role_for(site(1, 3)) is None  # another head
    assert truth.role_for(edge) == "K-composition"
