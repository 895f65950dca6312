"""Vocabulary projection: the logit lens is the model at its last layer; static projections are
the weight products they claim; a planted copying head has copying score 1.

Independent computations: the model's own logits; weight products written out from the
Hugging Face parameters (`interventions.weight`, live views in TransformerLens orientation).
Planted truth on a random model: one head's OV circuit set to copy (W_V W_O = pseudo-inverse
of W_E times W_E's left inverse, so that W_E W_V W_O W_U has the identity's argmax).
"""

from __future__ import annotations

import pytest
import torch
from locate_testing import random_tokens, tiny

from reference_impls import addressing as A
from reference_impls.interventions import edit_weights, weight
from reference_impls.locate import vocab_projection as V

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

BATCH, POS = 3, 5


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    return tiny(request.param, tmp_path_factory.mktemp(request.param))


def test_the_lens_at_the_last_layer_is_the_model(model):
    tokens = random_tokens(BATCH, POS, seed=0)
    lens = V.lens_logits(model, tokens)
    assert lens.shape == (model.cfg.n_layers, BATCH, POS, model.cfg.d_vocab)
    with torch.no_grad():
        logits = model(tokens)
    torch.testing.assert_close(lens[-1], logits, atol=1e-5, rtol=0)
    assert (lens[0] - logits).abs().max() > 1e-3  # an earlier layer is not the output


def test_the_lens_before_block_zero_reads_the_embedding(model):
    tokens = random_tokens(BATCH, POS, seed=1)
    lens = V.lens_logits(model, tokens, where="pre")
    _, cache = model.run_with_cache(tokens)
    with torch.no_grad():
        expected = model.unembed(model.ln_final(cache["blocks.0.hook_resid_pre"]))
    torch.testing.assert_close(lens[0], expected)


def test_logit_lens_scores_the_answer_per_layer(model):
    tokens = random_tokens(BATCH, POS, seed=2)
    with torch.no_grad():
        answer = model(tokens)[:, -1].argmax(-1)  # the model's own top token
    scores = V.logit_lens(model, tokens, answer)
    assert scores.sites == tuple(A.resid(layer, pos=POS - 1, where="post") for layer in range(2))
    assert scores.meta["top1"][-1] == 1.0 and scores.meta["rank"][-1] == 0
    assert scores.meta["first_layer"] in (0, 1)


def test_neuron_projections_are_w_out_times_w_u(model):
    scores, projection = V.neuron_projections(model, 1, top_k=3)
    expected = weight(model, "blocks.1.mlp.W_out") @ weight(model, "W_U")
    torch.testing.assert_close(projection, expected.detach())
    assert scores.values.tolist() == pytest.approx(expected.max(-1).values.tolist(), abs=1e-6)
    assert torch.equal(scores.meta["top_tokens"], expected.topk(3, dim=-1).indices)


def test_ov_circuits_follow_the_key_value_head_of_each_query_head(model):
    circuits = V.ov_circuits(model, 0)
    n_heads = model.cfg.n_heads
    w_v = weight(model, "blocks.0.attn.W_V")  # (kv heads, d_model, d_head)
    group = n_heads // w_v.shape[0]
    for h in range(n_heads):
        expected = weight(model, "W_E") @ w_v[h // group] @ weight(model, "blocks.0.attn.W_O")[h]
        expected = expected @ weight(model, "W_U")
        torch.testing.assert_close(circuits[h], expected.detach(), atol=1e-5, rtol=1e-4)


def test_a_planted_copying_head_has_the_top_copying_score(model):
    words = list(range(3, model.cfg.d_vocab))
    w_e = weight(model, "W_E").detach()[words]  # (words, d_model)
    w_u = weight(model, "W_U").detach()[:, words]  # (d_model, words)
    # an OV map M (d_model -> d_model, rank d_head) with w_e M w_u close to the identity
    target = torch.linalg.pinv(w_e) @ torch.linalg.pinv(w_u)  # (d_model, d_model)
    u, s, vh = torch.linalg.svd(target)
    d_head = model.cfg.d_head
    w_v = u[:, :d_head] * s[:d_head]  # (d_model, d_head)
    w_o = vh[:d_head]  # (d_head, d_model)
    kv = 0  # key/value head 0 serves query head 0 (and its group on grouped-query models)

    def set_v(old):
        old[kv] = w_v
        return old

    def set_o(old):
        old[0] = w_o
        return old

    with edit_weights(model, {"blocks.1.attn.W_V": set_v, "blocks.1.attn.W_O": set_o}):
        scores = V.copying_scores(model, tokens=words)
    assert scores.ranking()[0] == A.head(1, 0)
    assert scores.score(A.head(1, 0)) >= 0.9  # rank d_head cannot copy all 13 words exactly
    assert scores.margin([A.head(1, 0)]) >= 0.5  # random heads copy a few words by chance
