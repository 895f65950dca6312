"""Improve recipes: steering the located sites beats a same-size random control, at little cost.

Each recipe runs once per module (seeded, test-sized) on its zoo model. For each: the headline
metric improves by more than the random-site (or random-direction) control does, by a stated
margin; the collateral metrics stay within a stated bound; the model's outputs are bit-for-bit
restored afterwards; and, where the zoo card plants what the locate step should find, it finds
it. The margins are well below the measured numbers (docs/recipes.md) and well above what any
random control reaches. Where a data-derived control wins, ties or comes close (persona-role,
the bias gap of fairness-bias, the last-position ROME edit's efficacy, multilingualism's
largest-magnitude neurons, efficient-training's largest-activation neurons), the test states it
and checks what the control loses instead, or that it wins.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

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
from reference_impls.recipes.common import over_seeds

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def beats_control(measure, margin: float) -> bool:
    """The located steer's gain exceeds the control's gain by at least `margin`."""
    return measure.gain - measure.control_gain >= margin


def values(measure) -> tuple[float, float, float]:
    """before, after, control (means)."""
    return measure.before.mean, measure.after.mean, measure.control.mean


def other(result, name: str):
    return next(m for m in result.other if m.name == name)


@pytest.fixture(scope="module")
def safety():
    return safety_reliability.run(n=64)


def test_safety_ablating_the_refusal_direction_removes_refusal_and_only_that(safety):
    result = safety.result
    before, after, control = values(result.metric)
    assert before >= 0.95 and after <= 0.05, result.metric
    # another difference of means of the same activations (same norm) leaves refusal in place
    assert control >= 0.9, result.metric
    assert beats_control(result.metric, 0.85)
    (benign,) = result.collateral
    assert benign.after.mean >= 0.98, benign  # benign answers are the same answers
    assert result.restored
    assert safety.recovered  # the probe picks the planted layer; cosine with d > 0.9
    assert result.numbers["direction_cosine_with_planted"].mean > 0.9
    assert result.control.kind == "data-derived-direction"


def test_safety_the_opposite_adding_the_direction_induces_refusal(safety):
    before, after, control = values(other(safety.result, "refusal on benign prompts"))
    assert before <= 0.05 and after >= 0.95 and control <= 0.05


@pytest.fixture(scope="module")
def persona():
    return persona_role.run(n=64)


def test_persona_vector_switches_the_voice_both_ways_and_keeps_the_sentiment(persona):
    result = persona.result
    before, after, control = values(result.metric)
    assert before <= 0.05 and after >= 0.95, result.metric
    _, after, _ = values(other(result, "casual prompts answered formally"))
    assert after >= 0.95
    for kept in result.collateral:
        assert kept.after.mean >= 0.98, kept
    assert result.restored and persona.recovered  # located at the persona token
    assert result.located.scores[0].target.pos == 1  # the patching ranked the persona first
    # the data-derived control wins (ties): at the persona token only the persona varies, so
    # the top principal component there is the persona vector; a random one does nothing
    assert result.control.kind == "data-derived-direction"
    cosine = "cosine of the persona vector with the top principal component"
    assert result.numbers[cosine].mean > 0.99 and control >= 0.95
    random = "random-direction control (same norm): formal prompts answered casually"
    assert result.numbers[random].mean <= 0.05


@pytest.fixture(scope="module")
def fairness():
    return fairness_bias.run(n=64)


def test_fairness_erasing_the_group_direction_ends_the_bias_and_keeps_accuracy(fairness):
    result = fairness.result
    before, after, control = values(result.metric)
    assert before >= 0.9 and after <= 0.1, result.metric
    accuracy, style = result.collateral
    assert accuracy.after.mean >= accuracy.before.mean - 0.02, accuracy
    assert style.after.mean >= 0.98, style
    assert result.restored and fairness.recovered  # located at the answer position
    # the data-derived control (top principal component, cosine ~0.89 with the group
    # direction) can end the bias too, but it erases the sentiment with it
    assert result.control.kind == "data-derived-direction"
    assert accuracy.control.mean <= accuracy.after.mean - 0.3, accuracy
    assert result.numbers["random-direction control (same norms): bias gap"].mean >= 0.9


@pytest.fixture(scope="module")
def pruning():
    return efficient_inference.run(n_random=6)


def test_pruning_half_the_heads_by_attribution_keeps_accuracy(pruning):
    result = pruning.result
    before, after, _ = values(result.metric)
    assert result.numbers["sparsity"].mean == 0.5
    assert after >= before - 0.02, result.metric  # accuracy kept at 50% of the heads
    assert beats_control(result.metric, 0.2)  # random masks of the same size lose > 20 points
    assert result.restored and result.control.kind == "random-sites"
    # the two same-size controls chosen by a statistic that is not the method both prune all of
    # layer 0 (its heads write 2-18x less than layer 1's), every previous-token head with it:
    # measured 0.998 (located) vs 0.050 for each
    magnitude, output = result.other
    assert magnitude.name.startswith("task accuracy against magnitude pruning"), magnitude.name
    assert output.name.startswith("task accuracy against output-norm pruning"), output.name
    assert "deterministic" in magnitude.data and "fitting sequences" in output.data
    for measure in (magnitude, output):
        assert measure.after.mean == after and measure.before.mean == before
        assert measure.control.mean <= 0.2 and beats_control(measure, 0.5), measure


@pytest.fixture(scope="module")
def knowledge():
    return knowledge_management.run(n_edits=2)


def test_knowledge_rome_at_the_traced_mlp_edits_one_fact_and_nothing_else(knowledge):
    result = knowledge.result  # metric: harmonic mean of efficacy, generalisation, specificity
    before, after, _ = values(result.metric)
    assert before == 0.0 and after >= 0.9, result.metric
    assert other(result, "efficacy").after.mean == 1.0
    # a real paraphrase: other prefix words and the other relation, another key at the subject
    assert other(result, "generalisation (paraphrase: other prefix and relation)").after.mean == 1
    (specificity,) = result.collateral
    assert specificity.after.mean >= 0.95, specificity  # other facts recalled as before
    assert result.restored and knowledge.recovered  # the top traced site is a planted store MLP
    # the other store MLP (L2 @4) ranks 4th, below sites off the subject: AUROC, not yes/no
    assert result.located.recovery.auroc.mean >= 0.9
    drift = "essence drift (KL after '<prefix> <subject>') / "
    # the KL term: less drift than the simplified closed form, at the same efficacy
    assert (
        result.numbers[drift + "ROME"].mean < result.numbers[drift + "simplified closed form"].mean
    )
    # the reachable control at the last position can say the new city, but costs other facts
    last = "ROME at the located layer, last position (control) / "
    assert result.numbers[last + "specificity"].mean < specificity.after.mean - 0.05


@pytest.fixture(scope="module")
def training():
    return efficient_training.run()


def test_fine_tuning_the_attributed_neurons_learns_as_full_fine_tuning_does(training):
    result = training.result  # metric: new facts recalled, both phrasings, after 30 steps
    before, after, _ = values(result.metric)
    full = result.numbers["full_fine_tuning / learned"].mean
    assert before == 0.0 and full == 1.0
    assert after >= full - 0.15, result.metric  # about full fine-tuning's accuracy
    assert result.numbers["fraction_updated"].mean <= 0.05  # with ~2% of the weights
    # forgetting, on the unmoved facts kept out of every loss: seed 0 measured located 0.958,
    # largest-activation 0.944, random 0.961; full fine-tuning at the fewest steps that learn
    # the new facts as well (5 in seed 0) 0.875, at the headline's 30 steps 0.528
    (kept,) = result.collateral
    assert kept.name == "facts outside the loss kept (both phrasings)"
    assert kept.after.mean >= 0.85, kept
    by_full = other(result, "facts outside the loss kept (both phrasings) against full fine-tuning")
    budget = int(result.numbers["full fine-tuning budget (steps)"].mean)
    at_budget = f"full fine-tuning at lr 3e-3 / {budget} steps / "
    assert result.numbers[at_budget + "learned"].mean >= after  # as well learned as the method
    assert all(  # and the fewest steps that do
        result.numbers[f"full fine-tuning at lr 3e-3 / {n} steps / learned"].mean < after
        for n in efficient_training.FULL_STEPS
        if n < budget
    )
    assert by_full.control.mean == pytest.approx(result.numbers[at_budget + "kept"].mean, abs=1e-4)
    assert by_full.after.mean >= by_full.control.mean + 0.04, by_full  # 3 of 72 answers
    assert result.numbers["full_fine_tuning / kept"].mean <= 0.7  # more steps, more forgotten
    assert result.restored and training.recovered  # all in the planted fact MLP
    # the headline control is data-derived and strong: the 16 neurons of largest mean
    # |activation| on the same prompts (all in MLP 0 here) learn most new facts too. Over 5
    # seeds the method leads in 2 and ties in 3 (0.975 vs 0.938); asserted: never behind
    assert result.control.kind == "data-derived-sites"
    assert result.numbers["largest-activation neurons in MLP 0"].mean >= 14
    assert 0.6 <= result.metric.control.mean <= result.metric.after.mean, result.metric
    # random neurons, reported beside it, learn far less (seed 0 measured 0.719; margin 0.15)
    by_random = other(result, "new facts learned (both phrasings) against random neurons")
    assert by_random.after.mean == after and by_random.control.mean <= 0.8, by_random
    assert beats_control(by_random, 0.15), by_random
    kept_random = other(
        result, "facts outside the loss kept (both phrasings) against random neurons"
    )
    assert kept_random.control.mean >= 0.9, kept_random


@pytest.fixture(scope="module")
def languages():
    return over_seeds(multilingualism.run, "bilingual")  # 5 seeds, about 1 s each


def test_switching_off_the_english_neurons_removes_english_and_holds_french(languages):
    result = languages.result  # metric: English verb accuracy (chance: 0.25), mean of 5 seeds
    before, after, control = values(result.metric)
    # measured: 1.000 -> 0.365 (every seed), largest-|activation| control 0.426 +- 0.004
    assert before >= 0.95 and after <= 0.5, result.metric
    assert result.control.kind == "data-derived-sites"
    # the magnitude heuristic removes most of English too (63 of its 96 neurons are LAPE's):
    # the honest result is a small lead, 0.06 measured, asserted at half of it
    assert 0.38 <= control <= 0.5, result.metric
    assert beats_control(result.metric, 0.03)
    french, fidelity = result.collateral
    assert french.after.mean >= 0.98 and fidelity.after.mean >= 0.98, (french, fidelity)
    assert french.control.mean >= 0.98, french  # measured 1.000: it spares French as well
    assert result.numbers["magnitude_control / located_by_lape"].mean >= 48  # measured 63
    assert result.restored and languages.recovered  # LAPE finds the planted neurons
    assert result.located.recovery.auroc.mean >= 0.99
    assert languages.seeds == (0, 1, 2, 3, 4) and result.metric.control.n == 5


def test_random_neurons_leave_english_in_place_and_cost_french(languages):
    english = other(languages.result, "en verb accuracy against random neurons")
    before, after, control = values(english)
    assert control >= 0.9, english  # measured 1.000 in every seed
    assert beats_control(english, 0.45)  # measured 0.635
    french = other(languages.result, "fr verb accuracy against random neurons")
    assert french.control.mean <= 0.95 < french.after.mean, french  # measured 0.829 +- 0.036


def test_mi_atlas_run_reports_before_after_control_and_sites():
    result = CliRunner().invoke(cli, ["run", "safety-reliability", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "recipe" and doc["model"]["name"] == "refusal"
    out = doc["result"]
    assert out["type"] == "recipe" and out["metric"]["higher_is_better"] is False
    assert out["metric"]["before"]["mean"] == 1.0 and out["metric"]["after"]["mean"] == 0.0
    assert out["targets"][0]["hook"] == "blocks.1.hook_resid_pre"
    assert out["control"]["kind"] == "data-derived-direction"
    assert out["control"]["description"].startswith("another difference of means")
    assert doc["seeds"] == [0, 1, 2, 3, 4] and out["metric"]["after"]["n"] == 5
    assert doc["recovered"] is True


def test_knowledge_management_on_a_fact_task_without_prefixes_says_which_it_needs():
    result = CliRunner().invoke(cli, ["run", "knowledge-management", "--model", "facts"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: --model facts: knowledge-management needs a fact task with random prefixes and "
        "paraphrases, such as facts-deep (this task lacks queries, paraphrase_tokens, PREFIX, "
        "SUBJECT_LAST)"
    )
