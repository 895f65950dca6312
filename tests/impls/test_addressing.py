"""Sites name real hooks and real slices, on GPT-2 and on grouped-query Llama models.

Tiny seeded random models (no downloads); the slice a site patches is checked against
TransformerLens' own activation patching, an independent implementation.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from reference_impls import addressing as A
from reference_impls import interventions as I
from reference_impls import zoo
from reference_impls.zoo import checkpoint

pytestmark = pytest.mark.impls

VOCAB = checkpoint.vocabulary([f"w{i}" for i in range(13)])


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    sizes = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_mlp": 48, "n_ctx": 16}
    if request.param == "llama":
        sizes["n_kv_heads"] = 2  # grouped-query attention: k/v have 2 heads, q has 4
    hf = checkpoint.tiny_model(request.param, len(VOCAB), seed=1, **sizes)
    directory = checkpoint.save(hf, VOCAB, tmp_path_factory.mktemp(request.param))
    return zoo.load(directory)


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(0)
    return torch.cat(
        [torch.ones(2, 1, dtype=torch.long), torch.randint(3, len(VOCAB), (2, 7), generator=g)], 1
    )


def all_kinds(model):
    """One site of every kind that hooks the model directly, at position 3."""
    return [
        A.embed(3),
        A.resid(1, 3, "pre"),
        A.resid(0, 3, "mid"),
        A.resid(1, 3, "post"),
        A.attn_out(0, 3),
        A.mlp_out(1, 3),
        A.head(1, 2, 3, "out"),
        A.head(0, 3, 3, "q"),
        A.head(1, 1, 3, "k"),
        A.head(0, 1, 3, "v"),
        A.head(1, 2, 3, "pattern"),
        A.neuron(0, 5, 3),
    ]


def test_every_site_names_a_hook_of_the_model(model):
    hook_names = set(model.hook_dict)
    for site in all_kinds(model):
        assert site.hook_name in hook_names, site


def test_select_gives_the_documented_slice_shape(model, tokens):
    d = A.dims(model)
    expected = {
        "embed": (2, d.d_model),
        "resid_pre": (2, d.d_model),
        "resid_mid": (2, d.d_model),
        "resid_post": (2, d.d_model),
        "attn_out": (2, d.d_model),
        "mlp_out": (2, d.d_model),
        "head_out": (2, d.d_head),
        "q": (2, d.d_head),
        "k": (2, d.d_head),
        "v": (2, d.d_head),
        "pattern": (2, tokens.shape[1]),
        "neuron": (2,),
    }
    _, cache = model.run_with_cache(tokens)
    for site in all_kinds(model):
        assert tuple(site.select(cache[site.hook_name]).shape) == expected[site.kind], site
        # pos=None addresses every position: one more axis of length seq
        assert (
            site.at(None).select(cache[site.hook_name]).shape[1] == tokens.shape[1]
            or site.kind == "pattern"
        )


def test_write_replaces_only_the_site_and_leaves_the_input_alone(model, tokens):
    _, cache = model.run_with_cache(tokens)
    site = A.head(1, 2, 3)
    act = cache[site.hook_name]
    before = act.clone()
    out = site.write(act, 7.0)
    assert torch.equal(act, before)
    assert torch.all(site.select(out) == 7.0)
    mask = torch.ones_like(out, dtype=torch.bool)
    mask[site.slices()] = False
    assert torch.equal(out[mask], act[mask])


def test_kv_heads_follow_grouped_query_attention(model):
    d = A.dims(model)
    assert len(A.heads(model, "k")) == d.n_layers * d.n_kv_heads
    assert len(A.heads(model, "out")) == d.n_layers * d.n_heads
    assert len(A.heads(model, "v", positions=5)) == d.n_layers * d.n_kv_heads * 5
    assert A.check(model, A.head(0, d.n_kv_heads - 1, part="k"))
    with pytest.raises(A.SiteError, match=f"head must be in 0..{d.n_kv_heads - 1} for k"):
        A.check(model, A.head(0, d.n_kv_heads, part="k"))


@pytest.mark.parametrize(
    "part, tl_name",
    [("out", "get_act_patch_attn_head_out_by_pos"), ("k", "get_act_patch_attn_head_k_by_pos")],
)
def test_patching_a_site_matches_transformer_lens_patching(model, tokens, part, tl_name):
    """Our slice is TransformerLens' slice: patch clean into corrupted, compare the metric."""
    from transformer_lens import patching

    clean, corrupted = tokens[:1], tokens[1:]
    _, clean_cache = model.run_with_cache(clean)

    def metric(logits):
        return logits[0, -1, 4] - logits[0, -1, 5]

    with torch.no_grad():
        expected = getattr(patching, tl_name)(
            model, corrupted, clean_cache, metric
        )  # [layer, pos, head]
    for layer, pos, h in [(0, 2, 1), (1, 7, 0), (1, 4, 1)]:
        site = A.head(layer, h, pos, part)
        with torch.no_grad(), I.patch(model, site, site.select(clean_cache[site.hook_name])):
            ours = metric(model(corrupted))
        assert torch.allclose(ours, expected[layer, pos, h], atol=1e-5), site


