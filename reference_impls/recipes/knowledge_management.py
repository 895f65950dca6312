"""Knowledge management: find where a fact is stored, and rewrite that one fact in place.

Locate: causal tracing noises the subject's token embeddings and restores one MLP output at a
time; the (layer, position) that brings the answer back is where the fact is read out, which on
the zoo's fact model is an early MLP at the last subject token. Steer: a ROME rank-one edit of
that MLP's output matrix makes "<subject> lives in" complete to a new city. Improve: the edit
is scored as ROME scores it, by efficacy (the edited prompt gives the new city), generalisation
(another phrasing of the same fact, "<subject>" alone, gives it too) and specificity (the other
other facts are untouched), combined in their harmonic mean. The control is the very same ROME
procedure at a randomly chosen other (MLP layer, position) site.

References:
- Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME): causal tracing,
  the rank-one edit, and efficacy / paraphrase / neighbourhood scores with their harmonic mean.
- Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value Memories".
- Meng et al. 2023, "Mass-Editing Memory in a Transformer" (MEMIT).
"""

from __future__ import annotations

from typing import Any

import torch

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate.causal_attribution import causal_tracing
from reference_impls.locate.metrics import AnswerProb
from reference_impls.recipes.common import measured, over_seeds, random_sites, recipe_result
from reference_impls.registry import Outcome, register_recipe
from reference_impls.steer.targeted_optimization import rome_edit


def _harmonic(*values: float) -> float:
    return 0.0 if min(values) <= 0 else len(values) / sum(1.0 / v for v in values)


def edit_scores(model: Any, task: Any, subject_index: int, new_city: int) -> dict[str, float]:
    """Efficacy, generalisation, specificity of the model as it is now, for one edited fact.

    efficacy: the query form "<subject> lives in" predicts `new_city`; generalisation: the
    direct form "<subject>" predicts it at the last subject token; specificity: share of the
    other facts whose query form still predicts their own city. `score`: harmonic mean.
    """
    queries = task.query_tokens()  # (n_facts, query length)
    answers = task.answers()
    with torch.no_grad():
        query_pred = model(queries)[:, -1].argmax(-1)  # (n_facts,)
        direct = queries[subject_index : subject_index + 1, : task.LAST_SUBJECT_POSITION + 1]
        direct_pred = int(model(direct)[0, -1].argmax())
    others = torch.arange(len(answers)) != subject_index
    scores = {
        "efficacy": float(query_pred[subject_index] == new_city),
        "generalisation": float(direct_pred == new_city),
        "specificity": float((query_pred[others] == answers[others]).float().mean()),
    }
    scores["score"] = _harmonic(scores["efficacy"], scores["generalisation"], scores["specificity"])
    return scores


def locate_fact(
    model: Any, task: Any, subject_positions: list[int], n_prompts: int = 16, samples: int = 4
) -> Any:
    """Causal tracing over every (MLP layer, query position), noising the subject tokens."""
    queries = task.query_tokens()[:n_prompts]
    sites = [
        A.mlp_out(layer, pos)
        for layer in range(A.dims(model).n_layers)
        for pos in range(queries.shape[1])
    ]
    metric = AnswerProb(task.answers()[:n_prompts])
    return causal_tracing(model, queries, subject_positions, sites, metric, samples=samples)


def run(model_name: str = "facts", n_edits: int = 4, seed: int = 0) -> Outcome:
    """Trace the fact's location, ROME-edit `n_edits` facts one at a time, score each, undo each."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    truth = zoo.ground_truth(model_name)
    traced = locate_fact(model, task, truth["subject_positions"])
    located = traced.top(1)[0][0]  # the (layer, position) whose restoration recovers the most
    # control sites: not <bos> (the same in every prompt), and only sites whose edit can reach
    # the answer: in the last layer nothing reads an earlier position after its MLP
    last_layer, last_pos = A.dims(model).n_layers - 1, max(s.pos for s in traced.sites)
    candidates = [
        s for s in traced.sites if s.pos != 0 and (s.layer < last_layer or s.pos == last_pos)
    ]
    key_tokens = task.training_batch(torch.Generator().manual_seed(seed + 1), 512).tokens
    gen = torch.Generator().manual_seed(seed)
    subjects = torch.randperm(len(task.facts()), generator=gen)[:n_edits].tolist()
    probe = task.query_tokens()
    with torch.no_grad():
        reference = model(probe)

    rows = {"before": [], "after": [], "control": []}
    control_sites = []
    for i, subject in enumerate(subjects):
        old = int(task.answers()[subject])
        new = [c for c in task.answers().unique().tolist() if c != old][
            int(torch.randint(0, 7, (1,), generator=gen))
        ]
        prompt = task.query_tokens()[subject : subject + 1]
        rows["before"].append(edit_scores(model, task, subject, new))
        for name, site in (
            ("after", located),
            ("control", random_sites(candidates, [located], seed=seed + i)[0]),
        ):
            if name == "control":
                control_sites.append(site)
            result = rome_edit(
                model, site.layer, prompt, torch.tensor([site.pos]), torch.tensor([new]), key_tokens
            )
            rows[name].append(edit_scores(model, task, subject, new))
            result.edit.undo()
    with torch.no_grad():
        restored = torch.equal(model(probe), reference)

    def mean(name: str, key: str) -> float:
        return sum(r[key] for r in rows[name]) / len(rows[name])

    def measure(key: str, label: str) -> runs.Measure:
        return measured(label, mean("before", key), mean("after", key), mean("control", key))

    found = (located.layer, located.pos) == (truth.get("mlp_layer"), truth.get("position"))
    result = recipe_result(
        locate="causal-attribution: causal_tracing over (MLP layer, position), subject noised",
        steer="targeted-optimization: rome_edit (rank-one update of W_out)",
        metric=measure(
            "score", "edit score: harmonic mean of efficacy, generalisation, specificity"
        ),
        collateral=[measure("specificity", "specificity: other facts still recalled")],
        targets=[located],
        control=runs.Control(
            kind="random-sites",
            description="the same edit at a random other (MLP layer, position), one per edit",
            targets=[s.doc() for s in control_sites],
        ),
        restored=restored,
        details={"edited_subjects": [task.facts()[s]["subject"] for s in subjects]},
        other=[
            measure("efficacy", "efficacy"),
            measure("generalisation", "generalisation (direct form)"),
        ],
        located=traced.locate_result(
            setting="causal tracing: subject embeddings noised, clean MLP outputs restored",
            metric="probability of the city",
            planted=[A.mlp_out(truth["mlp_layer"], truth["position"])]
            if truth.get("mlp_layer") is not None
            else [],
        ),
    )
    return Outcome(result, recovered=found)


@register_recipe("knowledge-management", default_model="facts")
def knowledge_management(model_name: str) -> Outcome:
    """Causal tracing finds the fact's MLP; a ROME edit rewrites one fact, scored as ROME does."""
    return over_seeds(run, model_name)
