"""Probing: is a property linearly readable from a site? Train a small classifier and test it.

For every site (the residual stream at a layer, a head's output, ...) a logistic-regression
probe is trained on the site's activations to predict a label, on a seeded train split, and
scored by accuracy on the held-out split. High accuracy alone can mean the probe memorised
input types, so each site is also probed on a control task that assigns every input type a
random label (Hewitt & Liang): selectivity = task accuracy - control accuracy. All sites' probes
are fitted at once, as one batched L2-regularised logistic regression (the objective of
scikit-learn's `LogisticRegression(C)`: C * sum of log-losses + |W|^2 / 2, intercept free).

References:
- Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes".
- Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks" (selectivity).
- Belinkov 2022, "Probing Classifiers: Promises, Shortcomings, and Advances".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls import addressing as A
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate.scores import Scores, locate_result_over_seeds
from reference_impls.registry import Outcome, register_method


@dataclass(frozen=True)
class Probes:
    """Fitted probes, one per site: logits = x @ weight[s] + bias[s]."""

    weight: Float[Tensor, "site d classes"]  # classes == 1 for a binary (sigmoid) probe
    bias: Float[Tensor, "site classes"]

    def predict(self, x: Float[Tensor, "site n d"]) -> Int[Tensor, "site n"]:
        """Predicted class per site and example."""
        logits = torch.einsum("snd,sdk->snk", x.to(self.weight), self.weight) + self.bias[:, None]
        if logits.shape[-1] == 1:
            return (logits[..., 0] > 0).long()
        return logits.argmax(dim=-1)


def fit(
    x: Float[Tensor, "site n d"],
    y: Int[Tensor, " n"],
    n_classes: int,
    C: float = 1.0,
    max_iter: int = 500,
) -> Probes:
    """L2-regularised logistic regression for every site at once (LBFGS, float64).

    Binary labels fit one sigmoid weight vector per site, more classes a softmax (multinomial)
    probe: the same models scikit-learn fits with its default lbfgs solver.
    """
    x = x.double()
    n_sites, _, d = x.shape
    k = 1 if n_classes == 2 else n_classes
    weight = torch.zeros(n_sites, d, k, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_sites, k, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def objective() -> Tensor:
        optimizer.zero_grad()
        logits = torch.einsum("snd,sdk->snk", x, weight) + bias[:, None]  # (site, n, k)
        if k == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[..., 0], y.double().expand(n_sites, -1), reduction="sum"
            )
        else:
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, k), y.repeat(n_sites), reduction="sum"
            )
        # the sites' objectives are independent, so their sum is minimised site by site
        total = C * loss + 0.5 * (weight**2).sum()
        total.backward()
        return total

    with torch.enable_grad():
        optimizer.step(objective)
    return Probes(weight.detach(), bias.detach())


def control_labels(types: Int[Tensor, " n"], n_classes: int, seed: int = 0) -> Int[Tensor, " n"]:
    """Hewitt & Liang's control task: each input type gets a fixed random label.

    `types` says which input type each example is (e.g. its current token); a probe can only
    solve this task by memorising types, so accuracy on it measures the probe's capacity.
    """
    g = torch.Generator().manual_seed(seed)
    distinct, inverse = torch.unique(types, return_inverse=True)
    table = torch.randint(0, n_classes, (len(distinct),), generator=g)
    return table[inverse]


def features(
    model: Any, tokens: Int[Tensor, "batch pos"], sites: Sequence[A.Site]
) -> Float[Tensor, "site batch d"]:
    """Each site's activation per example, flattened; sites must fix a position.

    Narrower sites (a head's d_head next to the residual's d_model) are zero-padded to the widest:
    a zero feature gets weight exactly 0 under the L2 penalty, so each probe is unchanged.
    """
    for site in sites:
        if site.pos is None:
            raise ValueError(f"{site}: a probed site needs a position (site.at(pos))")
    hooks = sorted({s.hook_name for s in sites})
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=hooks)
    rows = [site.select(cache[site.hook_name]).flatten(1) for site in sites]
    width = max(r.shape[1] for r in rows)
    rows = [torch.nn.functional.pad(r, (0, width - r.shape[1])) for r in rows]
    return torch.stack(rows)  # (site, batch, d)


def probe(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    labels: Int[Tensor, " batch"],
    sites: Sequence[A.Site],
    types: Int[Tensor, " batch"] | None = None,
    test_fraction: float = 0.3,
    C: float = 1.0,
    seed: int = 0,
) -> Scores:
    """Held-out accuracy of a linear probe for `labels` at each site (higher: more readable).

    `types` (e.g. the token at the probed position) defines the control task; `meta` then has
    `control_accuracy` and `selectivity`. Also in `meta`: `train_accuracy`, the split sizes,
    the majority-class baseline accuracy on the test split, and (left out of JSON) the split
    and the fitted `Probes`.
    """
    x = features(model, tokens, sites)
    n_classes = int(labels.max()) + 1
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    n_test = max(1, round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    probes = fit(x[:, train], labels[train], n_classes, C)
    accuracy = (probes.predict(x[:, test]) == labels[test]).float().mean(dim=1)
    train_accuracy = (probes.predict(x[:, train]) == labels[train]).float().mean(dim=1)
    majority = float((labels[test] == labels[train].mode().values).float().mean())
    meta: dict[str, Any] = {
        "train_accuracy": train_accuracy,
        "n_train": len(train),
        "n_test": n_test,
        "majority_baseline": majority,
        "_split": (train, test),
        "_probes": probes,
    }
    if types is not None:
        control = control_labels(types, n_classes, seed)
        control_probes = fit(x[:, train], control[train], n_classes, C)
        control_accuracy = (control_probes.predict(x[:, test]) == control[test]).float().mean(dim=1)
        meta.update(control_accuracy=control_accuracy, selectivity=accuracy - control_accuracy)
    return Scores.flat(
        accuracy,
        sites,
        method="linear-probe",
        meaning="held-out accuracy of a logistic-regression probe trained on the site",
        **meta,
    )


# ---- `mi-atlas run probing` -------------------------------------------------------------------


PROMPTS = 200  # trigger and benign prompts each, per data seed


@register_method("probing", default_model="refusal-deep")
def demo(model_name: str) -> Outcome:
    """Probe "does the prompt hold a trigger word?" from the residual stream at every layer,
    over 5 data seeds; on a model with decoy directions, probe their facts too."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "direction" not in truth:
        raise _zoo.unsupported("probing", model_name, "a model with a planted residual direction")
    model, task = zoo.load(model_name), zoo.task(model_name)
    pos = truth["position"]
    sites = [A.resid(layer, pos=pos) for layer in range(model.cfg.n_layers)]
    sites.append(A.resid(model.cfg.n_layers - 1, pos=pos, where="post"))
    planted_site = A.resid(truth["layer"], pos=pos)
    # the stream carries the trigger from the planted layer on (the residual keeps d)
    planted = [s for s in sites if s.layer >= truth["layer"]]
    at = sites.index(planted_site)
    direction = torch.tensor(truth["direction"])
    decoys = {name: torch.tensor(v) for name, v in truth.get("decoy_directions", {}).items()}

    def cosine(weight: Tensor, v: Tensor) -> float:
        return float(torch.nn.functional.cosine_similarity(weight.float(), v, dim=0))

    def one(seed: int) -> dict[str, Any]:
        tokens = torch.cat(
            [
                task.prompts(True, PROMPTS, seed=100 + seed),
                task.prompts(False, PROMPTS, seed=200 + seed),
            ]
        )
        labels = torch.cat([torch.ones(PROMPTS), torch.zeros(PROMPTS)]).long()
        # control task: a random label per word just before the "?" (Hewitt & Liang)
        scores = probe(model, tokens, labels, sites, types=tokens[:, pos - 1], seed=seed)
        weight = scores.meta["_probes"].weight[at, :, 0]
        out: dict[str, Any] = {
            "scores": scores,
            "selectivity": Scores.flat(
                scores.meta["selectivity"], sites, method="probing",
                meaning="probe accuracy minus the accuracy of a probe for random word labels",
            ),
            "margin": scores.margin(planted),
            "probe_cosine_with_planted_direction": cosine(weight, direction),
        }  # fmt: skip
        for i, (name, v) in enumerate(decoys.items()):
            out[f"probe_cosine_with_decoy {name}"] = cosine(weight, v)
            # the decoy's own fact, probed at the planted site: readable, though never used
            facts = task.decoy_values(tokens)[:, i].long()
            read = probe(model, tokens, facts, [planted_site], seed=seed)
            out[f"accuracy of a probe for decoy {name} at {planted_site}"] = float(read.values[0])
        return out

    seeds = _zoo.per_seed(one)
    numbers = {k: v for k, v in seeds.items() if isinstance(v[0], float)}
    result = locate_result_over_seeds(
        seeds["scores"],
        setting=f"{PROMPTS} trigger and {PROMPTS} benign prompts per data seed, "
        f"{len(_zoo.SEEDS)} seeds; logistic probes on the residual stream at the '?' position",
        metric="held-out accuracy of 'the prompt holds a trigger word'",
        planted=planted,
        numbers=numbers,
        variants=[
            locate_result_over_seeds(
                seeds["selectivity"],
                setting="control task (Hewitt & Liang 2019): a random label per word before '?'",
                metric="accuracy minus control-task accuracy",
                planted=planted,
                variant="selectivity",
            )
        ],
        notes=[
            "planted: the residual stream at '?' from the card's layer on (the refusal "
            f"direction is written into {planted_site} and the residual keeps it)",
            *(
                ["decoy directions (same norm, orthogonal to d, never used by the model) carry "
                 "other facts about the prompt; a probe for such a fact reads it as well as the "
                 "trigger: readable is not used"]
                if decoys else []
            ),
        ],
    )  # fmt: skip
    cosines = numbers["probe_cosine_with_planted_direction"]
    recovered = result.recovery.recovered and min(seeds["margin"]) > 0.3 and min(cosines) > 0.5
    return Outcome(result, recovered=recovered, seeds=_zoo.SEEDS)
