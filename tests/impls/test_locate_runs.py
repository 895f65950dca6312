"""`mi-atlas run <locate method> --json` on its zoo model recovers the card's planted truth.

One test per method, through the command line in-process. The ground truth comes from the zoo
card (measured by the task's own direct check: attention scores, ablations), never from the
method; each test states the margin by which the planted sites must lead.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mi_atlas import runs
from mi_atlas.cli import cli
from reference_impls import registry, zoo

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def run(method: str, model: str | None = None) -> runs.Run:
    args = ["run", method, "--json"] + (["--model", model] if model else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = runs.Run.model_validate_json(result.stdout)  # exactly one run document on stdout
    assert out.method == method
    assert out.truth == zoo.truth(out.model.name)
    return out


def number(result, name: str) -> float:
    return result.numbers[name].mean


def variant(result, name: str):
    return next(v for v in result.variants if v.variant == name)


def ranks(recovery, label: str) -> list[float]:
    return recovery.ranks[label].values


def test_causal_attribution_on_ioi_ranks_by_signed_effect_and_misses_the_negative_mover():
    out = run("causal-attribution")
    result = out.result
    assert out.model.name == "ioi" and out.seeds == [0, 1, 2, 3, 4]
    headline, absolute = result.recovery, variant(result, "absolute effect").recovery
    assert headline.auroc.n == 5 and len(headline.ranks) == 6  # every planted IOI head
    # the S-inhibition head restores the answer alone, first in every seed; the name movers and
    # the backup follow (ranks 2-4 in every seed)
    assert ranks(headline, "head_out L1 H0") == [1.0] * 5
    for label in ("head_out L2 H0", "head_out L2 H1", "head_out L3 H0"):
        assert max(ranks(headline, label)) <= 4
    # the failure the signed ranking shows: the negative name mover writes against IO, so it
    # ranks last of 16 in every seed, and the unneeded duplicate-token head ranks low, so the
    # AUROC is far from 1 (measured 0.72 ± 0.08) ...
    assert ranks(headline, "head_out L3 H1") == [16.0] * 5
    assert 0.6 < headline.auroc.mean < 0.85 and headline.auroc.std > 0
    assert not out.recovered
    # ... ranked by the size of the effect it is found (0.99 ± 0.03): the method sees it, the
    # sign convention hides it
    assert absolute.auroc.mean > 0.95 and max(ranks(absolute, "head_out L3 H1")) <= 6
    assert number(result, "clean") > 15 and number(result, "corrupted") < -15


def test_causal_attribution_on_induction_deep_the_decoys_outrank_the_previous_token_head():
    out = run("causal-attribution", "induction-deep")
    result = out.result
    prev = "head_out L0 H3 @6"  # the previous-token head where it acts (A_L's first copy)
    # denoising one head at a time cannot restore through the previous-token head (the value it
    # points the induction heads at is the corrupted token), so the look-alike induction heads
    # (the card's decoys L1H0 and L1H3, not needed alone) rank above it: measured AUROC
    # 0.87 ± 0.17, previous-token head ranked 77 ± 97 of 192
    assert result.recovery.auroc.mean < 0.95 and result.recovery.auroc.std > 0.05
    assert max(ranks(result.recovery, "head_out L1 H2 @11")) == 1  # an induction head first
    for decoy in ("L1 H0", "L1 H3"):
        decoy_rank = result.numbers[f"rank of decoy head_out {decoy} @11"]
        assert decoy_rank.n == 5 and decoy_rank.mean < result.recovery.ranks[prev].mean
    # noising (necessity, as the card's ablations measure) puts the previous-token head first in
    # every seed, the decoys below every planted site on average
    noising = variant(result, "noising")
    assert ranks(noising.recovery, prev) == [1.0] * 5 and noising.recovery.auroc.mean > 0.99
    assert number(result, "attribution patching pearson") > 0.8  # the approximation vs exact


def test_causal_attribution_on_two_layers_is_the_quick_example():
    out = run("causal-attribution", "induction")
    result = out.result
    # all four layer-1 heads are induction heads: the top four at the last position
    induction = [r for label, r in result.recovery.ranks.items() if label.endswith("@11")]
    assert len(induction) == 4 and all(r.mean <= 4 for r in induction)
    assert result.recovery.auroc.mean > 0.85 and result.recovery.auroc.n == 5
    assert variant(result, "attribution patching").recovery.auroc.mean > 0.8


def test_causal_tracing_on_facts_deep_finds_the_movers_first_and_one_store_mlp_late():
    out = run("causal-attribution", "facts-deep")
    recovery = out.result.recovery
    assert recovery.k == 5 and recovery.auroc.n == 5
    # restoring the previous-token head at the last subject token, or either mover at the last
    # token, brings back most of the city; so does MLP 1 at the subject (ranks 1-4, every seed)
    for label, rank in [("head_out L0 H0 @4", 1), ("head_out L3 H1 @6", 2),
                        ("head_out L3 H0 @6", 3), ("mlp_out L1 @4", 4)]:  # fmt: skip
        assert recovery.ranks[label].values == [float(rank)] * 5
    # the second store MLP restores little alone (measured rank 6.6 ± 2.2: below unplanted sites
    # in some seeds), so the run does not claim recovery, though AUROC is 0.998 ± 0.003
    assert recovery.auroc.mean > 0.99 and max(recovery.ranks["mlp_out L2 @4"].values) > 5
    assert out.recovered is False and recovery.precision_at_k.mean < 1
    assert number(out.result, "clean") > 0.99 and number(out.result, "corrupted") < 0.3


def test_causal_tracing_finds_the_fact_mlp():
    out = run("causal-attribution", "facts")
    (planted,) = out.truth.planted
    assert out.recovered is True and out.result.recovery.auroc.n == 5  # 5 noise seeds
    assert list(out.result.recovery.ranks) == [planted.target.label]
    assert out.result.scores[0].target == planted.target
    # restores >= 0.3 more probability than any other site, in every seed
    assert min(out.result.numbers["margin"].values) >= 0.3


def test_gradient_detection_on_induction_deep_integrated_gradients_find_the_circuit():
    out = run("gradient-detection")
    result = out.result
    assert out.model.name == "induction-deep" and result.recovery.auroc.n == 5
    prev, first = "head_out L0 H3 @6", "head_out L1 H2 @11"
    # integrated gradients rank the measured circuit above 189 other (head, position) sites in
    # every seed (AUROC 0.999 ± 0.002), the previous-token head first ...
    assert min(result.recovery.auroc.values) > 0.99
    assert ranks(result.recovery, prev) == [1.0] * 5 and ranks(result.recovery, first) == [2.0] * 5
    # ... but the look-alike induction heads (decoys, not needed alone) come next, and in some
    # seeds above the weaker induction head L1H1: precision at 3 is 0.87 ± 0.18, not 1
    decoys = [result.numbers[f"rank of decoy head_out {d} @11"] for d in ("L1 H0", "L1 H3")]
    assert all(3 <= d.mean <= 6 for d in decoys)
    assert result.recovery.precision_at_k.mean < 1 and out.recovered is False
    hooks = {name.split(" ", 1)[1] for name in result.numbers if name.startswith("delta ")}
    assert len(hooks) == 4
    for hook in hooks:
        completeness = number(result, f"completeness {hook}")
        assert completeness == pytest.approx(number(result, f"delta {hook}"), rel=1e-2)
    # gradient x activation, one backward pass at the clean run, fails here: the previous-token
    # head ranks near the bottom in every seed and the AUROC is near chance (0.55 ± 0.17)
    gxa = variant(result, "gradient x activation").recovery
    assert gxa.auroc.mean < 0.75 and min(ranks(gxa, prev)) > 150


def test_gradient_detection_on_two_layers_is_the_quick_example():
    out = run("gradient-detection", "induction")
    assert out.recovered is True and out.result.recovery.auroc.values == [1.0] * 5


def test_magnitude_analysis_headline_is_lape_and_the_magnitude_variant_finds_the_neurons():
    out = run("magnitude-analysis")
    headline, simplified = out.result, variant(out.result, "magnitude entropy")
    assert "firing rate" in headline.setting  # Tang et al.'s LAPE is the headline
    assert out.seeds == [0, 1, 2, 3, 4] and headline.recovery.auroc.n == 5
    # the planted neurons are silenced, not switched off: they fire about as often on the other
    # language, so the firing-rate LAPE misses part of them (a failure the run shows) ...
    firing = [number(headline, f"L{layer} precision at planted") for layer in (0, 1)]
    assert out.recovered is all(p >= 0.9 for p in firing)
    assert headline.recovery.auroc is not None
    # ... and the magnitude entropy beside it finds them
    for layer in (0, 1):
        assert number(simplified, f"L{layer} precision at planted") >= 0.95
        assert number(simplified, f"L{layer} language correct") >= 0.95
    assert min(simplified.recovery.auroc.values) >= 0.99
    # firing rate ranks the planted neurons below chance in every seed (0.44 ± 0.005)
    assert max(headline.recovery.auroc.values) < 0.5


def test_magnitude_analysis_on_bilingual_deep_lape_fails_on_switched_off_neurons_too():
    out = run("magnitude-analysis", "bilingual-deep")
    headline, simplified = out.result, variant(out.result, "magnitude entropy")
    assert out.model.name == "bilingual-deep" and headline.recovery.auroc.n == 5
    # the neurons are switched on and off here (the zoo card), yet firing-rate LAPE does not
    # recover them: half of each layer is planted, so Tang et al.'s 95th-percentile filter is
    # 1.0 and only the neurons that fire at <bos> too pass it (AUROC 0.67 ± 0, precision
    # at the planted count 0.66 ± 0; both models fail, differently)
    auroc = headline.recovery.auroc.values
    assert 0.55 < min(auroc) and max(auroc) < 0.8 and out.recovered is False
    assert headline.recovery.precision_at_k.mean < 0.8
    assert number(headline, "L0 precision at planted") < 0.6  # no layer-0 neuron passes
    # the magnitude entropy finds most of them (0.973 ± 0.0004)
    assert min(simplified.recovery.auroc.values) > 0.95
    for layer in range(4):
        assert number(simplified, f"L{layer} precision at planted") > 0.85


def test_probing_on_refusal_deep_reads_the_trigger_a_layer_early_and_the_decoys_too():
    out = run("probing")
    result = out.result
    assert out.model.name == "refusal-deep" and result.recovery.auroc.n == 5
    # the trigger is perfectly readable at resid_pre L1, one layer before the planted direction:
    # probing cannot name the layer where refusal is written (AUROC 0.75 in every seed: L1 ties
    # the planted layers, L0 is below them)
    scores = {s.target.label: s.score for s in result.scores}
    assert scores["resid_pre L1 @6"].mean == scores["resid_pre L2 @6"].mean == 1.0
    assert result.recovery.auroc.values == [0.75] * 5 and out.recovered is False
    assert scores["resid_pre L0 @6"].mean < 0.6  # "?" alone: chance
    # the probe at the planted layer points along d, not along the decoys of equal norm ...
    assert min(result.numbers["probe_cosine_with_planted_direction"].values) > 0.95
    decoys = [k.split(" ", 1)[1] for k in result.numbers if k.startswith("probe_cosine_with_decoy")]
    assert len(decoys) == 3
    for name in decoys:
        assert abs(number(result, f"probe_cosine_with_decoy {name}")) < 0.1
        # ... yet a probe for a decoy's own fact reads it as well: readable is not used
        assert number(result, f"accuracy of a probe for decoy {name} at resid_pre L2 @6") > 0.95
    assert variant(result, "selectivity").recovery.auroc.n == 5  # the control task, beside it


def test_probing_on_two_layers_is_the_quick_example():
    out = run("probing", "refusal")
    assert out.recovered is True
    assert min(out.result.numbers["margin"].values) >= 0.3  # from the planted layer on vs before
    assert number(out.result, "probe_cosine_with_planted_direction") >= 0.9


def test_vocab_projection_on_ioi_finds_the_name_movers_but_not_their_sign():
    out = run("vocab-projection")
    result, lens = out.result, variant(out.result, "logit lens")
    assert out.model.name == "ioi" and out.recovered is True
    # the four heads that write a name into the logits (two name movers, the backup and the
    # negative name mover) have the top copying scores over the 16 names; the score reads
    # weights only, so it has one value, no spread over data seeds
    assert result.recovery.auroc.values == [1.0] and result.recovery.k == 4
    assert number(result, "margin") >= 0.5
    # ... the negative name mover among them: a copying OV circuit does not say which way the
    # head's output pushes the answer (patching does: causal-attribution ranks it last)
    assert result.recovery.ranks["head_out L3 H1"].mean <= 4
    # the S-inhibition head moves no name: it is invisible to this projection
    assert number(result, "rank of S-inhibition head L1H0") > 8
    # the lens over 5 data seeds: IO is on top from the name movers' layer on, in every seed
    first = lens.numbers["first layer with the answer on top"]
    assert first.values == [number(lens, "planted heads' layer")] * 5 == [2.0] * 5
    assert number(lens, "top1 at layer 1") < 0.2 and lens.numbers["top1 at layer 1"].std > 0


def test_vocab_projection_on_induction_deep_a_look_alike_is_close_behind():
    out = run("vocab-projection", "induction-deep")
    result = out.result
    # the two induction heads copy best, but by 0.025 of the 40 words only: an unplanted
    # layer-3 head and the decoy L1H0 (an induction pattern, not needed alone) come next
    assert result.recovery.auroc.values == [1.0] and 0 < number(result, "margin") < 0.1
    assert number(result, "rank of decoy L1H0") <= 4
    first = variant(result, "logit lens").numbers["first layer with the answer on top"]
    assert first.values == [1.0] * 5  # the induction heads' layer


@pytest.mark.slow  # about 60 s on one thread: ACDC on 479 edges, 5 seeds
def test_circuit_discovery_on_induction_deep_ranks_edges_high_but_not_the_planted_ones_first():
    out = run("circuit-discovery")
    headline, eap, acdc = out.result, variant(out.result, "EAP"), variant(out.result, "ACDC")
    assert out.model.name == "induction-deep" and out.seeds == [0, 1, 2, 3, 4]
    # scored against the edges the task module states (K-composition into the two induction
    # heads' keys, the induction heads into the unembedding), never against a method's output
    stated = {p.target.label for p in out.truth.planted if isinstance(p.target, runs.Edge)}
    assert len(stated) == 4
    for result in (headline, eap, acdc):
        assert set(result.recovery.ranks) == stated and result.recovery.auroc.n == 5
        # the planted edges rank in the top few percent of 479 (AUROC measured 0.975 ± 0.009
        # EAP-IG, 0.953 ± 0.022 EAP, 0.974 ± 0.010 ACDC) ...
        assert result.recovery.auroc.mean > 0.9
        # ... but not first: the edges that carry the token itself (the embedding into the
        # previous-token head's value and into MLP 0, the late MLPs into the unembedding) and
        # the look-alikes' edges come before them (precision at 4: 0.15, 0.15, 0.25)
        assert result.recovery.precision_at_k.mean <= 0.5 and not result.recovery.recovered
        # heads scored by their outgoing edges: the planted heads lead (node AUROC 0.97, 0.95,
        # 0.96), the previous-token head in the top 3 of every seed, but the look-alike L1H0
        # beats the weaker induction head L1H1 in some seeds (node precision at 3 below 1)
        assert number(result, "node_auroc") > 0.9
        assert max(result.numbers["node rank of head_out L0 H3"].values) <= 3
        assert number(result, "node_precision_at_k") < 1
        l1h1 = result.numbers["node rank of head_out L1 H1"].values
        l1h0 = result.numbers["node rank of decoy head_out L1 H0"].values
        assert any(weak > decoy for weak, decoy in zip(l1h1, l1h0, strict=True))
        curve = result.faithfulness
        assert curve.sizes[0] == 0 and curve.sizes[-1] == number(headline, "edges_total") == 479
        assert (
            abs(curve.faithfulness[0].mean) < 1e-3 and abs(curve.faithfulness[-1].mean - 1) < 1e-3
        )
        assert curve.cpr.n == 5 and curve.cpr.mean + curve.cmd.mean == pytest.approx(1, abs=0.05)
    # EAP, one gradient at the clean input, ranks the look-alike L1H0 -> unembedding edge above
    # the planted L1H1 -> unembedding edge on average (ranks 9.8 and 18.4)
    assert (
        number(eap, "rank of decoy head_out L1 H0 -> resid_post L3")
        < eap.recovery.ranks["head_out L1 H1 -> resid_post L3"].mean
    )
    # by faithfulness EAP-IG leads (CPR 0.92 ± 0.01), ACDC close (0.91 ± 0.01), EAP behind (0.84
    # ± 0.05): integrated gradients see the K-composition that EAP's one gradient misses
    assert headline.faithfulness.cpr.mean > eap.faithfulness.cpr.mean + 0.03
    assert acdc.faithfulness.cpr.mean > eap.faithfulness.cpr.mean
    # the planted circuit alone carries little of the behaviour (0.14 ± 0.05: the look-alike
    # induction heads and layers 2-3 carry the rest), though more than random sets (0.00)
    planted, random = (number(headline, k) for k in ("planted_circuit_faithfulness",
                                                     "random_circuit_faithfulness"))  # fmt: skip
    assert 0.02 < planted < 0.4 and abs(random) < 0.02 and planted > random + 0.02
    # ACDC keeps 39 ± 3 edges, the look-alikes' among them in every seed: its structural check
    # fails, and the run says it did not recover the planted circuit
    assert 20 <= number(acdc, "edges_kept") <= 60 and number(acdc, "kl_to_full_model") < 0.1
    checks = {c.name: c for c in acdc.checks}
    assert checks["no_unplanted_head"].value == 0 and out.recovered is False


def test_circuit_discovery_on_two_layers_is_the_quick_example():
    out = run("circuit-discovery", "induction")
    headline, eap, acdc = out.result, variant(out.result, "EAP"), variant(out.result, "ACDC")
    assert out.seeds == [0, 1, 2, 3, 4] and headline.recovery.auroc.n == 5
    # the planted edges rank above chance under every method (measured, mean over 5 seeds:
    # AUROC 0.90 EAP-IG, 0.76 EAP, 0.85 ACDC); integrated gradients see the K-composition edges
    # that act through the attention softmax, which EAP's one gradient misses
    assert headline.recovery.auroc.mean > 0.85
    assert eap.recovery.auroc.mean > 0.7 and acdc.recovery.auroc.mean > 0.7
    assert headline.recovery.auroc.mean > eap.recovery.auroc.mean
    for result in (headline, eap, acdc):
        curve = result.faithfulness
        assert curve.sizes[0] == 0 and curve.sizes[-1] == number(headline, "edges_total")
        assert (
            abs(curve.faithfulness[0].mean) < 1e-3 and abs(curve.faithfulness[-1].mean - 1) < 1e-3
        )
        assert curve.cpr.n == 5 and curve.cpr.mean + curve.cmd.mean == pytest.approx(1, abs=0.05)
    assert headline.faithfulness.cpr.mean > eap.faithfulness.cpr.mean
    # every layer-1 head is planted here: the heads' node ranking cannot fail
    assert number(headline, "node_auroc") == 1.0
    # the whole planted circuit carries the behaviour; random edge sets of its size do not
    assert number(headline, "planted_circuit_faithfulness") > 0.9
    assert number(headline, "random_circuit_faithfulness") < 0.2
    # ACDC's kept circuit, edge by edge, in every seed
    assert number(acdc, "kl_to_full_model") < 0.05
    assert number(acdc, "edges_kept") <= number(headline, "edges_total") // 4
    checks = {c.name: c for c in acdc.checks}
    assert all(c.value >= 0.8 for c in checks.values())
    assert out.recovered == all(c.passed for c in checks.values())


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
