"""A runs folder for the site tests, made from the typed run contract (`mi_atlas.runs`).

Each document is built the way a reference implementation builds its own (scores ranked by
`runs.ranked`, recovery by `runs.recovery`), so the site is tested on what `mi-atlas run --all`
writes without running a model. The cases are chosen to exercise every view: a locate method
that finds its planted heads (heat-map), a circuit method that misses (edges; planted ranks
near the bottom, so the scoreboard must mark it bad), a method whose scores are mostly over
planted sites (ranked strip), a steer method against a random direction, a recipe over three
seeds against random sites, and a registered method whose run failed.
"""

from __future__ import annotations

import random
from pathlib import Path

from mi_atlas.runs import (
    INDEX_FILE,
    Control,
    Edge,
    Estimate,
    GroundTruth,
    IndexEntry,
    LocateResult,
    Measure,
    ModelRef,
    Planted,
    RecipeResult,
    Run,
    RunIndex,
    Site,
    SteerResult,
    TaskRef,
    ranked,
    recovery,
)

N_LAYERS, N_HEADS = 2, 4
INDUCTION = ModelRef(name="induction", architecture="gpt2", n_layers=N_LAYERS, n_heads=N_HEADS)
TASK = TaskRef(name="induction", description="repeat a random sequence", metric="logit diff")


def head(layer: int, h: int, pos: int | None = None) -> Site:
    at = f"@{pos}" if pos is not None else ""
    return Site(
        kind="head_out",
        hook=f"blocks.{layer}.attn.hook_z",
        object="attention-head",
        label=f"L{layer}H{h}{at}",
        layer=layer,
        head=h,
        pos=pos,
    )


def neuron(layer: int, index: int) -> Site:
    return Site(
        kind="neuron",
        hook=f"blocks.{layer}.mlp.hook_post",
        object="neuron",
        label=f"L{layer} #{index}",
        layer=layer,
        index=index,
    )


def resid(layer: int, pos: int) -> Site:
    return Site(
        kind="resid_pre",
        hook=f"blocks.{layer}.hook_resid_pre",
        object="residual-stream",
        label=f"resid_pre L{layer}@{pos}",
        layer=layer,
        pos=pos,
    )


def _locate(targets, values, planted: list[str], **kw) -> LocateResult:
    labels = [t.label for t in targets]
    return LocateResult(
        scores=ranked(targets, [Estimate.of(v) for v in values]),
        recovery=recovery([values], labels, planted),
        **kw,
    )


def heads_run() -> Run:
    """Planted L1H2 (induction) and L0H1 (previous token) score highest where the task reads
    them (position 6): the truth names the heads, the recovery the heads at that position."""
    rng = random.Random(0)
    targets = [
        head(layer, h, pos) for pos in (5, 6) for layer in range(N_LAYERS) for h in range(N_HEADS)
    ]
    truth = GroundTruth(
        description="an induction circuit: a previous-token head feeding an induction head",
        planted=[
            Planted(target=head(1, 2), role="induction head"),
            Planted(target=head(0, 1), role="previous-token head"),
        ],  # fmt: skip
    )
    top = {"L1H2@6": 0.9, "L0H1@6": 0.7}
    values = [top.get(t.label, rng.uniform(-0.2, 0.3)) for t in targets]
    result = _locate(targets, values, ["L1H2@6", "L0H1@6"], setting="denoising: clean into corrupted",
                     metric="logit difference recovered", meaning="effect of patching a head",
                     notes=["the heads read at position 6, where the repeated token is"])  # fmt: skip
    return _run(
        "causal-attribution",
        "method",
        result,
        truth,
        "reference_impls/locate/causal_attribution.py",
    )


def edges_run() -> Run:
    """A circuit method that misses: its planted edges rank near the bottom."""
    ups = [head(0, h) for h in range(N_HEADS)]
    downs = [head(1, h) for h in range(N_HEADS)]
    edges = [
        Edge(upstream=u, downstream=d, label=f"{u.label}->{d.label}") for u in ups for d in downs
    ]
    planted = [e for e in edges if e.label in ("L0H1->L1H2", "L0H3->L1H0")]
    truth = GroundTruth(
        description="two planted edges of the induction circuit",
        planted=[Planted(target=e, role="circuit edge") for e in planted],
    )
    values = [0.01 if e in planted else 0.5 + 0.01 * k for k, e in enumerate(edges)]
    result = _locate(edges, values, [e.label for e in planted], setting="edge attribution patching",
                     metric="logit difference", meaning="attribution of an edge")  # fmt: skip
    return _run(
        "circuit-discovery", "method", result, truth, "reference_impls/locate/circuit_discovery.py"
    )


