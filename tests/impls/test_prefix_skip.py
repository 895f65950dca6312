"""The sweep's position-prefix skip: copies patched at position p compute only positions >= p.

Properties: on causal zoo models the skip gives the scores of the unskipped sweep (which the
TransformerLens and nnsight parity tests check against independent code) for every positional
site kind, in-batch and mapping sources, sets of several sites; it is really used there; it is
never used on a bidirectional model; and an attention that ignored the prefix would be caught
by the unpatched rows and the sweep would fall back to the full computation.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate import _batched_patch as BP
from reference_impls.locate import _kv_prefix as K
from reference_impls.locate.metrics import CenteredLogit, LogitDiff
from tests.locate_testing import native

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

BATCH, POS = 4, 9


@pytest.fixture(scope="module", params=["ioi", "induction"])  # GPT-2 and Llama (rotary, GQA)
def case(request):
    model = zoo.load(request.param)
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(3, model.cfg.d_vocab, (BATCH, POS), generator=g)
    clean[:, 0] = 1
    corrupted = clean.clone()
    corrupted[:, 1:4] = torch.randint(3, model.cfg.d_vocab, (BATCH, 3), generator=g)
    with torch.no_grad():
        answer = model(clean)[:, -1].argmax(-1)
    return model, clean, corrupted, CenteredLogit(answer)


@pytest.fixture
def suffix_forwards(monkeypatch):
    """Counts the forwards that start after position 0 (offsets seen)."""
    offsets: list[int] = []
    original = BP.kv_prefix

    @contextmanager
    def counting(model, capture, offset):
        offsets.append(offset)
        with original(model, capture, offset) as kwargs:
            yield kwargs

    monkeypatch.setattr(BP, "kv_prefix", counting)
    return offsets


def every_prefix_its_own_forward(monkeypatch):
    # no fixed cost per forward: the plan starts a forward at (nearly) every distinct prefix
    monkeypatch.setattr(
        BP, "forward_cost", lambda model, b, n: K.ForwardCost(0.0, b, n, model.cfg.n_layers)
    )


def sweep_sets(model):
    d = A.dims(model)
    singles = (
        A.layers(model, "resid_pre", positions=POS)
        + A.heads(model, "out", positions=POS)
        + A.heads(model, "k", positions=POS)
        + A.layers(model, "mlp_out", positions=POS)
        + [A.neuron(d.n_layers - 1, 3, pos=5)]
    )
    sets = [[s] for s in singles]
    sets.append([A.resid(1, pos=6), A.head(0, 1, pos=4)])  # a set: skips to its earliest pos
    sets.append([A.head(1, 0, pos=None)])  # no position: nothing to skip
    sets.append([A.head(0, 0, pos=2), A.head(1, 0, pos=None)])
    return sets


@pytest.mark.parametrize("plan", ["measured", "every-prefix"])
def test_the_skip_gives_the_unskipped_scores(case, suffix_forwards, monkeypatch, plan):
    model, clean, corrupted, metric = case
    if plan == "every-prefix":
        every_prefix_its_own_forward(monkeypatch)
    sets = sweep_sets(model)
    fast = BP.patch_sweep(model, corrupted, sets, clean, metric, chunk_size=16, reads=-1)
    full = BP.patch_sweep(
        model, corrupted, sets, clean, metric, chunk_size=16, reads=-1, skip_prefix=False
    )
    assert suffix_forwards and min(suffix_forwards) > 0  # the skip was used
    if plan == "every-prefix":
        assert len(set(suffix_forwards)) >= POS // 2
    for got, want in zip(fast, full, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (full[0] - full[1]).abs().max() > 1e-2  # the sites do move the metric


def test_the_skip_with_a_mapping_source_equals_the_unskipped_sweep(
    case, suffix_forwards, monkeypatch
):
    # ablation: each copy takes a fixed (here: mean over the batch) activation, sliced to the
    # copy's suffix
    model, clean, corrupted, metric = case
    every_prefix_its_own_forward(monkeypatch)
    sites = A.layers(model, "resid_pre", positions=POS) + A.heads(model, "out", positions=POS)
    _, cache = model.run_with_cache(clean)
    means = {s.hook_name: cache[s.hook_name].mean(0, keepdim=True) for s in sites}
    sets = [[s] for s in sites]
    fast = BP.patch_sweep(model, corrupted, sets, means, metric, reads=-1)
    full = BP.patch_sweep(model, corrupted, sets, means, metric, reads=-1, skip_prefix=False)
    assert suffix_forwards
    torch.testing.assert_close(fast[0], full[0], atol=1e-5, rtol=0)
    assert fast[2] is None and full[2] is None


def test_an_attention_that_ignores_the_prefix_is_caught(case, suffix_forwards, monkeypatch):
    # if a model's attention dropped the prefix, the unpatched rows of a suffix forward would
    # no longer reproduce the full run: the sweep must notice and compute everything in full
    model, clean, corrupted, metric = case
    every_prefix_its_own_forward(monkeypatch)
    monkeypatch.setattr(K._Prefix, "update", lambda self, k, v, layer_idx, *a, **kw: (k, v))
    sets = [[s] for s in A.layers(model, "resid_pre", positions=POS)]
    fast = BP.patch_sweep(model, corrupted, sets, clean, metric, reads=-1)
    full = BP.patch_sweep(model, corrupted, sets, clean, metric, reads=-1, skip_prefix=False)
    assert suffix_forwards  # it tried
    torch.testing.assert_close(fast[0], full[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["resid_pre", "head_out"])
def test_the_skip_is_never_used_on_a_bidirectional_model(kind, monkeypatch):
    model = native("bidirectional")
    every_prefix_its_own_forward(monkeypatch)
    captures: list[int] = []
    original = BP.kv_capture

    @contextmanager
    def counting(model, rows):
        captures.append(rows)
        with original(model, rows) as capture:
            yield capture

    monkeypatch.setattr(BP, "kv_capture", counting)
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(3, model.cfg.d_vocab, (BATCH, POS), generator=g)
    corrupted = torch.randint(3, model.cfg.d_vocab, (BATCH, POS), generator=g)
    answer, wrong = torch.randint(3, model.cfg.d_vocab, (2, BATCH), generator=g)
    metric = LogitDiff(answer, wrong, pos=-1)
    sites = (
        A.layers(model, "resid_pre", positions=POS)
        if kind == "resid_pre"
        else A.heads(model, "out", positions=POS)
    )
    sets = [[s] for s in sites]
    got = BP.patch_sweep(model, corrupted, sets, clean, metric, reads=-1)
    assert not K.prefix_of([]) and all(K.prefix_of(s) == s[0].pos for s in sets)
    assert captures == []  # position prefixes are shared only under causal attention
    # and the result is the plain one: every later position still reaches the read position
    want = BP.patch_sweep(model, corrupted, sets, clean, metric, skip_prefix=False)
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=0)


def test_the_plan_splits_at_prefixes_only_when_a_forward_is_cheap():
    prefixes = [0, 0, 3, 3, 5, 5, 5]
    joins = [0, 1, 0, 1, 0, 1, 1]
    order = range(len(prefixes))

    def plan(fixed):
        return K.plan_chunks(prefixes, joins, order, 64, K.ForwardCost(fixed, 8, 8, 2), 2)

    # free forwards: prefix 5's three copies skip 5 positions each, worth a carrier of their own;
    # prefix 3's two copies do not pay for one (the first forward carries two groups)
    assert plan(0.0) == [[0, 2, 1, 3], [4, 5, 6]]
    assert plan(1e9) == [[0, 2, 4, 1, 3, 5, 6]]  # one forward, sorted by joining block
    # every copy late in the prompt: the first forward records the prefix with no copies in it
    late = K.plan_chunks([6, 6, 7], [0, 1, 0], range(3), 64, K.ForwardCost(0.0, 8, 8, 2), 2)
    assert late == [[], [0, 2, 1]]
    assert [
        len(c) for c in K.plan_chunks(prefixes, joins, order, 2, K.ForwardCost(0.0, 8, 8, 2), 2)
    ] == [2, 2, 2, 1]


def test_late_sites_alone_give_the_unskipped_scores(case, suffix_forwards, monkeypatch):
    # no site before position 5: the first forward runs without copies, every copy is shortened
    model, clean, corrupted, metric = case
    every_prefix_its_own_forward(monkeypatch)
    sites = A.layers(model, "resid_pre", positions=range(5, POS))
    sites += A.heads(model, "out", positions=range(5, POS))
    sets = [[s] for s in sites]
    fast = BP.patch_sweep(model, corrupted, sets, clean, metric, reads=-1)
    full = BP.patch_sweep(model, corrupted, sets, clean, metric, reads=-1, skip_prefix=False)
    assert suffix_forwards and min(suffix_forwards) >= 5
    for got, want in zip(fast, full, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
