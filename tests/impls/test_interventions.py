"""Interventions undo themselves: no hook survives its block, every weight edit restores bit for bit."""

from __future__ import annotations

import pytest
import torch

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
        sizes["n_kv_heads"] = 2
    hf = checkpoint.tiny_model(request.param, len(VOCAB), seed=2, **sizes)
    return zoo.load(checkpoint.save(hf, VOCAB, tmp_path_factory.mktemp(request.param)))


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(1)
    return torch.cat(
        [torch.ones(2, 1, dtype=torch.long), torch.randint(3, len(VOCAB), (2, 6), generator=g)], 1
    )


def n_hooks(model) -> int:
    # hook_dict lists a hook point under each of its alias names: count each point once
    points = {id(hp): hp for hp in model.hook_dict.values()}.values()
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in points)


def contexts(model):
    """Every hook-based intervention, on a head and a residual site."""
    d = A.dims(model)
    sites = [A.head(1, 0, 2), A.resid(1, 3)]
    return {
        "hooks": lambda: I.hooks(model, fwd=[(s.hook_name, lambda act, hook: act) for s in sites]),
        "patch": lambda: I.patch(model, sites[0], torch.zeros(d.d_head)),
        "ablate": lambda: I.ablate(model, sites),
        "add": lambda: I.add(model, sites[1], torch.ones(d.d_model)),
        "project_out": lambda: I.project_out(model, sites[1], torch.ones(d.d_model)),
        "record": lambda: I.record(model, sites),
    }


@pytest.mark.parametrize("kind", ["hooks", "patch", "ablate", "add", "project_out", "record"])
def test_an_exception_inside_a_hook_context_leaves_no_hook_behind(model, tokens, kind):
    with torch.no_grad():
        baseline = model(tokens)
    assert n_hooks(model) == 0
    with pytest.raises(RuntimeError, match="boom"), contexts(model)[kind]():
        assert n_hooks(model) > 0
        model(tokens)
        raise RuntimeError("boom")
    assert n_hooks(model) == 0
    with torch.no_grad():
        assert torch.equal(model(tokens), baseline)


def test_an_unknown_hook_name_attaches_nothing_and_names_the_closest(model):
    good = (A.resid(0).hook_name, lambda act, hook: act)
    with (
        pytest.raises(I.HookNameError, match="closest: blocks.0.hook_resid_pre"),
        I.hooks(model, fwd=[good, ("blocks.0.hook_resid_pree", lambda a, h: a)]),
    ):
        pass
    assert n_hooks(model) == 0


def test_hooks_attached_by_others_survive(model, tokens):
    seen = []
    model.add_hook("blocks.0.hook_resid_pre", lambda act, hook: seen.append(1))
    try:
        with I.ablate(model, A.mlp_out(0)):
            model(tokens)
        assert n_hooks(model) == 1
        model(tokens)
        assert len(seen) == 2
    finally:
        model.reset_hooks()


def test_ablating_a_site_changes_only_what_follows_it(model, tokens):
    site = A.head(1, 1, pos=4)
    with torch.no_grad():
        clean = model(tokens)
        with I.ablate(model, site):
            ablated = model(tokens)
    # causal structure: positions before the ablated one are untouched, later ones change
    assert torch.equal(ablated[:, :4], clean[:, :4])
    assert not torch.allclose(ablated[:, 4:], clean[:, 4:])


