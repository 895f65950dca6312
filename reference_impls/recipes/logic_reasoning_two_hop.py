"""Logic and reasoning: back-patch the resolved bridge entity so that a two-hop query composes.

The patient is the zoo's `two-hop` model: it knows every one-hop fact (entity, relation ->
entity) and answers the two-hop queries `<bos> e r1 r2` (-> f_r2(f_r1(e))) it was trained on,
but almost none of the held-out ones, although it resolves their bridge entity f_r1(e) at the
first relation. Biran et al. 2024 ("Hopping Too Late: Exploring the Limitations of Large
Language Models on Multi-Hop Queries") explain such failures by the bridge being resolved too
late, after the layers that would make the second hop, and show it with *back-patching*: a
second forward pass in which a later layer's hidden state is written into an earlier layer.

Locate (probing): a linear probe for the bridge entity at every layer of both relation
positions (`two_hop.bridge_probe`: fitted on half of the first hops, scored on the others);
at each position the source is the layer where the probe reads the bridge best. Steer
(back-patching): in a second pass, that hidden state is written into the residual stream
entering an earlier layer at the same position; which target layer and position is chosen on
the validation compositions. Improve: exact-match two-hop accuracy on the test compositions.

Controls, each the same back-patch with the same validation choice among as many candidate
(source layer, target layer, position) triples as the method has: a data-derived one, the
triples with the largest change of the residual's norm between source and target (mean over
the training compositions; a magnitude statistic, not the probe), and random triples of the
same kind drawn among those the method does not consider. A third control keeps the
located triple but writes the source's mean state over the trained compositions instead of
each prompt's own (the site without its bridge). Collateral: two-hop accuracy on the
trained compositions and one-hop accuracy (the filler form, whose positions 2 and 3 hold an
entity and its relation) under the chosen patch.

A data seed draws the validation / test partition of the held-out compositions (by their
second hop: no test second hop is seen in validation), the probe's fitting half and the random
triples. The test split is read once per seed and arm, at the triple chosen on validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.addressing import Site
from reference_impls.interventions import patch, record
from reference_impls.locate.scores import Scores
from reference_impls.recipes.common import SEEDS, recipe_result
from reference_impls.registry import Outcome, register_recipe

Triple = tuple[int, int, int]  # (source layer, target layer, position); layer n = final residual
ARMS = {  # arm -> how the run document names it
    "located": "located by probing",
    "data": "largest norm change",
    "random": "random",
}


def source_site(model: Any, layer: int, pos: int) -> Site:
    """The residual stream entering `layer` at `pos`; layer n_layers is the final residual."""
    n = A.dims(model).n_layers
    return A.resid(layer, pos) if layer < n else A.resid(n - 1, pos, where="post")


def back_patched(
    model: Any, tokens: Int[Tensor, "n pos"], triple: Triple, value: Tensor | None = None
) -> Tensor:
    """Logits of the second pass: the first pass's (source, pos) state written into (target, pos).

    Biran et al.'s back-patching: the same prompt is run twice; the hidden state a later layer
    produced in the first pass replaces, in the second, the input of an earlier layer. With
    `value` ([d_model]) that vector is written instead (the mean-state control).
    """
    source, target, pos = triple
    if value is None:
        site = source_site(model, source, pos)
        with torch.no_grad(), record(model, site) as store:
            model(tokens)
        value = store[site]
    with torch.no_grad(), patch(model, A.resid(target, pos), value, identity_ok=True):
        return model(tokens)  # [n, pos, vocab]


def accuracy(
    model: Any, task: Any, comps: Tensor, triple: Triple | None, value: Tensor | None = None
) -> float:
    """Exact-match two-hop accuracy on `comps`, back-patched by `triple` (None: as it is)."""
    tokens = task.encode(comps)
    if triple is None:
        right = task.predicted(model, tokens) == task.answer(comps)
    else:
        top = back_patched(model, tokens, triple, value)[:, -1].argmax(-1)
        right = top == task.ENTITY_IDS[task.answer(comps)]
    return float(right.float().mean())


def one_hop(model: Any, task: Any, triple: Triple | None) -> float:
    """One-hop accuracy on the filler form `<bos> . e r`, back-patched by `triple`."""
    tokens, answers = task.one_hop_prompts(True)
    out = task.logits(model, tokens) if triple is None else back_patched(model, tokens, triple)
    return float((out[:, -1].argmax(-1) == task.ENTITY_IDS[answers]).float().mean())


def norm_change(model: Any, task: Any, triple: Triple) -> float:
    """Mean | |h_source| - |h_target| | at the position over the training compositions."""
    source, target, pos = triple
    a, b = source_site(model, source, pos), A.resid(target, pos)
    with torch.no_grad(), record(model, [a, b]) as store:
        model(task.encode(task.pool("train")))
    return float((store[a].norm(dim=-1) - store[b].norm(dim=-1)).abs().mean())


def mean_state(model: Any, task: Any, triple: Triple) -> Tensor:
    """The source site's mean hidden state over the training compositions ([d_model])."""
    site = source_site(model, triple[0], triple[2])
    with torch.no_grad(), record(model, site) as store:
        model(task.encode(task.pool("train")))
    return store[site].mean(0)