def strip_run() -> Run:
    """Most scored sites are planted (language neurons): the figure must be a ranked strip."""
    targets = [neuron(layer, i) for layer in range(N_LAYERS) for i in range(8)]
    planted = [t for t in targets if t.index not in (0, 7)]
    truth = GroundTruth(
        description="language-specific neurons",
        planted=[
            Planted(target=t, role="English neuron" if t.index % 2 else "French neuron")
            for t in planted
        ],  # fmt: skip
    )
    values = [1.0 + 0.1 * t.index if t in planted else 0.2 for t in targets]
    result = _locate(targets, values, [t.label for t in planted], setting="firing rate per language",
                     metric="firing-rate gap", meaning="language specificity of a neuron")  # fmt: skip
    model = ModelRef(name="multilingual", n_layers=N_LAYERS, n_heads=N_HEADS)
    return _run("magnitude-analysis", "method", result, truth,
                "reference_impls/locate/magnitude_analysis.py", model=model)  # fmt: skip


def steer_run() -> Run:
    truth = GroundTruth(description="a refusal direction written at L1",
                        planted=[Planted(target=resid(1, 3), role="refusal site")])  # fmt: skip
    result = SteerResult(
        setting="add the difference of means at resid_pre L1",
        targets=[resid(1, 3)],
        control=Control(
            kind="random-direction", description="an isotropic random direction of the same norm"
        ),
        measures=[
            Measure(
                name="refusal rate",
                before=Estimate.of(0.9),
                after=Estimate.of(0.1),
                control=Estimate.of(0.85),
                higher_is_better=False,
                data="held-out",
            )
        ],  # fmt: skip
        restored=True,
    )
    model = ModelRef(name="refusal", n_layers=N_LAYERS, n_heads=N_HEADS)
    return _run("vector-arithmetic", "method", result, truth,
                "reference_impls/steer/vector_arithmetic.py", model=model)  # fmt: skip


def recipe_run() -> Run:
    truth = GroundTruth(description="a refusal direction written at L1",
                        planted=[Planted(target=head(1, 2), role="refusal head")])  # fmt: skip
    result = RecipeResult(
        locate="causal-attribution: causal_attribution",
        steer="amplitude-manipulation: ablate",
        metric=Measure(
            name="harmful compliance",
            before=Estimate.of([0.8, 0.82, 0.78]),
            after=Estimate.of([0.1, 0.12, 0.08]),
            control=Estimate.of([0.79, 0.8, 0.77]),
            higher_is_better=False,
        ),  # fmt: skip
        collateral=[
            Measure(
                name="harmless accuracy",
                before=Estimate.of([0.95, 0.96, 0.94]),
                after=Estimate.of([0.93, 0.95, 0.94]),
                control=Estimate.of([0.9, 0.92, 0.91]),
            )
        ],  # fmt: skip
        targets=[head(1, 2)],
        located=_locate(
            [head(1, h) for h in range(N_HEADS)],
            [0.1, 0.2, 0.9, 0.3],
            ["L1H2"],
            setting="ablate each head",
            metric="harmful compliance",
            meaning="drop in harmful compliance when the head is ablated",
        ),
        control=Control(
            kind="random-sites",
            description="one random head of the same layer",
            targets=[head(1, 0)],
        ),  # fmt: skip
        restored=True,
    )
    model = ModelRef(name="refusal", n_layers=N_LAYERS, n_heads=N_HEADS)
    return _run("safety-reliability", "recipe", result, truth,
                "reference_impls/recipes/safety_reliability.py", model=model, seeds=[0, 1, 2])  # fmt: skip


def _run(name, kind, result, truth, source, model=INDUCTION, seeds=(0,)) -> Run:
    return Run(
        name=name,
        kind=kind,
        method=name,
        model=model,
        task=TASK,
        result=result,
        truth=truth,
        recovered=getattr(getattr(result, "recovery", None), "recovered", None),
        command=f"mi-atlas run {name} --model {model.name} --json",
        source=source,
        seeds=list(seeds),
    )


def variant_run() -> Run:
    """A registered variant (`<taxonomy id>-<suffix>`): shown on its method's page."""
    run = heads_run()
    name = "causal-attribution-heads"
    return run.model_copy(update={"name": name, "command": f"mi-atlas run {name} --json"})


RUNS = (heads_run, edges_run, strip_run, steer_run, recipe_run, variant_run)
FAILED = "amplitude-manipulation"


def write_runs(folder: Path) -> dict[str, Run]:
    """Write every run and an index (plus one failed entry) into `folder`; return the runs."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = {make().name: make() for make in RUNS}
    entries = []
    for name, run in runs.items():
        (folder / f"{name}.json").write_text(run.model_dump_json(indent=2), encoding="utf-8")
        entries.append(IndexEntry(name=name, kind=run.kind, method=run.method, model=run.model.name,
                                  summary=f"The {name} reference implementation.", source=run.source,
                                  command=run.command, file=f"{name}.json"))  # fmt: skip
    entries.append(IndexEntry(name=FAILED, kind="method", method=FAILED, model="refusal",
                              source="reference_impls/steer/amplitude_manipulation.py",
                              command=f"mi-atlas run {FAILED} --json",
                              error="RuntimeError: the hook did not fire"))  # fmt: skip
    (folder / INDEX_FILE).write_text(
        RunIndex(runs=entries).model_dump_json(indent=2), encoding="utf-8"
    )
    return runs
