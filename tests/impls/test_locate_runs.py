"""`mi-atlas run <locate method> --json` on its zoo model recovers the card's planted truth.

One test per method, through the command line in-process. The ground truth comes from the zoo
card (measured by the task's own direct check: attention scores, ablations), never from the
method; each test states the margin by which the planted sites must lead.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from locate_testing import one_thread  # noqa: F401 (fixture)

from mi_atlas.cli import cli
from reference_impls import registry, zoo

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def run(method: str, model: str | None = None) -> dict:
    args = ["run", method, "--json"] + (["--model", model] if model else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert out["method"] == method
    assert out["ground_truth"] == zoo.ground_truth(out["model"])
    return out


def test_causal_attribution_ranks_the_induction_heads_first():
    out = run("causal-attribution")
    result = out["result"]
    assert out["recovered"] is True
    # at the last position the induction heads restore the answer; every other (head, position)
    # restores at least 0.5 logits less than the weakest of them
    assert result["margin"] >= 0.5
    assert result["clean"] - result["corrupted"] > 5
    assert result["attribution_patching"]["pearson"] > 0.8  # the approximation, against exact


def test_causal_tracing_finds_the_fact_mlp():
    out = run("causal-attribution", "facts")
    truth = out["ground_truth"]
    assert out["recovered"] is True
    assert out["result"]["planted"] == [f"mlp_out L{truth['mlp_layer']} @{truth['position']}"]
    assert out["result"]["margin"] >= 0.3  # restores >= 0.3 more probability than any other site


def test_gradient_detection_ranks_the_induction_circuit_first():
    out = run("gradient-detection")
    assert out["recovered"] is True
    assert out["result"]["margin"] > 0  # all planted (head, position) sites above all others
    for hook in out["result"]["completeness"].values():
        assert hook["completeness"] == pytest.approx(hook["delta"], rel=1e-2)


def test_magnitude_analysis_finds_the_language_neurons():
    out = run("magnitude-analysis")
    assert out["recovered"] is True
    for layer in out["result"]["layers"].values():
        assert layer["precision_at_planted"] >= 0.95
        assert layer["language_correct"] >= 0.95


def test_probing_reads_the_trigger_from_the_planted_layer_on():
    out = run("probing")
    result = out["result"]
    assert out["recovered"] is True
    assert result["margin"] >= 0.3  # accuracy from the planted layer on vs before it
    assert result["probe_cosine_with_planted_direction"] >= 0.9


def test_vocab_projection_sees_the_answer_after_the_induction_layer_and_copying_heads():
    out = run("vocab-projection")
    result = out["result"]
    assert out["recovered"] is True
    assert result["logit_lens"]["first_layer"] == result["logit_lens"]["expected_first_layer"]
    assert result["ov_copying"]["margin"] >= 0.2  # copying fraction above every other head


def test_circuit_discovery_keeps_the_induction_circuit():
    out = run("circuit-discovery")
    result = out["result"]
    assert out["recovered"] is True
    assert all(result["checks"].values())
    assert result["kl_to_full_model"] < 0.05
    assert result["edges"]["kept"] <= result["edges"]["total"] // 4


def test_a_model_without_the_planted_structure_is_refused_in_one_line():
    result = CliRunner().invoke(cli, ["run", "probing", "--model", "induction"])
    assert result.exit_code == 1
    assert (
        "probing has no demo for zoo model 'induction'; it needs a model with a planted"
        in result.stderr
    )
    assert "Traceback" not in result.output


def test_the_patching_benchmarks_are_registered():
    names = [e.name for e in registry.entries("benchmark")]
    assert {"patch-head-out", "patch-resid-pre"} <= set(names)
