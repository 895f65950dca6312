"""Amplitude manipulation: ablations and scalings do what they say, and leave nothing behind.

Mechanics on a tiny random GPT-2 (the replaced values are checked against an independent
cache), the planted effect on the zoo's induction model (knocking out its located induction
heads destroys in-context copying; the same number of random heads does not).
"""

from __future__ import annotations

import pytest
import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.steer import amplitude_manipulation as am
from reference_impls.steer.sae import SAEConfig, site_activations, train_sae
from reference_impls.zoo import checkpoint

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

VOCAB = checkpoint.vocabulary([f"w{i}" for i in range(13)])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    sizes = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_mlp": 48, "n_ctx": 16}
    hf = checkpoint.tiny_model("gpt2", len(VOCAB), seed=3, **sizes)
    return zoo.load(checkpoint.save(hf, VOCAB, tmp_path_factory.mktemp("gpt2")))


def _tokens(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat(
        [torch.ones(n, 1, dtype=torch.long), torch.randint(3, len(VOCAB), (n, 7), generator=g)], 1
    )


@pytest.fixture(scope="module")
def tokens():
    return _tokens(4, 1)


@pytest.fixture(scope="module")
def reference():
    return _tokens(12, 2)


SITES = [A.head(1, 2), A.neuron(0, 5), A.resid(1, pos=3)]


def cached(model, tokens, sites):
    """Each site's slice in a plain run: the independent record the tests compare with."""
    _, cache = model.run_with_cache(tokens)
    return {s: s.select(cache[s.hook_name]) for s in sites}


def seen(model, tokens, sites):
    """Each site's slice as the forward pass carries it now (with any steering in place)."""
    from reference_impls.interventions import record

    with torch.no_grad(), record(model, sites) as store:
        model(tokens)
    return dict(store)


def test_zero_ablation_sets_every_site_to_zero_and_undoes(model, tokens):
    base = model(tokens)
    with am.ablate(model, SITES, mode="zero"):
        values = seen(model, tokens, SITES)
    assert all(torch.equal(v, torch.zeros_like(v)) for v in values.values())
    assert torch.equal(model(tokens), base)


def test_mean_ablation_uses_the_reference_mean(model, tokens, reference):
    expected = {s: v.mean(0) for s, v in cached(model, reference, SITES).items()}
    base = model(tokens)
    with am.ablate(model, SITES, mode="mean", reference=reference):
        values = seen(model, tokens, SITES)
    for s in SITES:
        torch.testing.assert_close(values[s], expected[s].expand_as(values[s]))
    assert torch.equal(model(tokens), base)


def test_resample_ablation_takes_a_real_reference_value_per_row(model, tokens, reference):
    ref = cached(model, reference, SITES)
    base = model(tokens)
    with am.ablate(model, SITES, mode="resample", reference=reference, seed=5):
        values = seen(model, tokens, SITES)
    for s in SITES:
        for row in values[s]:  # each row is one of the reference inputs' slices, exactly
            assert any(torch.equal(row, r) for r in ref[s])
    with am.ablate(model, SITES, mode="resample", reference=reference, seed=5):
        again = seen(model, tokens, SITES)
    assert all(torch.equal(values[s], again[s]) for s in SITES)  # seeded: reproducible
    assert torch.equal(model(tokens), base)


def test_scaling_multiplies_the_site_and_one_is_the_identity(model, tokens):
    plain = cached(model, tokens, [A.head(1, 2)])[A.head(1, 2)]
    base = model(tokens)
    with am.scale(model, A.head(1, 2), 1.0):
        assert torch.equal(model(tokens), base)
    with am.scale(model, A.head(1, 2), 3.0):
        scaled = seen(model, tokens, [A.head(1, 2)])[A.head(1, 2)]
    torch.testing.assert_close(scaled, 3.0 * plain)
    assert torch.equal(model(tokens), base)


def test_sae_feature_ablation_changes_only_that_feature(model, tokens, reference):
    hook = A.resid(1).hook_name
    sae = train_sae(site_activations(model, A.resid(1), reference), SAEConfig(d_sae=48, steps=50))
    base = model(tokens)
    feature = A.sae_feature(hook, 7)
    with am.scale(model, feature, 1.0, sae=sae):  # the splice alone is the identity
        torch.testing.assert_close(model(tokens), base, atol=1e-5, rtol=0)
    resid = cached(model, tokens, [A.resid(1)])[A.resid(1)]
    with am.ablate(model, feature, mode="zero", sae=sae):
        steered = seen(model, tokens, [A.resid(1)])[A.resid(1)]
    # x' = x - a_7(x) d_7: the change is along feature 7's decoder direction only
    a7 = sae.encode(resid)[..., 7:8]
    torch.testing.assert_close(steered, resid - a7 * sae.W_dec[7], atol=1e-5, rtol=0)
    assert torch.equal(model(tokens), base)


def test_hooks_are_removed_even_when_the_body_raises(model, tokens):
    base = model(tokens)
    with pytest.raises(RuntimeError, match="boom"), am.ablate(model, SITES):
        raise RuntimeError("boom")
    assert torch.equal(model(tokens), base)


def test_an_sae_feature_without_its_sae_is_a_clear_error(model):
    with pytest.raises(A.SiteError, match="pass the SAE"):
        am.scale(model, A.sae_feature("blocks.1.hook_resid_pre", 0), 2.0).__enter__()


# ---- the planted effect, on the zoo ---------------------------------------------------------


def induction_demo_truth():
    from reference_impls import zoo

    return zoo.truth("induction")


@pytest.fixture(scope="module")
def induction_demo():
    return am.demo("induction")


def test_ablating_the_planted_induction_heads_destroys_induction_in_every_mode(induction_demo):
    result = induction_demo.result
    assert [m.name for m in result.measures] == [
        f"accuracy, {mode}-ablated" for mode in ("zero", "mean", "resample")
    ]
    for m in result.measures:
        assert m.before.mean >= 0.95
        assert m.after.mean < 0.2, m  # copying is gone
        assert m.control.mean >= m.before.mean - 0.05, m  # another head does not matter
        assert m.beats_control
    assert {t.label for t in result.targets} == {f"head_out L1 H{h}" for h in range(4)}
    # the control: heads outside the planted circuit (this 8-head model has only one left)
    planted = {p.target.label for p in induction_demo_truth().planted}
    assert result.control.targets and not {t.label for t in result.control.targets} & planted
    assert result.restored
    assert induction_demo.recovered


@pytest.fixture(scope="module")
def sae_demo():
    return am.sae_demo("sparse-features")


def test_an_sae_on_the_zoo_stream_finds_every_planted_topic(sae_demo):
    numbers = sae_demo.result.numbers
    assert numbers["min_correlation"].mean > 0.9 and numbers["mean_correlation"].mean > 0.95
    features = [t.index for t in sae_demo.result.targets]
    assert len(features) == 12 and len(set(features)) == len(features)  # one per topic
    assert sae_demo.recovered


def test_scaling_a_topic_feature_switches_the_topic_off_and_clamping_switches_it_on(sae_demo):
    numbers = sae_demo.result.numbers

    def mass(topic: int, what: str) -> float:
        return numbers[f"topic {topic} mass ({what})"].mean

    for topic in range(12):
        on = mass(topic, "on")
        assert mass(topic, "on, ablated") < 0.5 * on, topic  # the topic loses most of its mass
        assert mass(topic, "on, other ablated") > 0.8 * on, topic  # another feature: no effect
        assert mass(topic, "off") < 0.01 and mass(topic, "off, clamped") > 0.2, topic
    assert all(m.beats_control for m in sae_demo.result.measures)
    assert sae_demo.result.restored
