"""Vector arithmetic: directions are the means they claim, steering moves exactly along them.

Mechanics on a tiny random GPT-2, checked against independent caches; the planted effect (the
steered attribute flips) is in test_recipes.py on the zoo's persona and refusal models.
"""

from __future__ import annotations

import pytest
import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.interventions import record
from reference_impls.steer import vector_arithmetic as va
from reference_impls.steer.sae import SAEConfig, site_activations, train_sae
from reference_impls.zoo import checkpoint

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

VOCAB = checkpoint.vocabulary([f"w{i}" for i in range(13)])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    sizes = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_mlp": 48, "n_ctx": 16}
    hf = checkpoint.tiny_model("gpt2", len(VOCAB), seed=4, **sizes)
    return zoo.load(checkpoint.save(hf, VOCAB, tmp_path_factory.mktemp("gpt2")))


def _tokens(n: int, seed: int, low: int = 3, high: int = len(VOCAB)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(low, high, (n, 7), generator=g)
    return torch.cat([torch.ones(n, 1, dtype=torch.long), body], 1)


@pytest.fixture(scope="module")
def tokens():
    return _tokens(4, 1)


def resid_values(model, tokens, sites):
    with torch.no_grad(), record(model, sites) as store:
        model(tokens)
    return dict(store)


def test_mean_difference_is_the_difference_of_cached_means(model):
    positive, negative = _tokens(6, 2, 3, 9), _tokens(5, 3, 9, len(VOCAB))
    site = A.resid(1, pos=-1)
    _, pos_cache = model.run_with_cache(positive)
    _, neg_cache = model.run_with_cache(negative)
    expected = site.select(pos_cache[site.hook_name]).mean(0) - site.select(
        neg_cache[site.hook_name]
    ).mean(0)
    torch.testing.assert_close(va.mean_difference(model, site, positive, negative), expected)


def test_activation_addition_shifts_the_site_by_coeff_times_vector(model, tokens):
    site = A.resid(1)
    vector = torch.randn(A.dims(model).d_model, generator=torch.Generator().manual_seed(0))
    plain = resid_values(model, tokens, [site])[site]
    base = model(tokens)
    with va.add_vector(model, site, vector, coeff=2.5):
        steered = resid_values(model, tokens, [site])[site]
        assert not torch.equal(model(tokens), base)
    torch.testing.assert_close(steered - plain, (2.5 * vector).expand_as(plain))
    assert torch.equal(model(tokens), base)


def test_directional_ablation_leaves_no_component_along_the_direction(model, tokens):
    direction = torch.randn(A.dims(model).d_model, generator=torch.Generator().manual_seed(1))
    unit = direction / direction.norm()
    sites = va.residual_sites(model)
    assert [s.hook_name for s in sites] == [
        "blocks.0.hook_resid_pre",
        "blocks.1.hook_resid_pre",
        "blocks.1.hook_resid_post",
    ]
    plain = resid_values(model, tokens, sites)
    assert all(float((v @ unit).abs().max()) > 1e-3 for v in plain.values())
    base = model(tokens)
    with va.ablate_direction(model, direction):
        # a recording hook added inside the block runs after the projection on the same hook
        steered = resid_values(model, tokens, sites)
    for v in steered.values():
        assert float((v @ unit).abs().max()) < 1e-5
    assert torch.equal(model(tokens), base)


def test_subspace_ablation_removes_every_direction_of_the_span(model, tokens):
    g = torch.Generator().manual_seed(2)
    directions = [torch.randn(A.dims(model).d_model, generator=g) for _ in range(2)]
    basis, _ = torch.linalg.qr(torch.stack(directions, dim=1))  # an independent orthonormal basis
    sites = va.residual_sites(model)
    base = model(tokens)
    with va.ablate_directions(model, directions):
        steered = resid_values(model, tokens, sites)
    for v in steered.values():
        assert float((v @ basis).abs().max()) < 1e-5  # nothing left along the span
    assert torch.equal(model(tokens), base)


def test_clamping_an_sae_feature_moves_along_its_decoder_direction(model, tokens):
    site = A.resid(1)
    sae = train_sae(site_activations(model, site, _tokens(16, 5)), SAEConfig(d_sae=48, steps=50))
    plain = resid_values(model, tokens, [site])[site]
    base = model(tokens)
    with va.clamp_features(model, sae, A.sae_feature(site.hook_name, 3), value=4.0):
        steered = resid_values(model, tokens, [site])[site]
    a3 = sae.encode(plain)[..., 3:4]
    torch.testing.assert_close(steered, plain + (4.0 - a3) * sae.W_dec[3], atol=1e-5, rtol=0)
    assert torch.equal(model(tokens), base)


# ---- the planted effect, on the zoo ---------------------------------------------------------


def test_the_difference_in_means_is_the_planted_refusal_direction_and_steers_it():
    outcome = va.demo("refusal")
    result = outcome.result
    assert result.numbers["cosine_with_planted_direction"].mean > 0.95
    ablated, added = result.measures
    assert ablated.before.mean >= 0.95 and added.before.mean <= 0.05
    assert ablated.after.mean <= 0.05  # the attribute flips off...
    assert added.after.mean >= 0.95  # ...and on
    assert ablated.control.mean >= 0.95 and added.control.mean <= 0.05  # a random direction: no
    assert result.restored and outcome.recovered
