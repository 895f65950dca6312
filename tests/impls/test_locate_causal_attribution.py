"""Causal attribution: batched patching equals TransformerLens' loops, and keeps causal structure.

Tiny seeded random models (GPT-2, and Llama with grouped-query attention) in module-scoped
fixtures. Independent computations: `transformer_lens.patching` (one forward per site), a
hand-written hook for causal tracing, and exact patching for attribution patching on a model
that is linear from every site to the metric.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import transformer_lens.patching as tl_patching
from locate_testing import VOCAB, linear, native, tiny

from reference_impls import addressing as A
from reference_impls.interventions import patch
from reference_impls.locate import causal_attribution as C
from reference_impls.locate._batched_patch import outside_causal_cone
from reference_impls.locate.metrics import LogitDiff

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

BATCH, POS = 3, 5


@pytest.fixture(scope="module")
def gqa_model(tmp_path_factory):
    return tiny("llama", tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory, gqa_model):
    return gqa_model if request.param == "llama" else tiny("gpt2", tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(3, len(VOCAB), (BATCH, POS), generator=g)
    corrupted = clean.clone()
    corrupted[:, 2] = 3 + (clean[:, 2] - 3 + 5) % 13  # change one token per prompt
    answer = torch.randint(3, len(VOCAB), (BATCH,), generator=g)
    wrong = torch.randint(3, len(VOCAB), (BATCH,), generator=g)
    return clean, corrupted, LogitDiff(answer, wrong)


def tl_metric(metric):
    return lambda logits: metric(logits).mean()


# ---- shape and bookkeeping ------------------------------------------------------------------


def test_scores_are_indexed_by_the_sites_given(model, data):
    clean, corrupted, metric = data
    sites = A.heads(model, "out", positions=POS)
    scores = C.activation_patching(model, clean, corrupted, sites, metric)
    assert scores.sites == tuple(sites)
    assert scores.values.shape == (len(sites),)
    assert scores.meta["recovered"].shape == (len(sites),)


def test_chunk_size_does_not_change_results(model, data):
    clean, corrupted, metric = data
    sites = A.layers(model, "resid_pre", positions=POS) + A.heads(model, "v", positions=POS)
    whole = C.activation_patching(model, clean, corrupted, sites, metric, chunk_size=1000)
    chunked = C.activation_patching(model, clean, corrupted, sites, metric, chunk_size=5)
    torch.testing.assert_close(whole.values, chunked.values, rtol=0, atol=1e-6)


# ---- causal structure -----------------------------------------------------------------------


def test_patching_clean_into_clean_changes_nothing(model, data):
    clean, _, metric = data
    sites = A.heads(model, "out", positions=POS) + A.layers(model, "mlp_out", positions=POS)
    scores = C.activation_patching(model, clean, clean, sites, metric)
    with torch.no_grad():
        unpatched = float(metric(model(clean)).mean())
    torch.testing.assert_close(
        scores.values, torch.full_like(scores.values, unpatched), atol=1e-5, rtol=0
    )


def test_positions_after_the_read_position_have_no_effect(model, data):
    clean, corrupted, _ = data
    g = torch.Generator().manual_seed(1)
    answer, wrong = torch.randint(3, len(VOCAB), (2, BATCH), generator=g)
    reads_2 = LogitDiff(answer, wrong, pos=2)
    # a plain function hides the read position, so every site really runs
    opaque = lambda logits: reads_2(logits)  # noqa: E731
    corrupted = torch.randint(3, len(VOCAB), clean.shape, generator=g)
    sites = A.layers(model, "resid_pre", positions=POS)
    scores = C.activation_patching(model, clean, corrupted, sites, opaque)
    grid = scores.values.reshape(model.cfg.n_layers, POS)
    assert torch.all(grid[:, 3:] == scores.meta["corrupted"])
    assert (grid[:, :3] - scores.meta["corrupted"]).abs().max() > 1e-4


def test_sites_outside_the_causal_cone_are_exactly_unpatched(model, data):
    clean, corrupted, metric = data
    sites = (
        A.heads(model, "out", positions=POS)
        + A.heads(model, "q", positions=POS)
        + A.heads(model, "k", positions=POS)
        + A.layers(model, "mlp_out", positions=POS)
        + A.layers(model, "resid_pre", positions=POS)
    )
    pruned = [s for s in sites if outside_causal_cone(model, s, POS - 1)]
    assert {s.kind for s in pruned} == {
        "head_out",
        "q",
        "mlp_out",
    }  # last block, not the last position
    assert all(s.layer == 1 and s.pos < POS - 1 for s in pruned)
    opaque = lambda logits: metric(logits)  # noqa: E731  (no `pos`: nothing is skipped)
    exact = C.activation_patching(model, clean, corrupted, pruned, opaque)
    assert torch.all((exact.values - exact.meta["corrupted"]).abs() <= 1e-6)
    fast = C.activation_patching(model, clean, corrupted, sites, metric)
    assert fast.meta["corrupted"] == pytest.approx(exact.meta["corrupted"], abs=1e-6)


@pytest.mark.parametrize("kind", ["head_out", "resid_pre"])
def test_a_bidirectional_model_has_no_causal_cone(data, kind):
    # an encoder-style model: positions after the read position do reach it, so the sweep
    # must run them; the reference is one plain hook per site
    bidirectional = native("bidirectional")
    clean, _, _ = data
    g = torch.Generator().manual_seed(3)
    corrupted = torch.randint(3, len(VOCAB), clean.shape, generator=g)
    answer, wrong = torch.randint(3, len(VOCAB), (2, BATCH), generator=g)
    metric = LogitDiff(answer, wrong, pos=2)
    sites = (
        A.heads(bidirectional, "out", positions=POS)
        if kind == "head_out"
        else A.layers(bidirectional, "resid_pre", positions=POS)
    )
    scores = C.activation_patching(bidirectional, clean, corrupted, sites, metric)
    with torch.no_grad():
        _, cache = bidirectional.run_with_cache(clean)
        naive = []
        for s in sites:
            with patch(bidirectional, s, s.select(cache[s.hook_name])):
                naive.append(float(metric(bidirectional(corrupted)).mean()))
    naive = torch.tensor(naive)
    later = torch.tensor([s.pos > 2 for s in sites])
    assert (naive[later] - scores.meta["corrupted"]).abs().max() > 1e-3  # later sites matter
    torch.testing.assert_close(scores.values, naive, atol=1e-5, rtol=0)


def test_restoring_the_whole_first_residual_restores_the_clean_metric(model, data):
    clean, corrupted, metric = data
    everything = [A.resid(0, pos=None)]  # all positions at once: the whole input
    scores = C.activation_patching(model, clean, corrupted, [everything], metric)
    assert scores.values[0].item() == pytest.approx(scores.meta["clean"], abs=1e-5)


# ---- parity with TransformerLens' own patching loops -----------------------------------------


def _head_grid(values, model, n_heads):
    """Our head sweep (layer, head, pos order) in TransformerLens' (layer, pos, head) layout."""
    return values.reshape(model.cfg.n_layers, n_heads, POS).permute(0, 2, 1)