def one_seed(model: Any, task: Any, seed: int) -> dict[str, Any]:
    """Locate the sources, build each arm's candidates, choose on validation, read test once."""
    n = A.dims(model).n_layers
    positions = (task.BRIDGE_POS, task.ANSWER_POS)
    validation, test = task.validation_test(seed)
    probe = task.bridge_probe(model, seed=seed)  # per position: accuracy at layers 0..n
    by_pos = dict(zip(positions, probe.values(), strict=True))
    sources = {
        pos: max(range(n + 1), key=lambda layer: (acc[layer], -layer))
        for pos, acc in by_pos.items()
    }
    located = [(sources[pos], t, pos) for pos in positions for t in range(sources[pos])]
    every = [(s, t, pos) for pos in positions for s in range(1, n + 1) for t in range(s)]
    budget = len(located)
    others = [t for t in every if t not in located]
    gen = torch.Generator().manual_seed(seed)
    random_arm = [others[i] for i in torch.randperm(len(others), generator=gen)[:budget].tolist()]
    norms = {t: norm_change(model, task, t) for t in every}
    data_arm = sorted(every, key=lambda t: -norms[t])[:budget]
    arms: dict[str, dict[str, Any]] = {}
    for arm, candidates in (("located", located), ("data", data_arm), ("random", random_arm)):
        val = {t: accuracy(model, task, validation, t) for t in candidates}
        chosen = max(candidates, key=lambda t: (val[t], t[1] - t[0]))  # ties: the shorter jump
        arms[arm] = {
            "triple": chosen,
            "candidates": candidates,
            "validation": val[chosen],
            "test": accuracy(model, task, test, chosen),  # the one read of test
            "trained": accuracy(model, task, task.pool("train"), chosen),
            "one-hop": one_hop(model, task, chosen),
        }
    # the bridge's content, not the act of patching: the located triple with every prompt's
    # own state replaced by the mean state of the training compositions
    located_triple = arms["located"]["triple"]
    arms["located"]["mean-state test"] = accuracy(
        model, task, test, located_triple, mean_state(model, task, located_triple)
    )
    before = {
        "validation": accuracy(model, task, validation, None),
        "test": accuracy(model, task, test, None),
        "trained": accuracy(model, task, task.pool("train"), None),
        "one-hop": one_hop(model, task, None),
    }
    return {"probe": by_pos, "sources": sources, "arms": arms, "before": before}


def label(triple: Triple, n_layers: int) -> str:
    """'final -> L0 at position 2'."""
    source, target, pos = triple
    name = "final" if source == n_layers else f"L{source}"
    return f"{name} -> L{target} at position {pos}"


