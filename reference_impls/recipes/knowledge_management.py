"""Knowledge management: find where a fact is stored, and rewrite that one fact in place.

Locate: causal tracing noises the subject's token embeddings and restores one MLP output at a
time; the (layer, position) that brings the answer back is where the fact is read out, which on
the zoo's `facts-deep` model is a middle MLP at the last subject token. Steer: ROME as Meng et
al. 2022 state it rewrites that MLP's output matrix so that "<subject> lives in" completes to a
new city: k* and v* from the fact after five random prefixes, the essence-drift KL term on
"<prefix> <subject>" and the norm clamp. Improve: the edit is scored as ROME scores it, by
efficacy (the edited prompt gives the new city), generalisation (a real paraphrase, other
prefix words and the other relation, gives it too) and specificity (the other facts are
untouched), combined in their harmonic mean. Beside it: the simplified closed form (one prompt,
no KL, no clamp) at the same site. Controls: the very same ROME at a random other (MLP layer,
position) site that can reach the answer, and at the located layer's MLP at the last position
(the strongest reachable one: it can say the new city, at a cost to other facts).

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
from reference_impls.recipes.common import (
    draw_seed,
    measured,
    over_seeds,
    random_sites,
    recipe_result,
)
from reference_impls.registry import Outcome, RegistryError, register_recipe
from reference_impls.steer.targeted_optimization import rome_edit, rome_edit_simplified


def _harmonic(*values: float) -> float:
    return 0.0 if min(values) <= 0 else len(values) / sum(1.0 / v for v in values)


N_PREFIXES = 5  # ROME's random-prefix contexts for k* and v*


def edit_scores(model: Any, task: Any, subject_index: int, new_city: int) -> dict[str, float]:
    """Efficacy, generalisation, specificity of the model as it is now, for one edited fact.

    efficacy: the query form ("so then <subject> lives in") predicts `new_city`;
    generalisation: a real paraphrase, other prefix words and the other relation ("also yes
    <subject> is from"), predicts it; specificity: share of the other facts whose query form
    still predicts their own city. `score`: the harmonic mean of the three.
    """
    queries, paraphrases, answers = task.query_tokens(), task.paraphrase_tokens(), task.answers()
    with torch.no_grad():
        query_pred = model(queries)[:, -1].argmax(-1)  # (n_facts,)
        para_pred = int(model(paraphrases[subject_index : subject_index + 1])[0, -1].argmax())
    others = torch.arange(len(answers)) != subject_index
    scores = {
        "efficacy": float(query_pred[subject_index] == new_city),
        "generalisation": float(para_pred == new_city),
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


def _fact_task(model_name: str) -> Any:
    task = zoo.task(model_name)
    needed = ("queries", "query_tokens", "paraphrase_tokens", "PREFIX", "SUBJECT_LAST")
    missing = [n for n in needed if not hasattr(task, n)]
    if missing:
        raise RegistryError(
            f"--model {model_name}: knowledge-management needs a fact task with random prefixes "
            f"and paraphrases, such as facts-deep (this task lacks {', '.join(missing)})"
        )
    return task


def run(model_name: str = "facts-deep", n_edits: int = 4, seed: int = 0) -> Outcome:
    """Trace the fact's location, ROME-edit `n_edits` facts one at a time, score each, undo each.

    Each edit is ROME as cited (random-prefix keys, the essence-drift KL term, the norm clamp);
    the simplified closed form (one prompt, no KL, no clamp) at the same site is reported
    beside it, and the control is the same ROME at a random other site that can reach the answer.
    """
    model, task = zoo.load(model_name), _fact_task(model_name)
    subject_last = task.SUBJECT_LAST
    traced = locate_fact(model, task, [subject_last - 1, subject_last])
    located = traced.top(1)[0][0]  # the (layer, position) whose restoration recovers the most
    # control sites: not <bos> (the same in every prompt), and only sites whose edit can reach
    # the answer: in the last layer nothing reads an earlier position after its MLP
    last_layer, last_pos = A.dims(model).n_layers - 1, max(s.pos for s in traced.sites)
    # and not an MLP frozen at zero output (ROME's norm clamp, relative to what it writes,
    # allows it no change)
    frozen = set(zoo.ground_truth(model_name).get("frozen_mlps", []))
    candidates = [
        s
        for s in traced.sites
        if s.pos != 0 and s.layer not in frozen and (s.layer < last_layer or s.pos == last_pos)
    ]
    key_tokens = task.training_batch(torch.Generator().manual_seed(seed + 1), 512).tokens
    gen = torch.Generator().manual_seed(seed)
    answers = task.answers()
    subjects = torch.randperm(len(answers), generator=gen)[:n_edits].tolist()
    cities = answers.unique().tolist()
    probe = task.query_tokens()
    with torch.no_grad():
        reference = model(probe)

    rows: dict[str, list[dict[str, float]]] = {
        k: [] for k in ("before", "after", "control", "simplified", "last")
    }
    control_sites = []
    for i, subject in enumerate(subjects):
        old = int(answers[subject])
        new = [c for c in cities if c != old][
            int(torch.randint(0, len(cities) - 1, (1,), generator=gen))
        ]
        prefix = torch.randint(0, len(task.PREFIX), (N_PREFIXES, 2), generator=gen)
        prompts = task.queries(
            torch.full((N_PREFIXES,), subject), prefix, torch.zeros(N_PREFIXES, dtype=torch.long)
        )[:, :-1]  # the fact after random prefixes, without its answer
        essence = prompts[:, : subject_last + 1]  # "<prefix> <subject>" -> what comes next
        target = torch.full((N_PREFIXES,), new)
        rows["before"].append(edit_scores(model, task, subject, new))
        control = random_sites(candidates, [located], seed=draw_seed(seed, i))[0]
        control_sites.append(control)
        # the strongest reachable control: the located layer's MLP at the last position, where
        # an edit reaches the answer directly but is shared by every subject's prompt
        last = A.mlp_out(located.layer, last_pos)
        sites = {"after": located, "control": control, "simplified": located, "last": last}
        for name, site in sites.items():
            at = torch.full((N_PREFIXES,), site.pos)
            if name == "simplified":  # the fact's own prompt alone; the essence only measured
                one = task.query_tokens()[subject : subject + 1]
                result = rome_edit_simplified(
                    model, site.layer, one, at[:1], target[:1], key_tokens, essence
                )
            else:
                result = rome_edit(
                    model, site.layer, prompts, at, target, key_tokens, essence, kl_subject_pos=at
                )
            rows[name].append({**edit_scores(model, task, subject, new), "drift": result.drift})
            result.edit.undo()
    with torch.no_grad():
        restored = torch.equal(model(probe), reference)

    def mean(name: str, key: str) -> float:
        return sum(r[key] for r in rows[name]) / len(rows[name])

    def measure(key: str, label: str) -> runs.Measure:
        return measured(label, mean("before", key), mean("after", key), mean("control", key))

    truth = zoo.ground_truth(model_name)
    store = truth.get("store") or {}
    planted = [A.mlp_out(layer, store["position"]) for layer in store.get("mlp_layers", [])]
    found = located in planted
    result = recipe_result(
        locate="causal-attribution: causal_tracing over (MLP layer, position), subject noised",
        steer="targeted-optimization: rome_edit (ROME: random-prefix keys, KL term, norm clamp)",
        metric=measure(
            "score", "edit score: harmonic mean of efficacy, generalisation, specificity"
        ),
        collateral=[measure("specificity", "specificity: other facts still recalled")],
        targets=[located],
        control=runs.Control(
            kind="other-sites",
            description="the same ROME edit at a random other (MLP layer, position) that can "
            "reach the answer (not <bos>, not an MLP frozen at zero, the last layer only at the "
            "last position), one per edit",
            targets=[s.doc() for s in control_sites],
        ),
        restored=restored,
        details={
            "edited_subjects": [str(s) for s in subjects],
            "essence drift (KL after '<prefix> <subject>')": {
                "ROME": mean("after", "drift"),
                "control": mean("control", "drift"),
                "simplified closed form": mean("simplified", "drift"),
            },
            "ROME at the located layer, last position (control)": {
                k: mean("last", k) for k in ("score", "efficacy", "generalisation", "specificity")
            },
            "simplified closed form (one prompt, no KL, no clamp)": {
                k: mean("simplified", k)
                for k in ("score", "efficacy", "generalisation", "specificity")
            },
        },
        other=[
            measure("efficacy", "efficacy"),
            measure("generalisation", "generalisation (paraphrase: other prefix and relation)"),
        ],
        located=traced.locate_result(
            setting="causal tracing: subject embeddings noised, clean MLP outputs restored",
            metric="probability of the city",
            planted=planted,
        ),
    )
    return Outcome(result, recovered=found)


@register_recipe("knowledge-management", default_model="facts-deep")
def knowledge_management(model_name: str) -> Outcome:
    """Causal tracing finds the fact's MLP; a ROME edit rewrites one fact, scored as ROME does."""
    return over_seeds(run, model_name)