def test_head_output_sweep_equals_transformer_lens(model, data):
    clean, corrupted, metric = data
    sites = A.heads(model, "out", positions=POS)  # ordered layer, head, pos
    ours = C.activation_patching(model, clean, corrupted, sites, metric).values
    _, clean_cache = model.run_with_cache(clean)
    theirs = tl_patching.get_act_patch_attn_head_out_by_pos(
        model, corrupted, clean_cache, tl_metric(metric)
    )
    ours = _head_grid(ours, model, model.cfg.n_heads)
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert torch.equal(ours.flatten().argmax(), theirs.flatten().argmax())


@pytest.mark.parametrize("part", ["k", "v"])
def test_key_value_head_sweeps_equal_transformer_lens_on_grouped_query_attention(
    gqa_model, data, part
):
    clean, corrupted, metric = data
    tl_function = {
        "k": tl_patching.get_act_patch_attn_head_k_by_pos,
        "v": tl_patching.get_act_patch_attn_head_v_by_pos,
    }[part]
    sites = A.heads(gqa_model, part, positions=POS)
    assert len(sites) == gqa_model.cfg.n_layers * 2 * POS  # 2 key/value heads, 4 query heads
    ours = C.activation_patching(gqa_model, clean, corrupted, sites, metric).values
    _, clean_cache = gqa_model.run_with_cache(clean)
    theirs = tl_function(gqa_model, corrupted, clean_cache, tl_metric(metric))
    assert theirs.shape[-1] == 2
    assert (_head_grid(ours, gqa_model, 2) - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    "kind, tl_function",
    [
        ("resid_pre", tl_patching.get_act_patch_resid_pre),
        ("mlp_out", tl_patching.get_act_patch_mlp_out),
    ],
)
def test_layer_sweeps_equal_transformer_lens(model, data, kind, tl_function):
    clean, corrupted, metric = data
    sites = A.layers(model, kind, positions=POS)
    ours = C.activation_patching(model, clean, corrupted, sites, metric).values
    _, clean_cache = model.run_with_cache(clean)
    theirs = tl_function(model, corrupted, clean_cache, tl_metric(metric))
    assert (ours.reshape(theirs.shape) - theirs).abs().max().item() <= 1e-5


