"""The sparse autoencoder recovers planted sparse latents, deterministically.

Synthetic data with a known answer: 12 sparse binary latents, each writing a fixed random
direction into a 16-dimensional space (more latents than a basis could hold orthogonally,
as in superposition). The zoo model's residual stream is scored in test_recipes.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_impls.steer.sae import SAEConfig, correlation_matrix, match_latents, train_sae

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def planted():
    g = torch.Generator().manual_seed(1)
    n, k, d = 4000, 12, 16
    latents = (torch.rand(n, k, generator=g) < 0.1).float()  # each on 10% of the time
    directions = torch.randn(k, d, generator=g)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    x = 3 * latents @ directions + 0.05 * torch.randn(n, d, generator=g) + 1.0
    return x, latents


@pytest.fixture(scope="module")
def sae(planted):
    return train_sae(planted[0], SAEConfig(d_sae=32, steps=1000, seed=0))


def test_every_planted_latent_has_a_feature_correlating_above_0_9(planted, sae):
    x, latents = planted
    with torch.no_grad():
        match = match_latents(sae.encode(x), latents)
    assert min(match.correlations) > 0.9, match
    assert match.mean_correlation > 0.95, match
    assert len(set(match.features)) == latents.shape[1]  # one distinct feature per latent


def test_the_code_is_sparse_and_reconstructs(planted, sae):
    x, latents = planted
    with torch.no_grad():
        f = sae.encode(x)
        unexplained = ((sae(x) - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    # about 1.2 latents are on per row; the code may use a few more features, not dozens
    assert float((f > 0).float().sum(-1).mean()) < 3 * float(latents.sum(-1).mean()) + 1
    assert float(unexplained) < 0.05


def test_same_seed_same_sae_and_another_seed_differs(planted, sae):
    again = train_sae(planted[0], SAEConfig(d_sae=32, steps=1000, seed=0))
    assert all(torch.equal(a, b) for a, b in zip(sae.parameters(), again.parameters(), strict=True))
    other = train_sae(planted[0][:500], SAEConfig(d_sae=32, steps=20, seed=1))
    assert not torch.equal(other.W_dec, sae.W_dec)


def test_correlation_matrix_matches_numpy():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(50, 3, generator=g), torch.randn(50, 4, generator=g)
    b[:, 0] = 1.0  # a constant column correlates with nothing: 0, not NaN
    with np.errstate(invalid="ignore", divide="ignore"):  # numpy gives NaN for the constant
        expected = np.corrcoef(a.T.numpy(), b.T.numpy())[:3, 3:]
    expected[:, 0] = 0.0
    np.testing.assert_allclose(correlation_matrix(a, b).numpy(), expected, atol=1e-6)
