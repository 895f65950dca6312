"""Gradient detection: gradient x activation and integrated gradients over sites.

Independent computations: the derivative of the metric with respect to a scalar gate on one
site (its own hook, its own backward), zero ablation on a model that is affine in every site
(where gradient x activation is exact), and integrated gradients written as a plain loop over
the path points. Completeness is the axiom IG must satisfy.
"""

from __future__ import annotations

import pytest
import torch
from locate_testing import linear, random_tokens, tiny

from reference_impls import addressing as A
from reference_impls.interventions import ablate
from reference_impls.locate import gradient_detection as G
from reference_impls.locate.metrics import LogitDiff

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

BATCH, POS = 3, 5


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    return tiny(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def data():
    tokens = random_tokens(BATCH, POS, seed=0)
    corrupted = random_tokens(BATCH, POS, seed=1)
    answer, wrong = random_tokens(2, BATCH, seed=2)
    return tokens, corrupted, LogitDiff(answer, wrong)


def sites_of(model):
    return (
        A.heads(model, "out")
        + [A.neuron(layer, j) for layer in range(2) for j in (0, 7, 30)]
        + [A.resid(1, pos=p) for p in range(POS)]
    )


def gated_derivative(model, tokens, site, metric):
    """d metric / d g at g = 1, where the site's slice is multiplied by a scalar gate g."""
    gate = torch.ones((), requires_grad=True)

    def hook(act, hook):
        return site.write(act, site.select(act) * gate)

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(site.hook_name, hook)])
        (grad,) = torch.autograd.grad(metric(logits).mean(), [gate])
    return grad.item()


def test_gradient_x_activation_is_the_derivative_of_a_gate_on_the_site(model, data):
    tokens, _, metric = data
    sites = sites_of(model)
    scores = G.gradient_x_activation(model, tokens, sites, metric)
    assert scores.sites == tuple(sites)
    for site in sites[::3]:
        assert scores.score(site) == pytest.approx(
            gated_derivative(model, tokens, site, metric), abs=1e-5
        )


def test_gradient_x_activation_equals_zero_ablation_on_a_linear_model(tmp_path_factory, data):
    tokens, _, metric = data
    m = linear(tmp_path_factory.mktemp("linear"))
    sites = A.heads(m, "out") + [A.neuron(1, j) for j in range(0, 48, 5)]
    scores = G.gradient_x_activation(m, tokens, sites, metric)
    with torch.no_grad():
        full = metric(m(tokens)).mean().item()
        effects = []
        for site in sites:
            with ablate(m, site):
                effects.append(full - metric(m(tokens)).mean().item())
    effects = torch.tensor(effects)
    assert effects.abs().max() > 1e-2
    torch.testing.assert_close(
        scores.values, effects, atol=1e-4 * effects.abs().max().item(), rtol=0
    )


@pytest.mark.parametrize("baseline", ["zeros", "corrupted"])
def test_integrated_gradients_are_complete(model, data, baseline):
    tokens, corrupted, metric = data
    # the residual stream only with a corrupted baseline: LayerNorm is scale-invariant, so on the
    # path from zero the metric is flat except at 0 and a Riemann sum cannot see the jump
    sites = A.heads(model, "out") + [A.neuron(0, 3)]
    if baseline == "corrupted":
        sites += [A.resid(1)]
    scores = G.integrated_gradients(
        model,
        tokens,
        sites,
        metric,
        baseline="zeros" if baseline == "zeros" else corrupted,
        steps=64,
    )
    for hook, check in scores.meta["hooks"].items():
        if "hook_z" in hook:
            assert abs(check["delta"]) > 1e-3, hook  # heads matter: the check is not 0 == 0
        assert check["completeness"] == pytest.approx(check["delta"], rel=2e-3, abs=1e-5), hook
    # a whole-activation site carries the full attribution of its hook
    if baseline == "corrupted":
        whole = scores.meta["hooks"]["blocks.1.hook_resid_pre"]
        assert scores.score(A.resid(1)) == pytest.approx(whole["completeness"], rel=1e-5)


def test_integrated_gradients_equal_a_plain_loop_over_the_path(model, data):
    tokens, corrupted, metric = data
    steps = 8
    site_list = A.heads(model, "out", layers=[1])
    scores = G.integrated_gradients(
        model, tokens, site_list, metric, baseline=corrupted, steps=steps
    )
    hook = "blocks.1.attn.hook_z"
    _, clean_cache = model.run_with_cache(tokens)
    _, base_cache = model.run_with_cache(corrupted)
    a, a0 = clean_cache[hook], base_cache[hook]
    total = torch.zeros_like(a)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        point = (a0 + alpha * (a - a0)).requires_grad_(True)

        def replace(act, hook, point=point):
            return point

        with torch.enable_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=[(hook, replace)])
            (grad,) = torch.autograd.grad(metric(logits).mean(), [point])
        total += grad
    expected = torch.stack([s.select((a - a0) * total / steps).sum() for s in site_list])
    torch.testing.assert_close(scores.values, expected.detach(), atol=1e-5, rtol=1e-4)


def test_integrated_gradients_do_not_depend_on_the_chunk_size(model, data):
    tokens, corrupted, metric = data
    sites = A.heads(model, "out") + [A.neuron(0, 3), A.resid(1)]
    together = G.integrated_gradients(model, tokens, sites, metric, baseline=corrupted, steps=8)
    apart = G.integrated_gradients(
        model, tokens, sites, metric, baseline=corrupted, steps=8, chunk_size=9
    )
    torch.testing.assert_close(together.values, apart.values, atol=1e-5, rtol=1e-4)