def test_noising_equals_transformer_lens_with_the_roles_swapped(model, data):
    clean, corrupted, metric = data
    sites = [A.head(layer, h, pos, "out") for layer, h, pos in [(0, 1, 2), (1, 3, 4), (1, 0, 2)]]
    ours = C.activation_patching(model, clean, corrupted, sites, metric, direction="noising")
    _, corrupted_cache = model.run_with_cache(corrupted)
    index = pd.DataFrame(
        [(s.layer, s.pos, s.head) for s in sites], columns=["layer", "pos", "head"]
    )
    theirs = tl_patching.get_act_patch_attn_head_out_by_pos(
        model, clean, corrupted_cache, tl_metric(metric), index_axis_names=None, index_df=index
    )
    assert (ours.values - theirs).abs().max().item() <= 1e-5


# ---- causal tracing ---------------------------------------------------------------------------


def test_causal_tracing_equals_a_hand_written_restore(model, data):
    clean, _, metric = data
    sites = A.layers(model, "resid_pre", positions=POS)
    scores = C.causal_tracing(model, clean, [1, 2], sites, metric, samples=2, seed=3)
    # independent: draw the same noise, add it, restore one site with a plain hook
    g = torch.Generator().manual_seed(3)
    std = scores.meta["noise_std"]
    noise = torch.zeros(2 * BATCH, POS, model.cfg.d_model)
    noise[:, [1, 2]] = torch.randn(2 * BATCH, 2, model.cfg.d_model, generator=g) * std
    tokens = clean.repeat(2, 1)
    _, cache = model.run_with_cache(tokens)
    site = A.resid(1, pos=2)
    restore = lambda act, hook: site.write(act, site.select(cache[site.hook_name]))  # noqa: E731
    logits = model.run_with_hooks(
        tokens,
        fwd_hooks=[("hook_embed", lambda act, hook: act + noise), (site.hook_name, restore)],
    )
    expected = metric(logits.reshape(2, BATCH, *logits.shape[1:])).mean().item()
    assert scores.score(site) == pytest.approx(expected, abs=1e-5)


def test_causal_tracing_restoring_the_noised_embeddings_restores_the_clean_run(model, data):
    clean, _, metric = data
    scores = C.causal_tracing(model, clean, [2], [[A.embed(2)], [A.embed(4)]], metric, samples=2)
    assert scores.values[0].item() == pytest.approx(scores.meta["clean"], abs=1e-5)
    assert scores.values[1].item() == pytest.approx(scores.meta["corrupted"], abs=1e-5)
    assert scores.meta["clean"] != pytest.approx(scores.meta["corrupted"], abs=1e-6)


# ---- attribution patching --------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    return linear(tmp_path_factory.mktemp("linear"))


def test_attribution_patching_is_exact_on_a_linear_model(linear_model, data):
    clean, _, metric = data
    corrupted = torch.randint(
        3, len(VOCAB), clean.shape, generator=torch.Generator().manual_seed(5)
    )
    m = linear_model
    sites = (
        A.layers(m, "resid_pre", positions=POS)
        + A.heads(m, "out", positions=POS)
        + A.layers(m, "mlp_out", positions=POS)
        + [A.neuron(layer, j) for layer in range(2) for j in range(0, 48, 7)]
    )
    report = C.attribution_patching_error(m, clean, corrupted, sites, metric)
    scale = report["exact"].values.abs().max().item()
    assert scale > 1e-2  # the effects are not trivially zero
    assert report["max_abs_error"] <= 1e-4 * scale
    assert report["pearson"] > 0.9999


def test_attribution_patching_error_is_reported_on_a_nonlinear_model(model, data):
    clean, corrupted, metric = data
    sites = A.heads(model, "out", positions=POS)
    report = C.attribution_patching_error(model, clean, corrupted, sites, metric)
    assert report["approx"].sites == report["exact"].sites == tuple(sites)
    error = (report["approx"].values - report["exact"].values).abs().max().item()
    assert report["max_abs_error"] == pytest.approx(error)
    assert report["max_abs_error"] > 0  # softmax, GELU and LayerNorm make it inexact
