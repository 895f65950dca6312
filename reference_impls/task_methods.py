"""Every locate method, and the steer methods a task supports, on any model from a task file.

`run_task(method, model, task)` is what `mi-atlas run METHOD --model PATH_OR_NAME --task FILE`
calls: it loads the model (`loading.load_model`), prepares the task (`task_run.prepare`), runs
one method through the same library functions the zoo demos use, and returns a typed
`mi_atlas.runs.Run` whose result names every site (or edge) in full with its score. Nothing here
knows a planted truth: a user's model has none, so `truth` and `recovery` stay empty.

What each method computes from a task (the clean and corrupted sides, the answer, the metric at
the task's position):

| method | computation |
|---|---|
| causal-attribution | denoising activation patching of every head output and MLP output at every position (score: fraction of the clean metric restored); variants: the residual stream, attribution patching |
| gradient-detection | integrated gradients from the corrupted to the clean activations (head and MLP outputs at every position); variant: gradient x activation |
| circuit-discovery | EAP-IG (edge attribution patching with integrated gradients, 5 steps) over every edge; variants: EAP, ACDC pruning on the task's metric; each with its faithfulness curve over circuit sizes (CPR, CMD) |
| magnitude-analysis | Cohen's d of every neuron and head output at the read position, clean against corrupted |
| probing | held-out accuracy of a linear probe separating clean from corrupted, at every layer's residual stream at the read position |
| vocab-projection | logit lens: log-probability of the answer decoded from every layer's residual stream |
| amplitude-manipulation | zero-ablate the heads that activation patching ranks highest, against as many random heads |
| vector-arithmetic | add the clean-minus-corrupted difference of means (middle layer, read position) to the corrupted run, against a random direction of the same norm |
| targeted-optimization | ROME's rank-one edit of the task's `fact`, with the task's prompts as the key statistics |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mi_atlas import runs
from mi_atlas import tasks as task_files
from reference_impls import addressing as A
from reference_impls import loading
from reference_impls.locate._batched_patch import DEFAULT_CHUNK, sweep_limits
from reference_impls.task_run import TaskBatch, fact_inputs, prepare

LOCATE = (
    "causal-attribution",
    "gradient-detection",
    "circuit-discovery",
    "magnitude-analysis",
    "probing",
    "vocab-projection",
)
STEER = ("amplitude-manipulation", "vector-arithmetic", "targeted-optimization")
METHODS = LOCATE + STEER


class TaskMethodError(ValueError):
    """A method that cannot run on this task or model; one sentence saying why."""


def check_method(method: str) -> None:
    """TaskMethodError, listing the valid ones, unless `method` runs from a task file."""
    if method not in METHODS:
        import difflib

        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TaskMethodError(
            f"{method!r} does not run from a task file{hint}; methods that do: {', '.join(METHODS)}"
        )


def run_task(
    method: str,
    model_name: str,
    task_path: str | Path,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = DEFAULT_CHUNK,
    max_memory: int | None = None,
    progress: bool = False,
    device_map: str | dict[str, Any] | None = None,
) -> runs.Run:
    """Run `method` on `model_name` (zoo, HF folder, hub id, TL-native folder) and a task file."""
    check_method(method)
    task = task_files.load(task_path)  # validate the file before loading any model
    model, ref = loading.load_model(model_name, device, dtype, device_map)
    batch = prepare(task, model, task_path).to(next(model.parameters()).device)
    with sweep_limits(max_memory, progress), torch.no_grad():
        result = _RUNNERS[method](model, batch, batch_size)
    return runs.Run(
        name=method,
        kind="method",
        method=method,
        model=ref,
        task=runs.TaskRef(
            name=task.name,
            description=task.description,
            metric=task.metric,
            n_prompts=batch.n,
            source=str(task_path),
        ),
        result=result,
        command=_command(method, model_name, task_path, device, dtype),
        source=f"reference_impls/task_methods.py ({method})",
        environment=_environment(device, dtype),
    )


def _command(method: str, model: str, task: str | Path, device: str, dtype: str) -> str:
    return f"mi-atlas run {method} --model {model} --task {task} --device {device} --dtype {dtype} --json"


def _environment(device: str, dtype: str) -> dict[str, str]:
    from reference_impls.registry import environment

    return environment(device, dtype=dtype)


# ---- building the documents -------------------------------------------------------------------


def _site_targets(sites: Sequence[A.Site]) -> list[runs.Site]:
    return [s.doc() for s in sites]


def _edge_target(edge: Any) -> runs.Edge:
    return runs.Edge(
        upstream=edge.upstream.doc(), downstream=edge.downstream.doc(), label=str(edge)
    )


def _locate(
    targets: Sequence[runs.Site | runs.Edge],
    values: torch.Tensor | Sequence[float],
    setting: str,
    metric: str,
    meaning: str,
    numbers: dict[str, float] | None = None,
    variant: str = "",
    variants: Sequence[runs.LocateResult] = (),
    faithfulness: runs.FaithfulnessCurve | None = None,
) -> runs.LocateResult:
    flat = [float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    scores = [runs.Estimate.of(v if v == v else 0.0) for v in flat]  # NaN (0/0) ranks as 0
    return runs.LocateResult(
        setting=setting,
        metric=metric,
        meaning=meaning,
        scores=runs.ranked(targets, scores),
        numbers={k: runs.Estimate.of(v) for k, v in (numbers or {}).items() if v == v},
        variant=variant,
        variants=list(variants),
        faithfulness=faithfulness,
    )


def _metric_text(batch: TaskBatch) -> str:
    return f"{batch.task.metric} at position {batch.position}"


def _unpatched(model: Any, batch: TaskBatch, metric: Callable) -> tuple[float, float]:
    clean = float(metric(model(batch.clean)).float().mean())
    corrupted = float(metric(model(batch.corrupted)).float().mean())
    return clean, corrupted


# ---- locate -----------------------------------------------------------------------------------


def causal_attribution(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate.causal_attribution import activation_patching, attribution_patching

    metric = batch.metric(model)
    n_pos = batch.n_pos
    sites = A.heads(model, "out", positions=n_pos) + A.layers(model, "mlp_out", positions=n_pos)
    scores = activation_patching(
        model, batch.clean, batch.corrupted, sites, metric, chunk_size=chunk
    )
    clean, corrupted = scores.meta["clean"], scores.meta["corrupted"]
    numbers = {"clean": clean, "corrupted": corrupted}
    resid = A.layers(model, "resid_pre", positions=n_pos)
    resid_scores = activation_patching(
        model, batch.clean, batch.corrupted, resid, metric, chunk_size=chunk
    )
    heads = A.heads(model, "out", positions=n_pos)
    with torch.enable_grad():
        approx = attribution_patching(model, batch.clean, batch.corrupted, heads, metric)
    span = clean - corrupted
    setting = "denoising: each clean activation patched into the corrupted run, one site at a time"
    restored = "fraction of the clean-minus-corrupted metric the site restores"
    variants = [
        _locate(
            _site_targets(resid),
            resid_scores.meta["recovered"],
            setting,
            _metric_text(batch),
            restored,
            numbers,
            variant="residual stream",
        ),
        _locate(
            _site_targets(heads),
            approx.values / span if span else approx.values,
            "attribution patching: (a_clean - a_corrupted) . d metric / d a on the corrupted run",
            _metric_text(batch),
            "first-order estimate of the fraction restored (one forward and one backward)",
            numbers,
            variant="attribution patching",
        ),
    ]
    return _locate(
        _site_targets(sites),
        scores.meta["recovered"],
        setting,
        _metric_text(batch),
        restored,
        numbers,
        variants=variants,
    )


def gradient_detection(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate.gradient_detection import (
        gradient_x_activation,
        integrated_gradients,
    )

    metric = batch.metric(model)
    n_pos = batch.n_pos
    sites = A.heads(model, "out", positions=n_pos) + A.layers(model, "mlp_out", positions=n_pos)
    with torch.enable_grad():
        ig = integrated_gradients(
            model, batch.clean, sites, metric, baseline=batch.corrupted, steps=16, chunk_size=chunk
        )
        gxa = gradient_x_activation(model, batch.clean, sites, metric)
    clean, corrupted = _unpatched(model, batch, metric)
    numbers = {"clean": clean, "corrupted": corrupted}
    variant = _locate(
        _site_targets(sites),
        gxa.values,
        "gradient x activation on the clean run",
        _metric_text(batch),
        "activation . d metric / d activation, summed over the site, mean over the prompts",
        numbers,
        variant="gradient x activation",
    )
    return _locate(
        _site_targets(sites),
        ig.values,
        "integrated gradients along the path from the corrupted to the clean activations (16 steps)",
        _metric_text(batch),
        "the site's share of metric(clean) - metric(corrupted), summed over its slice",
        numbers,
        variants=[variant],
    )


def circuit_discovery(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate import circuit_discovery as CD

    metric = batch.metric(model)
    clean, corrupted = _unpatched(model, batch, metric)
    with torch.enable_grad():
        ig = CD.eap_ig(model, batch.clean, batch.corrupted, metric)
        eap = CD.edge_attribution_patching(model, batch.clean, batch.corrupted, metric)
    # prune edges whose removal moves the metric by under 2% of the clean-corrupted gap
    threshold = 0.02 * abs(clean - corrupted)
    circuit = CD.acdc(model, batch.clean, batch.corrupted, threshold, batch.position, metric)
    edges = [_edge_target(e) for e in eap.sites]
    numbers = {"clean": clean, "corrupted": corrupted}
    kept = sum(circuit.meta["kept"])

    def curve(scores: Any) -> runs.FaithfulnessCurve | None:
        # faithfulness divides by metric(clean) - metric(corrupted): none where they are equal
        if clean == corrupted:
            return None
        sizes, values = CD.faithfulness_by_size(model, batch.clean, batch.corrupted, scores, metric)
        return runs.faithfulness_curve(sizes, [values], len(edges))

    acdc = _locate(
        edges,
        circuit.values,
        f"ACDC-style pruning on the task's metric, threshold {threshold:.4g} (2% of the gap); "
        f"{kept} of {len(edges)} edges kept",
        _metric_text(batch),
        "increase of |metric(circuit) - metric(full)| when the edge was cut from the circuit",
        numbers | {"threshold": threshold, "edges kept": kept, "damage": circuit.meta["damage"]},
        variant="acdc",
        faithfulness=curve(circuit),
    )
    first_order = _locate(
        edges,
        eap.values,
        "edge attribution patching: corrupted writer outputs into each reader, first order",
        _metric_text(batch),
        "|estimated metric change| from corrupting the edge alone, mean over the prompts",
        numbers,
        variant="eap",
        faithfulness=curve(eap),
    )
    return _locate(
        edges,
        ig.values,
        f"EAP-IG: edge attribution patching with gradients averaged over "
        f"{ig.meta['steps']} inputs from corrupted to clean",
        _metric_text(batch),
        ig.meaning,
        numbers,
        variants=[first_order, acdc],
        faithfulness=curve(ig),
    )


def magnitude_analysis(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate.magnitude_analysis import mean_difference

    if batch.n < 2:
        raise TaskMethodError(
            "magnitude-analysis needs at least 2 prompt pairs (it compares variances)"
        )
    pos = batch.position
    d = A.dims(model)
    sites = [A.neuron(layer, j, pos) for layer in range(d.n_layers) for j in range(d.d_mlp)]
    sites += A.heads(model, "out", positions=[pos])
    conditions = {"clean": batch.clean, "corrupted": batch.corrupted}
    scores = mean_difference(model, conditions, sites, target="clean")
    return _locate(
        _site_targets(sites),
        scores.values.abs(),
        f"activations at position {pos}, clean prompts against corrupted prompts",
        "activation magnitude (neuron value; head output norm)",
        "|Cohen's d| of the site's activation, clean against corrupted",
    )


def probing(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate.probing import probe

    if batch.n < 4:
        raise TaskMethodError(
            "probing needs at least 4 prompt pairs (a probe is trained and tested on held-out pairs)"
        )
    pos = batch.position
    sites = [A.resid(layer, pos) for layer in range(A.dims(model).n_layers)]
    sites.append(A.resid(A.dims(model).n_layers - 1, pos, where="post"))
    tokens = torch.cat([batch.clean, batch.corrupted])
    labels = torch.cat([torch.ones(batch.n), torch.zeros(batch.n)]).long()
    scores = probe(model, tokens, labels, sites)
    return _locate(
        _site_targets(sites),
        scores.values,
        f"a logistic-regression probe for clean vs corrupted at position {pos}",
        "held-out accuracy",
        "held-out accuracy of a linear probe telling clean from corrupted prompts at the site",
        {
            "majority baseline": scores.meta["majority_baseline"],
            "test examples": scores.meta["n_test"],
        },
    )


def vocab_projection(model: Any, batch: TaskBatch, chunk: int) -> runs.LocateResult:
    from reference_impls.locate.vocab_projection import logit_lens

    scores = logit_lens(model, batch.clean, batch.answer, batch.position)
    first = scores.meta["first_layer"]
    return _locate(
        _site_targets(scores.sites),
        scores.values,
        "logit lens on the clean prompts: each layer's residual stream decoded by the unembedding",
        f"log p(answer) at position {batch.position}",
        "log-probability of the answer when the stream is decoded at this layer",
        {"first layer with the answer on top": first} if first is not None else {},
    )


# ---- steer ------------------------------------------------------------------------------------


def _measure(name: str, before: float, after: float, control: float, data: str) -> runs.Measure:
    return runs.Measure(
        name=name,
        before=runs.Estimate.of(before),
        after=runs.Estimate.of(after),
        control=runs.Estimate.of(control),
        higher_is_better=True,
        data=data,
    )


def _random_heads(model: Any, exclude: Sequence[A.Site], k: int, seed: int = 0) -> list[A.Site]:
    others = [s for s in A.heads(model, "out") if s not in set(exclude)]
    order = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed)).tolist()
    return [others[i] for i in order[:k]]


def amplitude_manipulation(model: Any, batch: TaskBatch, chunk: int) -> runs.SteerResult:
    from reference_impls.interventions import ablate
    from reference_impls.locate.causal_attribution import activation_patching

    metric = batch.metric(model)
    heads = A.heads(model, "out")
    located = activation_patching(
        model, batch.clean, batch.corrupted, heads, metric, "noising", chunk
    )
    k = max(1, len(heads) // 4)  # the top quarter of the heads by how much noising them hurts
    chosen = [heads[i] for i in located.meta["recovered"].argsort(descending=True)[:k].tolist()]
    control = _random_heads(model, chosen, k)
    before = float(metric(model(batch.clean)).mean())
    with ablate(model, chosen):
        after = float(metric(model(batch.clean)).mean())
    with ablate(model, control):
        controlled = float(metric(model(batch.clean)).mean())
    return runs.SteerResult(
        setting=f"zero-ablate the {k} heads whose noising hurts the metric most (all positions)",
        targets=_site_targets(chosen),
        control=runs.Control(
            kind="random-sites",
            description=f"{k} other heads drawn at random (seed 0), zero-ablated",
            targets=_site_targets(control),
        ),
        measures=[
            _measure(_metric_text(batch), before, after, controlled, "the task's clean prompts")
        ],
        restored=True,  # hook contexts: removed on exit
    )


def vector_arithmetic(model: Any, batch: TaskBatch, chunk: int) -> runs.SteerResult:
    from reference_impls.interventions import add
    from reference_impls.steer.vector_arithmetic import mean_difference

    metric = batch.metric(model)
    layer = A.dims(model).n_layers // 2
    site = A.resid(layer, batch.position)
    vector = mean_difference(model, site, batch.clean, batch.corrupted)  # clean - corrupted
    random = torch.randn(vector.shape, generator=torch.Generator().manual_seed(0)).to(vector)
    random = random * vector.norm() / random.norm()
    before = float(metric(model(batch.corrupted)).mean())
    with add(model, site, vector):
        after = float(metric(model(batch.corrupted)).mean())
    with add(model, site, random):
        controlled = float(metric(model(batch.corrupted)).mean())
    return runs.SteerResult(
        setting=f"add mean(clean) - mean(corrupted) of {site} to the corrupted run",
        targets=[site.doc()],
        control=runs.Control(
            kind="random-direction",
            description="an isotropic random direction of the same norm, same site",
        ),
        measures=[
            _measure(_metric_text(batch), before, after, controlled, "the corrupted prompts")
        ],
        restored=True,
        numbers={"vector norm": runs.Estimate.of(float(vector.norm()))},
    )


def targeted_optimization(model: Any, batch: TaskBatch, chunk: int) -> runs.SteerResult:
    from reference_impls.steer.targeted_optimization import rome_edit

    if batch.task.fact is None:
        raise TaskMethodError(
            f"{batch.source}: targeted-optimization (ROME) edits a fact: add a `fact` to the task "
            "(prompt, subject_position, target)"
        )
    fact = fact_inputs(batch.task.fact, model, batch.source)
    device = next(model.parameters()).device
    prompt = fact.prompt.to(device)
    metric = batch.metric(model)
    layer = fact.layer if fact.layer is not None else _fact_layer(model, batch, fact, chunk)

    def target_prob() -> float:
        return float(torch.softmax(model(prompt)[0, -1].float(), -1)[fact.target])

    before, task_before = target_prob(), float(metric(model(batch.clean)).mean())
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    keys = torch.cat([batch.clean, batch.corrupted, prompt])
    with torch.enable_grad():
        result = rome_edit(
            model,
            layer,
            prompt,
            torch.tensor([fact.subject_position], device=device),
            torch.tensor([fact.target], device=device),
            keys,
        )
    with result.edit:
        after, task_after = target_prob(), float(metric(model(batch.clean)).mean())
    restored = all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    site = A.mlp_out(layer, fact.subject_position)
    located = "given in the task" if fact.layer is not None else "located by activation patching"
    return runs.SteerResult(
        setting=f"ROME rank-one edit of MLP {layer}'s W_out ({located}) keyed at position "
        f"{fact.subject_position}: the fact's prompt should answer token {fact.target}",
        targets=[site.doc()],
        control=runs.Control(kind="none", description="the task's own prompts measure collateral"),
        measures=[
            _measure("p(new target) on the fact's prompt", before, after, before, "the fact"),
            _measure(
                _metric_text(batch),
                task_before,
                task_after,
                task_before,
                "the task's clean prompts",
            ),
        ],
        restored=restored,
    )


def _fact_layer(model: Any, batch: TaskBatch, fact: Any, chunk: int) -> int:
    """The MLP whose output at the subject position restores most of the task's metric when
    patched from clean into corrupted (Meng et al.'s causal trace, on the task's own pairs)."""
    from reference_impls.locate.causal_attribution import activation_patching

    if fact.subject_position >= batch.n_pos:
        return A.dims(model).n_layers // 2
    sites = [A.mlp_out(layer, fact.subject_position) for layer in range(A.dims(model).n_layers)]
    scores = activation_patching(
        model, batch.clean, batch.corrupted, sites, batch.metric(model), chunk_size=chunk
    )
    return int(scores.meta["recovered"].argmax())


_RUNNERS: dict[str, Callable[[Any, TaskBatch, int], Any]] = {
    "causal-attribution": causal_attribution,
    "gradient-detection": gradient_detection,
    "circuit-discovery": circuit_discovery,
    "magnitude-analysis": magnitude_analysis,
    "probing": probing,
    "vocab-projection": vocab_projection,
    "amplitude-manipulation": amplitude_manipulation,
    "vector-arithmetic": vector_arithmetic,
    "targeted-optimization": targeted_optimization,
}


def scores_of(result: runs.LocateResult) -> dict[str, float]:
    """label -> score of a locate result (for tests and other libraries' checks)."""
    return {s.target.label: s.score.mean for s in result.scores}