def run(model_name: str = "two-hop", seeds: Sequence[int] = SEEDS) -> Outcome:
    """The recipe over data seeds: before / located / norm-change / random back-patches."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    n = A.dims(model).n_layers
    probe_tokens = task.encode(task.pool("validation"))
    with torch.no_grad():
        reference = model(probe_tokens)
    per_seed = [one_seed(model, task, seed) for seed in seeds]
    with torch.no_grad():
        restored = torch.equal(model(probe_tokens), reference)

    def est(arm: str, name: str) -> runs.Estimate:
        return runs.Estimate.of([s["arms"][arm][name] for s in per_seed])

    def before(name: str) -> runs.Estimate:
        return runs.Estimate.of([s["before"][name] for s in per_seed])

    def chosen(arm: str) -> str:
        return "; ".join(label(s["arms"][arm]["triple"], n) for s in per_seed)

    def against(
        name: str, what: str, control: str, data: str, control_what: str = ""
    ) -> runs.Measure:
        """The located back-patch on `what` against arm `control` (on `control_what`, or `what`)."""
        return runs.Measure(
            name=name,
            before=before(what),
            after=est("located", what),
            control=est(control, control_what or what),
            data=data,
        )

    headline = against(
        "test two-hop accuracy (exact match, held-out compositions)",
        "test",
        "data",
        "held-out test compositions (in no loss, in no choice); back-patch chosen per "
        f"seed on validation: located {chosen('located')}; norm-change control {chosen('data')}",
    )
    collateral = [
        against(
            "two-hop accuracy on trained compositions",
            "trained",
            "data",
            "the 192 compositions the model was trained on, back-patched the same way",
        ),
        against(
            "one-hop accuracy (filler form)",
            "one-hop",
            "data",
            "all 96 one-hop facts as `<bos> . e r`, back-patched the same way",
        ),
    ]
    random_measure = against(
        "test two-hop accuracy against random back-patches",
        "test",
        "random",
        "held-out test compositions; control: as many random (source, target, position) "
        f"triples as the method considers, the best on validation: {chosen('random')}",
    )
    mean_measure = against(
        "test two-hop accuracy against the mean state patched the same way",
        "test",
        "located",
        "held-out test compositions; control: the located back-patch with the source "
        "state replaced by its mean over the trained compositions (the same site, no bridge)",
        control_what="mean-state test",
    )
    validation = against(
        "validation two-hop accuracy at the chosen back-patch (the selection criterion)",
        "validation",
        "data",
        "validation compositions (their second hops never in test)",
    )
    numbers: dict[str, Any] = {}
    for pos_name, pos in (("first relation", task.BRIDGE_POS), ("answer", task.ANSWER_POS)):
        numbers[f"source layer / {pos_name}"] = runs.Estimate.of(
            [s["sources"][pos] for s in per_seed]
        )
        for layer in range(n + 1):
            numbers[f"bridge probe / {pos_name} / layer {layer}"] = runs.Estimate.of(
                [s["probe"][pos][layer] for s in per_seed]
            )
    for arm, name in ARMS.items():
        for what in ("validation", "test", "trained", "one-hop"):
            numbers[f"{name} / {what}"] = est(arm, what)
    sites = [source_site(model, layer, task.BRIDGE_POS) for layer in range(n + 1)]
    scores = Scores.flat(
        torch.tensor(
            [
                sum(s["probe"][task.BRIDGE_POS][i] for s in per_seed) / len(seeds)
                for i in range(n + 1)
            ]
        ),
        sites,
        method="linear-probe",
        meaning="accuracy of a linear probe for the bridge entity on first hops it was not "
        "fitted on, at the first relation, mean over seeds",
    )
    first = per_seed[0]["arms"]
    s0, t0, p0 = first["located"]["triple"]
    d0, dt0, dp0 = first["data"]["triple"]
    result = recipe_result(
        locate="probing: a linear probe for the bridge entity per layer at both relation "
        "positions; the source is the layer where it reads best",
        steer="back-patching (Biran et al. 2024): the source's hidden state written into an "
        "earlier layer at the same position in a second pass; target and position chosen on "
        "validation",
        metric=headline,
        collateral=collateral,
        targets=[A.resid(t0, p0)],
        control=runs.Control(
            kind="data-derived-sites",
            description="the same back-patch between the (source, target, position) triples "
            "with the largest change of the residual's norm (a magnitude statistic, not the "
            "probe), as many candidates as the method, chosen on validation by the same rule",
            targets=[A.resid(dt0, dp0).doc()],
        ),
        restored=restored,
        details={
            "selection": "per seed and arm, the candidate triple with the highest validation "
            "two-hop accuracy (ties to the shorter jump); the test split is read only there",
            "seed 0 located back-patch": label((s0, t0, p0), n),
            "seed 0 norm-change back-patch": label((d0, dt0, dp0), n),
            **numbers,
        },
        other=[random_measure, mean_measure, validation],
        located=scores.locate_result(
            setting="all 384 two-hop prompts; probe fitted on half of the 96 first hops "
            "(entity, r1), scored on the other half, per seed",
            metric="probe accuracy for the bridge entity f_r1(e) at the first relation",
        ),
    )
    return Outcome(result, recovered=None, seeds=tuple(seeds))


@register_recipe("logic-reasoning-two-hop", default_model="two-hop", variant_of="logic-reasoning")
def logic_reasoning_two_hop(model_name: str) -> Outcome:
    """Back-patch the probed bridge entity into an earlier layer vs norm-change / random patches."""
    return run(model_name)