SITE_STRATEGY = st.one_of(
    st.builds(A.embed, st.none() | st.integers(0, 9)),
    st.builds(
        A.resid,
        st.integers(0, 3),
        st.none() | st.integers(0, 9),
        st.sampled_from(["pre", "mid", "post"]),
    ),
    st.builds(
        A.head,
        st.integers(0, 3),
        st.integers(0, 7),
        st.none() | st.integers(0, 9),
        st.sampled_from(["out", "q", "k", "v", "pattern"]),
    ),
    st.builds(A.neuron, st.integers(0, 3), st.integers(0, 99), st.none() | st.integers(0, 9)),
    st.builds(
        A.sae_feature,
        st.just("blocks.0.hook_resid_post"),
        st.integers(0, 99),
        st.none() | st.integers(0, 9),
    ),
)


@given(SITE_STRATEGY)
def test_sites_round_trip_through_json_dicts(site):
    d = site.to_dict()
    assert A.Site.from_dict(d) == site
    assert d["hook_name"] == site.hook_name and d["label"] == str(site)
    assert d["object"] in {
        "token-embedding",
        "residual-stream",
        "attention-head",
        "neuron",
        "sae-feature",
    }


def test_invalid_sites_are_refused_with_the_reason():
    with pytest.raises(A.SiteError, match="valid kinds"):
        A.Site("resid")
    with pytest.raises(A.SiteError, match="needs a head"):
        A.Site("head_out", layer=0)
    with pytest.raises(A.SiteError, match="needs an index"):
        A.Site("neuron", layer=0)
    with pytest.raises(A.SiteError, match="has no head"):
        A.Site("mlp_out", layer=0, head=1)
    with pytest.raises(A.SiteError, match="part="):
        A.head(0, 0, part="o")


def test_site_scores_index_their_sites_row_major(model):
    sites = A.heads(model, positions=3)  # layer, head, pos
    d = A.dims(model)
    values = torch.arange(len(sites), dtype=torch.float32).reshape(d.n_layers, d.n_heads, 3)
    scores = A.SiteScores.from_grid(values, sites, ("layer", "head", "pos"))
    assert scores.top(1) == [(A.head(1, d.n_heads - 1, 2), float(len(sites) - 1))]
    assert scores.score(A.head(0, 1, 2)) == float(values[0, 1, 2])
    as_json = scores.to_dict()
    assert as_json["shape"] == [d.n_layers, d.n_heads, 3] and len(as_json["sites"]) == len(sites)
    with pytest.raises(A.SiteError, match="scores for"):
        A.SiteScores(values[:1], tuple(sites), ("layer", "head", "pos"))
