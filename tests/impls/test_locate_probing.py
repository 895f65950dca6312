"""Probing: batched logistic-regression probes match scikit-learn, and selectivity is honest.

Independent computation: scikit-learn's `LogisticRegression` (same C, lbfgs, fitted to
convergence) on exactly the same activations and split. Known truth on a random model: the
token at the probed position is in the embedding, so a label computed from it is readable at
`resid_pre 0` there, while a label that is independent of the input is not.
"""

from __future__ import annotations

import pytest
import torch
from locate_testing import random_tokens, tiny
from sklearn.linear_model import LogisticRegression

from reference_impls import addressing as A
from reference_impls.locate import probing as P

pytestmark = [pytest.mark.impls, pytest.mark.usefixtures("one_thread")]

N, POS, AT = 240, 5, 3


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    return tiny(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def tokens():
    return random_tokens(N, POS, seed=0)


def sites_of(model):
    return [A.resid(layer, pos=AT, where=w) for layer in range(2) for w in ("pre", "post")] + [
        A.head(1, h, pos=AT) for h in range(model.cfg.n_heads)
    ]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_probe_accuracy_equals_scikit_learn(model, tokens, n_classes):
    labels = (tokens[:, AT - 1] - 3) % n_classes  # the previous token's class
    sites = sites_of(model)
    scores = P.probe(model, tokens, labels, sites, C=0.5)
    train, test = scores.meta["_split"]
    x = P.features(model, tokens, sites)
    for i, site in enumerate(sites):
        width = site.select(model.run_with_cache(tokens[:2])[1][site.hook_name]).flatten(1).shape[1]
        reference = LogisticRegression(C=0.5, max_iter=10_000, tol=1e-10)
        reference.fit(x[i, train, :width].numpy(), labels[train].numpy())
        theirs = reference.score(x[i, test, :width].numpy(), labels[test].numpy())
        # equal up to one test example whose logit sits on the decision boundary
        assert abs(scores.values[i].item() - theirs) <= 1 / len(test) + 1e-6, site


def test_a_label_of_the_current_token_is_read_from_the_embedding(model, tokens):
    in_input = ((tokens[:, AT] - 3) % 2).long()  # current token's parity: in W_E[token]
    independent = torch.randint(0, 2, (N,), generator=torch.Generator().manual_seed(9))
    site = [A.resid(0, pos=AT)]
    # weakly regularised: a random model's embeddings are small (std 0.02)
    readable = P.probe(model, tokens, in_input, site, C=100).values[0].item()
    unreadable = P.probe(model, tokens, independent, site, C=100).values[0].item()
    assert readable >= 0.95
    assert unreadable <= 0.7  # chance is 0.5; 72 test examples


def test_control_task_gives_every_type_one_label():
    types = torch.tensor([5, 7, 5, 9, 7, 5, 9, 9])
    control = P.control_labels(types, n_classes=3, seed=1)
    for t in types.unique():
        assert control[types == t].unique().numel() == 1
    assert torch.equal(control, P.control_labels(types, n_classes=3, seed=1))


def test_selectivity_is_task_minus_control_accuracy(model, tokens):
    labels = ((tokens[:, AT] - 3) % 2).long()
    scores = P.probe(model, tokens, labels, sites_of(model), types=tokens[:, AT], C=100)
    torch.testing.assert_close(
        scores.meta["selectivity"], scores.values - scores.meta["control_accuracy"]
    )
    # the current token fixes both labels, so the control task is as readable as the real one
    # at the embedding: selectivity there is near zero even though accuracy is high
    assert scores.values[0] >= 0.95
    assert abs(scores.meta["selectivity"][0].item()) <= 0.1


def test_probes_need_a_position(model, tokens):
    with pytest.raises(ValueError, match="needs a position"):
        P.probe(model, tokens, torch.zeros(N, dtype=torch.long), [A.resid(0)])
