"""logic-reasoning-two-hop: back-patching the probed bridge composes held-out two-hop queries.

The patient (`two-hop`) knows every one-hop fact and the trained compositions and fails the
held-out ones (its card). The fast tests check the splits (held-out second hops in no loss,
validation and test never sharing one) and the back-patch itself on a few prompts. The recipe
test runs the registered recipe (5 data seeds, about 45 s on one thread, nothing trained): the
located back-patch beats random triples and the mean state by stated margins, and, as measured
(docs/recipes.md), the norm-change control picks the same back-patch and ties: the test
asserts that tie rather than a lead that does not exist.
"""

from __future__ import annotations

import pytest
import torch

from reference_impls import zoo
from reference_impls.recipes import logic_reasoning_two_hop as th

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]


def rows(tensor: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(r) for r in tensor.tolist()}


def second_hops(task, comps: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(task.bridge(comps).tolist(), comps[:, 2].tolist(), strict=True))


def test_held_out_second_hops_are_in_no_loss_and_validation_never_shares_one_with_test():
    task = zoo.task("two-hop")
    train, held = task.pool("train"), task.pool("held-out")
    assert len(train) == len(held) == 192 and not rows(train) & rows(held)
    assert not second_hops(task, train) & second_hops(task, held)
    for seed in (None, 0, 3):
        validation, test = task.validation_test(seed)
        assert rows(validation) | rows(test) == rows(held) and len(validation) == 96
        assert not second_hops(task, validation) & second_hops(task, test)
    assert not rows(task.validation_test(0)[0]) == rows(task.validation_test(1)[0])
    with pytest.raises(ValueError, match="'heldout' is not one of train, validation, test"):
        task.pool("heldout")
    gen = torch.Generator().manual_seed(0)
    batch = task.training_batch(gen, 256)  # two-hop training rows are trained compositions only
    two = batch.tokens[batch.extra["two_hop"]]
    comps = batch.extra["comps"][batch.extra["two_hop"]]
    assert torch.equal(two[:, :4], task.encode(comps)) and rows(comps) <= rows(train)


def test_back_patching_writes_the_first_pass_state_and_restores_the_model():
    model, task = zoo.load("two-hop"), zoo.task("two-hop")
    comps = task.pool("test")[:16]
    tokens = task.encode(comps)
    with torch.no_grad():
        plain = model(tokens)
    # a patch of a site by its own value is the identity: the second pass equals the first
    assert torch.allclose(th.back_patched(model, tokens, (2, 2, 2)), plain, atol=1e-5)
    patched = th.back_patched(model, tokens, (4, 0, 2))
    assert not torch.allclose(patched[:, 2:], plain[:, 2:])
    assert torch.equal(patched[:, :2], plain[:, :2])  # causal: earlier positions untouched
    with torch.no_grad():
        assert torch.equal(model(tokens), plain)


def test_the_recipe_composes_held_out_queries_beyond_random_and_mean_back_patches():
    from reference_impls import registry

    document = registry.run("logic-reasoning-two-hop")  # as `mi-atlas run` runs it
    assert document.method == "logic-reasoning" and document.seeds == [0, 1, 2, 3, 4]
    result = document.result
    test = result.metric
    assert test.after.n == 5 and test.after.std > 0  # the data seeds' partitions differ
    assert test.before.mean < 0.05  # measured 0.008: held-out compositions fail
    assert test.after.mean > test.before.mean + 0.25, test  # measured 0.358 ± 0.027
    random_triples, mean_state, validation = result.other
    assert random_triples.after.mean >= random_triples.control.mean + 0.08, random_triples
    assert mean_state.control.mean <= 0.05, mean_state  # measured 0.000: the bridge matters
    # the norm-change control picks final -> L0 at the first relation too (measured, every
    # seed): a tie, which the page reports; the method does not beat it
    assert result.control.kind == "data-derived-sites"
    assert test.control.values == test.after.values
    trained, one_hop = result.collateral  # measured 0.833 and 0.146
    assert trained.before.mean == 1.0 and 0.7 <= trained.after.mean < 1.0, trained
    assert one_hop.after.mean < 0.5, one_hop  # applied to one-hop prompts it breaks them
    assert result.restored
    numbers = result.numbers
    # the probe locates the bridge: best at the final residual of the first relation
    probe = [numbers[f"bridge probe / first relation / layer {i}"].mean for i in range(5)]
    assert (
        probe[0] < 0.05 and probe[-1] > 0.8 and numbers["source layer / first relation"].mean == 4
    )
    answer = [numbers[f"bridge probe / answer / layer {i}"].mean for i in range(5)]
    assert answer[-1] < probe[-1] - 0.2  # weaker where the answer is made
    assert validation.after.values == numbers["located by probing / validation"].values
