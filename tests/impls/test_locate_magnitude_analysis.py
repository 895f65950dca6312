"""Magnitude analysis: statistics per condition are right, and a planted specific neuron tops LAPE.

Independent computation: the statistics recomputed with numpy from a plain cache. Planted truth
on a random model: one layer-0 neuron's input weights are set to the difference of the mean
MLP inputs of two "languages" (disjoint token sets), so it fires for one language only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from locate_testing import tiny

from reference_impls import addressing as A
from reference_impls.interventions import edit_weights
from reference_impls.locate import magnitude_analysis as M

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

PLANTED = 11  # the neuron of layer 0 made specific to language "a"


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    return tiny(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def languages():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(3, 8, (24, 6), generator=g)  # words w0..w4
    b = torch.randint(8, 16, (24, 6), generator=g)  # words w5..w12
    return {"a": a, "b": b}


@pytest.fixture()
def planted(model, languages):
    """The model with neuron PLANTED of layer 0 reading "language a minus language b".

    GPT-2: GELU(w . x + b) with w the difference of the languages' mean MLP inputs and b the
    threshold half-way between them. Llama (SwiGLU, no biases): gate and up both read w, so the
    neuron's SiLU(w . x) * (w . x) is large on language a and near zero on b, and its gate is
    positive on a and negative on b as long as the languages' mean inputs are not too aligned.
    """
    hook = "blocks.0.ln2.hook_normalized"
    means = {}
    for name, tokens in languages.items():
        _, cache = model.run_with_cache(tokens, names_filter=[hook])
        means[name] = cache[hook].mean(dim=(0, 1))
    direction = means["a"] - means["b"]
    gain = 8.0 / direction.norm() ** 2  # pre-activation ~ +4 apart between a and b

    def read_direction(w):
        w[:, PLANTED] = gain * direction
        return w

    changes = {"blocks.0.mlp.W_in": read_direction}
    if model.cfg.architecture.startswith("GPT2"):
        threshold = float(gain * direction @ (means["a"] + means["b"]) / 2)

        def set_bias(b):
            b[PLANTED] = -threshold
            return b

        changes["blocks.0.mlp.b_in"] = set_bias
    else:
        changes["blocks.0.mlp.W_gate"] = read_direction
    with edit_weights(model, changes):
        yield model


def test_statistics_equal_numpy(model, languages):
    sites = [A.neuron(0, j) for j in range(0, 48, 6)] + A.heads(model, "out", layers=[1])
    stats = M.condition_statistics(model, languages, sites)
    for c, tokens in enumerate(languages.values()):
        _, cache = model.run_with_cache(tokens)
        for i, site in enumerate(sites):
            act = cache[site.hook_name].numpy()
            if site.kind == "neuron":
                values = act[:, :, site.index].ravel()
            else:
                values = np.linalg.norm(act[:, :, site.head], axis=-1).ravel()
            assert stats["mean"][i, c].item() == pytest.approx(values.mean(), rel=1e-5, abs=1e-6)
            assert stats["std"][i, c].item() == pytest.approx(
                values.std(ddof=1), rel=1e-4, abs=1e-6
            )
            if site.kind == "neuron":  # fires where the activation function's input is > 0
                values = (
                    cache[f"blocks.{site.layer}.mlp.hook_pre"].numpy()[:, :, site.index].ravel()
                )
            assert stats["p_active"][i, c].item() == pytest.approx((values > 0).mean())


def test_a_position_mask_counts_only_those_tokens(model, languages):
    tokens = languages["a"]
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 2] = True
    site = A.neuron(1, 5)
    masked = M.site_activations(model, (tokens, mask), [site])
    at_pos = M.site_activations(model, tokens, [site.at(2)])
    torch.testing.assert_close(masked, at_pos)
    assert masked.shape == (1, tokens.shape[0])


def test_lape_ranks_the_planted_language_neuron_first(planted, languages):
    sites = A.neurons(planted, 0)
    scores = M.lape(planted, languages, sites)
    assert scores.ranking()[0] == A.neuron(0, PLANTED)
    assert scores.meta["condition"][PLANTED] == "a"
    # margin: the planted neuron is near-perfectly specific (entropy ~ 0), the runner-up is not
    assert scores.margin([A.neuron(0, PLANTED)]) > 0.1


def test_mean_difference_ranks_the_planted_neuron_first(planted, languages):
    scores = M.mean_difference(planted, languages, A.neurons(planted, 0), target="a")
    assert scores.ranking()[0] == A.neuron(0, PLANTED)
    # margin: its effect size is at least 1.5 times that of the runner-up (a random neuron
    # already separates two disjoint vocabularies somewhat)
    first, second = scores.values.topk(2).values.tolist()
    assert first >= 1.5 * second


def test_unknown_target_condition_is_named(model, languages):
    with pytest.raises(KeyError, match="'c' is not one of a, b"):
        M.mean_difference(model, languages, [A.neuron(0, 0)], target="c")
