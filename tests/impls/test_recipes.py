"""Improve recipes: steering the located sites beats a same-size random control, at little cost.

Each recipe runs once per module (seeded, test-sized) on its zoo model. For each: the headline
metric improves by more than the random-site (or random-direction) control does, by a stated
margin; the collateral metrics stay within a stated bound; the model's outputs are bit-for-bit
restored afterwards; and, where the zoo card plants what the locate step should find, it finds
it. The margins are well below the measured numbers (docs/recipes.md) and well above what any
random control reaches.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from steer_testing import one_thread  # noqa: F401  (fixture)

from mi_atlas.cli import cli
from reference_impls.recipes import (
    efficient_inference,
    efficient_training,
    fairness_bias,
    knowledge_management,
    multilingualism,
    persona_role,
    safety_reliability,
)

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def beats_control(measure, margin: float) -> bool:
    """The located steer's gain exceeds the control's gain by at least `margin`."""
    return measure.gain - measure.control_gain >= margin


@pytest.fixture(scope="module")
def safety():
    return safety_reliability.run(n=64)


def test_safety_ablating_the_refusal_direction_removes_refusal_and_only_that(safety):
    m = safety.metric
    assert m.before >= 0.95 and m.after <= 0.05, m
    assert m.control >= 0.9, m  # a random direction of the same norm changes nothing
    assert beats_control(m, 0.85)
    (benign,) = safety.collateral
    assert benign.after >= 0.98, benign  # benign answers are the same answers
    assert safety.restored
    assert safety.recovered  # the probe picks the planted layer; cosine with d > 0.9
    assert safety.details["direction_cosine_with_planted"] > 0.9


def test_safety_the_opposite_adding_the_direction_induces_refusal(safety):
    induced = safety.details["opposite_induce_refusal"]
    assert induced["before"] <= 0.05 and induced["after"] >= 0.95 and induced["control"] <= 0.05


@pytest.fixture(scope="module")
def persona():
    return persona_role.run(n=64)


def test_persona_vector_switches_the_voice_both_ways_and_keeps_the_sentiment(persona):
    m = persona.metric
    assert m.before <= 0.05 and m.after >= 0.95 and m.control <= 0.05, m
    assert beats_control(m, 0.9)
    reverse = persona.details["reverse_casual_to_formal"]
    assert reverse["after"] - reverse["control"] >= 0.9, reverse
    for kept in persona.collateral:
        assert kept.after >= 0.98, kept
    assert persona.restored and persona.recovered  # located at the persona token


@pytest.fixture(scope="module")
def fairness():
    return fairness_bias.run(n=64)


def test_fairness_erasing_the_group_direction_ends_the_bias_and_keeps_accuracy(fairness):
    m = fairness.metric
    assert m.before >= 0.9 and m.after <= 0.1 and m.control >= 0.9, m
    assert beats_control(m, 0.8)
    accuracy, style = fairness.collateral
    assert accuracy.after >= accuracy.before - 0.02, accuracy
    assert style.after >= 0.98, style
    assert fairness.restored and fairness.recovered  # located at the answer position


@pytest.fixture(scope="module")
def pruning():
    return efficient_inference.run(n_random=6)


def test_pruning_half_the_heads_by_attribution_keeps_accuracy(pruning):
    m = pruning.metric
    assert pruning.details["sparsity"] == 0.5
    assert m.after >= m.before - 0.02, m  # accuracy kept at 50% of the heads
    assert beats_control(m, 0.2)  # random masks of the same size lose > 20 points on average
    assert m.after - pruning.details["magnitude_pruning_accuracy"] >= 0.5  # and magnitude more
    assert pruning.restored


@pytest.fixture(scope="module")
def knowledge():
    return knowledge_management.run(n_edits=2)


def test_knowledge_rome_at_the_traced_mlp_edits_one_fact_and_nothing_else(knowledge):
    m = knowledge.metric  # harmonic mean of efficacy, generalisation, specificity
    assert m.before == 0.0 and m.after >= 0.9, m
    assert beats_control(m, 0.5)
    efficacy, generalisation = knowledge.details["efficacy"], knowledge.details["generalisation"]
    assert efficacy["after"] == 1.0 and generalisation["after"] == 1.0
    (specificity,) = knowledge.collateral
    assert specificity.after >= 0.95, specificity  # other facts recalled as before
    assert knowledge.restored and knowledge.recovered  # tracing finds the planted MLP and token


@pytest.fixture(scope="module")
def training():
    return efficient_training.run()


def test_fine_tuning_the_attributed_neurons_learns_as_full_fine_tuning_does(training):
    m = training.metric  # new facts recalled, both phrasings, after the same 30 steps
    full = training.details["full_fine_tuning"]
    assert m.before == 0.0 and full["learned"] == 1.0
    assert m.after >= full["learned"] - 0.15, m  # about full fine-tuning's accuracy
    assert training.details["fraction_updated"] <= 0.05  # with ~2% of the weights
    assert beats_control(m, 0.15)  # as many random neurons learn less in the same budget
    (kept,) = training.collateral
    assert kept.after >= 0.95, kept
    assert training.restored and training.recovered  # all in the planted fact MLP


@pytest.fixture(scope="module")
def languages():
    return multilingualism.run()


def test_switching_off_the_english_neurons_removes_english_and_holds_french(languages):
    m = languages.metric  # English verb accuracy (chance: 0.25)
    assert m.before >= 0.95 and m.after <= 0.5 and m.control >= 0.9, m
    assert beats_control(m, 0.45)
    french, fidelity = languages.collateral
    assert french.after >= 0.98 and fidelity.after >= 0.98, (french, fidelity)
    assert languages.restored and languages.recovered  # LAPE finds the planted neurons


def test_mi_atlas_run_reports_before_after_control_and_sites():
    result = CliRunner().invoke(cli, ["run", "safety-reliability", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "recipe" and doc["model"] == "refusal"
    out = doc["result"]
    assert {"before", "after", "control", "sites", "control_sites"} <= set(out)
    assert out["before"] == 1.0 and out["after"] == 0.0
    assert out["sites"][0]["hook_name"] == "blocks.1.hook_resid_pre"
    assert doc["recovered"] is True