def test_add_and_project_out_do_what_they_say(model, tokens):
    d = A.dims(model)
    site = A.resid(1, pos=3)
    vec = torch.randn(d.d_model, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        before = site.select(cache[site.hook_name])
        with (
            I.add(model, site, vec, scale=2.0),
            I.record(model, A.resid(1, pos=3, where="pre")) as rec,
        ):
            model(tokens)
        # record sees the activation after the earlier-registered add hook
        assert torch.allclose(rec[site], before + 2.0 * vec, atol=1e-5)
        with I.project_out(model, site, vec), I.record(model, site) as rec:
            model(tokens)
        assert torch.allclose(rec[site] @ (vec / vec.norm()), torch.zeros(2), atol=1e-5)


NAMES = [
    "W_E",
    "W_U",
    "blocks.0.attn.W_Q",
    "blocks.1.attn.W_K",
    "blocks.0.attn.W_V",
    "blocks.1.attn.W_O",
    "blocks.0.mlp.W_in",
    "blocks.1.mlp.W_out",
]


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", NAMES)
def test_an_edit_then_its_undo_restores_identical_weights(model, tokens, name):
    before = snapshot(model)
    with torch.no_grad():
        logits = model(tokens)
        noise = torch.randn(I.weight(model, name).shape, generator=torch.Generator().manual_seed(4))
        edit = I.edit_weights(model, {name: lambda w: w + noise})
        assert not torch.allclose(model(tokens), logits), "the edit must reach the forward pass"
        edit.undo()
        edit.undo()  # idempotent
        assert torch.equal(model(tokens), logits)
    after = snapshot(model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_weight_views_match_transformer_lens_weights(model):
    # the bridge's own (possibly copied) properties are an independent reading of the weights
    for layer in range(2):
        attn, mlp = model.blocks[layer].attn, model.blocks[layer].mlp
        for leaf in ("W_Q", "W_K", "W_V", "W_O"):
            assert torch.allclose(
                I.weight(model, f"blocks.{layer}.attn.{leaf}"), getattr(attn, leaf)
            ), leaf
        assert torch.allclose(I.weight(model, f"blocks.{layer}.mlp.W_out"), mlp.W_out)
        assert torch.allclose(I.weight(model, f"blocks.{layer}.mlp.W_in"), mlp.W_in)
    assert torch.allclose(I.weight(model, "W_U"), model.W_U)


def test_an_edit_used_as_a_context_is_undone_on_exceptions(model):
    before = snapshot(model)
    with (
        pytest.raises(RuntimeError),
        I.edit_weights(model, {"blocks.0.mlp.W_out": lambda w: w * 3}),
    ):
        raise RuntimeError("boom")
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_a_bad_edit_changes_nothing(model):
    before = snapshot(model)
    with pytest.raises(A.SiteError, match="expected"):
        I.edit_weights(
            model, {"blocks.0.mlp.W_in": lambda w: w + 1, "blocks.0.mlp.W_out": torch.zeros(2, 2)}
        )
    with pytest.raises(A.SiteError, match="closest: blocks.0.mlp.W_out;"):
        I.weight(model, "blocks.0.mlp.W_outt")
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


# ---- no silent no-ops ------------------------------------------------------------------------


def test_a_hook_that_never_fires_is_an_error_naming_it(model, tokens):
    # hooks the bridge lists but its forward never reaches: GPT-2's fused qkv projection (the
    # bridge runs split q/k/v instead), Llama's MLP input (the gated MLP reads it elsewhere).
    # A patch written there used to run and measure the unpatched model.
    gpt2 = hasattr(model, "pos_embed")
    name = "blocks.0.attn.qkv.hook_out" if gpt2 else "blocks.0.mlp.in.hook_in"
    assert name in model.hook_dict
    with pytest.raises(I.SilentInterventionError, match=f"'{name}' never fired"):
        with I.hooks(model, fwd=[(name, lambda act, hook: act * 0)]), torch.no_grad():
            model(tokens)
    assert n_hooks(model) == 0


def test_a_block_that_runs_no_forward_is_an_error(model):
    with pytest.raises(I.SilentInterventionError, match="never fired"):
        with I.ablate(model, A.head(1, 0)):
            pass


def test_a_write_that_changes_nothing_is_an_error_unless_declared(model, tokens):
    d = A.dims(model)
    site = A.resid(1, 3)
    with pytest.raises(I.SilentInterventionError, match="blocks.1.hook_resid_pre.*changed nothing"):
        with I.add(model, site, torch.zeros(d.d_model)), torch.no_grad():
            model(tokens)
    with torch.no_grad():
        baseline = model(tokens)
        with I.add(model, site, torch.zeros(d.d_model), identity_ok=True):
            torch.testing.assert_close(model(tokens), baseline, rtol=0, atol=0)
        # an in-place rewrite that returns None is seen as a write, too
        with I.hooks(model, fwd=[(site.hook_name, lambda act, hook: (act.mul_(2.0), None)[1])]):
            assert not torch.equal(model(tokens), baseline)


def test_an_observer_needs_only_to_fire(model, tokens):
    with torch.no_grad(), I.record(model, A.resid(1, 3)) as store:
        model(tokens)
    assert A.resid(1, 3) in store
