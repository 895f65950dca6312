"""The run document: what `mi-atlas run` prints, `mi-atlas run --all` writes and the site renders.

A run is one reference implementation applied to one model and one task. Methods and recipes
build these typed objects (`reference_impls` imports this module; this module imports neither
torch nor `reference_impls`), the registry serialises them once, and the site reads the JSON
back with `Run.model_validate_json` and renders it without knowing anything about models:
every site carries its own label, hook name and taxonomy object, every planted site its role,
and every score against the planted truth (AUROC, ranks, precision at the planted count) is
computed by the producer and stored here. `schema/run.schema.json` is generated from `Run`
(`python scripts/gen_schema.py`) and kept current by a test.

Shape, with the field that picks the result type (`result.type`):

    Run
    ├── name, kind, method, model (ModelRef), task (TaskRef), seeds, environment
    ├── truth: GroundTruth | None        what was planted: sites and edges with their roles
    └── result: one of
        ├── LocateResult  type="locate"   scores over sites or edges, ranked; recovery vs truth;
        │                                  for circuits, the faithfulness curve
        ├── SteerResult   type="steer"    what was steered, measures before/after/control
        ├── RecipeResult  type="recipe"   locate -> steer -> headline metric and collateral,
        │                                  each before / after / control, mean ± std over seeds
        └── CheckResult   type="check"    named checks of a model's planted mechanism

Numbers aggregated over seeds are `Estimate`s (mean, std, n, values); a single run is an
Estimate with n = 1 and std = 0, so readers never special-case it.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

SiteKind = Literal[
    "embed",
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "head_out",
    "q",
    "k",
    "v",
    "pattern",
    "neuron",
    "sae_feature",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- numbers -------------------------------------------------------------------------------


class Estimate(_Doc):
    """A number measured once or over several seeds: mean ± std (sample std; 0 for n = 1)."""

    mean: float
    std: float = 0.0
    n: int = Field(1, ge=1)
    values: list[float] = Field(default_factory=list, description="one value per seed, in order")

    @classmethod
    def of(cls, values: float | Iterable[float]) -> Estimate:
        """The estimate of one value or of one value per seed."""
        vals = [float(values)] if isinstance(values, int | float) else [float(v) for v in values]
        if not vals:
            raise ValueError("an estimate needs at least one value")
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return cls(mean=statistics.fmean(vals), std=std, n=len(vals), values=vals)

    def __str__(self) -> str:
        return f"{self.mean:.3g}" if self.n == 1 else f"{self.mean:.3g} ± {self.std:.2g}"


# -- sites ---------------------------------------------------------------------------------


class Site(_Doc):
    """One interpretable object of a model, named in full so any library can find it.

    `hook` is the TransformerLens hook name whose activation holds it; `layer`, `head`,
    `index` (neuron or SAE feature number) and `pos` (token position; None = every position)
    say which slice. `object` is the taxonomy object id; `label` a short name for tables
    (`L1H2@5`, `L0 #17`, `resid_pre L2@3`).
    """

    type: Literal["site"] = "site"
    kind: SiteKind
    hook: str
    object: str
    label: str
    layer: int | None = None
    head: int | None = None
    index: int | None = None
    pos: int | None = None


class Edge(_Doc):
    """A computational-graph edge from a writer to a reader (circuit discovery)."""

    type: Literal["edge"] = "edge"
    upstream: Site
    downstream: Site
    label: str


Target = Annotated[Site | Edge, Field(discriminator="type")]


class Scored(_Doc):
    """One site or edge with its score (mean over seeds) and its 1-based rank (1 = highest)."""

    target: Target
    score: Estimate
    rank: int = Field(ge=1)


# -- ground truth --------------------------------------------------------------------------


class Planted(_Doc):
    """One planted component and its role in the mechanism ("induction head", ...)."""

    target: Target
    role: str
    confirmed_by: str = Field("", description="how this component alone was confirmed")


class GroundTruth(_Doc):
    """What the model's training planted, as stated by its zoo task (never by a method)."""

    description: str
    planted: list[Planted]
    notes: list[str] = Field(default_factory=list, description="backups, decoys, caveats")

    def role_of(self, label: str) -> str | None:
        """The role of the planted component with this label, or None."""
        return next((p.role for p in self.planted if p.target.label == label), None)

    def role_for(self, target: Site | Edge) -> str | None:
        """The role of the planted component `target` is, or is at a position of, or None.

        A planted site without a position (an induction head) matches that site at any
        position (the head at the position where a demo measured it); edges match by label.
        """
        for p in self.planted:
            planted = p.target
            if isinstance(planted, Edge) or isinstance(target, Edge):
                if planted.label == target.label:
                    return p.role
                continue
            same = (planted.kind, planted.hook, planted.layer, planted.head, planted.index) == (
                target.kind,
                target.hook,
                target.layer,
                target.head,
                target.index,
            )
            if same and planted.pos in (None, target.pos):
                return p.role
        return None


# -- scores against the truth ---------------------------------------------------------------


class Recovery(_Doc):
    """How a ranking scores against the planted components, as mean ± std over seeds.

    `auroc`: ROC AUC of the scores against "is planted" (1: every planted component outscores
    every other; 0.5: chance). `precision_at_k`: the share of planted components among the top
    k, k = the planted count. `ranks`: each planted component's 1-based rank (mean over seeds).
    `recovered`: the top k are exactly the planted ones in every seed.
    """

    auroc: Estimate | None
    precision_at_k: Estimate
    k: int
    ranks: dict[str, Estimate]
    recovered: bool
    planted_scored: int = Field(description="planted components that were among the scored ones")


class FaithfulnessCurve(_Doc):
    """Faithfulness of the top-n circuit for growing n (MIB, Mueller et al. 2025).

    `faithfulness[i]` = (m(circuit of sizes[i]) - m(empty)) / (m(full) - m(empty)). `cpr` is
    the area under that curve over the normalised sizes (higher is better), `cmd` the area
    between the curve and 1 (lower is better).
    """

    sizes: list[int]
    faithfulness: list[Estimate]
    cpr: Estimate
    cmd: Estimate


class Measure(_Doc):
    """One metric before steering, after steering the located sites, and under the control."""

    name: str
    before: Estimate
    after: Estimate
    control: Estimate
    higher_is_better: bool = True
    data: str = Field("", description="which prompts it was measured on, e.g. 'held-out'")

    @property
    def gain(self) -> float:
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * (self.after.mean - self.before.mean)

    @property
    def control_gain(self) -> float:
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * (self.control.mean - self.before.mean)

    @property
    def beats_control(self) -> bool:
        return self.gain > self.control_gain


ControlKind = Literal[
    "random-sites",  # same number of other sites, drawn at random
    "other-sites",  # the same steer at as many other sites, named (e.g. another layer)
    "random-direction",  # an isotropic random direction of the same norm
    "data-derived-direction",  # another difference of means, a principal component, ...
    "data-derived-sites",  # sites chosen by a data statistic that is not the method
    "other-method",  # the same steer on what a simpler method chose
    "none",
]


class Control(_Doc):
    """The control the steer was compared against, described so a caption can say it."""

    kind: ControlKind
    description: str
    targets: list[Target] = Field(default_factory=list)


# -- results -------------------------------------------------------------------------------


class Check(_Doc):
    """One named pass/fail check, with the value it was decided on."""

    name: str
    passed: bool
    value: float | None = None
    detail: str = ""


NOTES = Field(default_factory=list, description="facts that are not numbers, one line each")


class LocateResult(_Doc):
    """Scores over sites or edges, ranked (higher = more implicated)."""

    type: Literal["locate"] = "locate"
    setting: str = Field(description="what was compared, e.g. 'denoising: clean into corrupted'")
    metric: str = Field(description="the task metric the scores are read from")
    meaning: str = Field(description="one sentence: what a score is")
    scores: list[Scored]
    recovery: Recovery | None = None
    faithfulness: FaithfulnessCurve | None = None
    numbers: dict[str, Estimate] = Field(default_factory=dict, description="other named numbers")
    variants: list[LocateResult] = Field(
        default_factory=list, description="simplified or alternative variants, beside the headline"
    )
    variant: str = Field("", description="this result's variant name ('' for the headline)")
    checks: list[Check] = Field(
        default_factory=list, description="structural checks (e.g. of a circuit's edges)"
    )
    notes: list[str] = NOTES

    @model_validator(mode="after")
    def _ranked(self) -> LocateResult:
        ranks = [s.rank for s in self.scores]
        if ranks != sorted(ranks):
            raise ValueError("scores must be listed by rank, highest first")
        return self


class SteerResult(_Doc):
    """A steer applied to chosen sites or a direction, measured against a control."""

    type: Literal["steer"] = "steer"
    setting: str
    targets: list[Target] = Field(default_factory=list)
    control: Control
    measures: list[Measure]
    restored: bool = Field(description="the model is bit-for-bit the original afterwards")
    numbers: dict[str, Estimate] = Field(default_factory=dict)
    notes: list[str] = NOTES


class RecipeResult(_Doc):
    """Locate -> steer -> improvement: the headline metric, collateral, sites and control."""

    type: Literal["recipe"] = "recipe"
    locate: str = Field(description="'taxonomy-id: function' of the locate step")
    steer: str = Field(description="'taxonomy-id: function' of the steer step")
    metric: Measure
    collateral: list[Measure] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    control: Control
    restored: bool
    numbers: dict[str, Estimate] = Field(default_factory=dict)
    other: list[Measure] = Field(
        default_factory=list, description="further effects, neither headline nor collateral"
    )
    located: LocateResult | None = Field(None, description="the locate step's ranking")
    notes: list[str] = NOTES


class CheckResult(_Doc):
    """Named checks of a model's planted mechanism, and the numbers they were measured from."""

    type: Literal["check"] = "check"
    checks: list[Check]
    numbers: dict[str, Estimate] = Field(default_factory=dict)


Result = Annotated[
    LocateResult | SteerResult | RecipeResult | CheckResult, Field(discriminator="type")
]


# -- the document --------------------------------------------------------------------------


class ModelRef(_Doc):
    """Which model: a zoo name, a local checkpoint, a hub id or a TransformerLens-native folder."""

    name: str
    source: Literal["zoo", "hf-dir", "hub", "tl-native"] = "zoo"
    architecture: str = ""
    n_layers: int | None = None
    n_heads: int | None = None
    d_model: int | None = None


class TaskRef(_Doc):
    """Which task: a zoo task or a task file, with its metric and size."""

    name: str
    description: str = ""
    metric: str = ""
    n_prompts: int | None = None
    source: str = Field("", description="zoo task module or task file path")


class Run(_Doc):
    """One `mi-atlas run` document."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(description="registered name, e.g. 'causal-attribution'")
    kind: Literal["method", "recipe", "check"]
    method: str = Field(description="taxonomy id of the method or sub-goal")
    model: ModelRef
    task: TaskRef
    result: Result
    truth: GroundTruth | None = None
    recovered: bool | None = Field(
        None, description="whether the run recovered the planted truth by its own criterion"
    )
    command: str = Field("", description="the command that reproduces this run")
    source: str = Field("", description="repository path of the implementing module")
    seeds: list[int] = Field(default_factory=lambda: [0])
    environment: dict[str, str] = Field(
        default_factory=dict, description="library versions, device"
    )


# -- the folder of runs ----------------------------------------------------------------------

INDEX_FILE = "index.json"


class IndexEntry(_Doc):
    """One registered runnable in `DIR/index.json`: where its document is, or why there is none."""

    name: str
    kind: Literal["method", "recipe", "check"]
    method: str = Field(description="taxonomy id of the method or sub-goal it belongs to")
    model: str | None = Field(None, description="the model `mi-atlas run --all` ran it on")
    summary: str = Field("", description="first line of its docstring")
    source: str = Field("", description="repository path of the implementing module")
    command: str = Field(description="the command that writes (or prints) its document")
    file: str | None = Field(None, description="its run document, relative to the folder")
    error: str | None = Field(None, description="why no document was written (one sentence)")
    seconds: float | None = Field(None, description="how long computing the run took")
    key: str = Field("", description="hash of everything the run depends on (its cache key)")

    @model_validator(mode="after")
    def _file_or_error(self) -> IndexEntry:
        if (self.file is None) == (self.error is None):
            raise ValueError("an index entry has either a file or an error")
        return self


class ZooModel(_Doc):
    """A zoo model as the index describes it: its task, the card's metrics, its planted truth."""

    model: ModelRef
    task: TaskRef
    metrics: dict[str, float] = Field(default_factory=dict)
    truth: GroundTruth | None = None


class RunIndex(_Doc):
    """`DIR/index.json`, written by `mi-atlas run --all --out DIR` next to the run documents."""

    schema_version: Literal[1] = SCHEMA_VERSION
    runs: list[IndexEntry]
    import_errors: dict[str, str] = Field(
        default_factory=dict, description="module -> why it failed to import (nothing registered)"
    )
    models: list[ZooModel] = Field(default_factory=list, description="the zoo, with its truths")
    key: str = Field("", description="hash of the source and cards the list of runs depends on")
    environment: dict[str, str] = Field(default_factory=dict, description="library versions")

    def entry(self, name: str) -> IndexEntry | None:
        return next((e for e in self.runs if e.name == name), None)


# -- scoring a ranking against planted components -------------------------------------------


def ranked(targets: Sequence[Site | Edge], scores: Sequence[Estimate]) -> list[Scored]:
    """Targets with their scores, highest mean first (ties keep input order), ranks from 1."""
    if len(targets) != len(scores):
        raise ValueError(f"{len(targets)} targets but {len(scores)} scores")
    order = sorted(range(len(targets)), key=lambda i: -scores[i].mean)
    return [Scored(target=targets[i], score=scores[i], rank=r + 1) for r, i in enumerate(order)]


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """ROC AUC of `scores` for the `positive` labels (ties count one half); None if one class."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    if not pos or not neg:
        return None
    # Mann-Whitney U over sorted negatives: O((P + N) log N)
    neg_sorted = sorted(neg)
    total = 0.0
    for s in pos:
        lo = bisect.bisect_left(neg_sorted, s)
        hi = bisect.bisect_right(neg_sorted, s)
        total += lo + 0.5 * (hi - lo)
    return total / (len(pos) * len(neg))


def recovery(
    per_seed: Sequence[Sequence[float]], labels: Sequence[str], planted: Iterable[str]
) -> Recovery:
    """Score rankings (one score list per seed, indexed like `labels`) against planted labels."""
    planted = [p for p in dict.fromkeys(planted)]
    present = [p for p in planted if p in labels]
    k = len(present)
    if k == 0:
        raise ValueError("none of the planted components was scored")
    is_planted = [label in set(present) for label in labels]
    aurocs, precisions, ranks = [], [], {p: [] for p in present}
    recovered = True
    for scores in per_seed:
        order = sorted(range(len(labels)), key=lambda i: -scores[i])
        rank_of = {labels[i]: r + 1 for r, i in enumerate(order)}
        top = {labels[i] for i in order[:k]}
        precisions.append(len(top & set(present)) / k)
        recovered = recovered and top == set(present)
        for p in present:
            ranks[p].append(rank_of[p])
        a = auroc(scores, is_planted)
        if a is not None:
            aurocs.append(a)
    return Recovery(
        auroc=Estimate.of(aurocs) if aurocs else None,
        precision_at_k=Estimate.of(precisions),
        k=k,
        ranks={p: Estimate.of(v) for p, v in ranks.items()},
        recovered=recovered,
        planted_scored=k,
    )


def faithfulness_curve(
    sizes: Sequence[int], per_seed: Sequence[Sequence[float]], n_total: int
) -> FaithfulnessCurve:
    """The curve (one faithfulness list per seed, indexed like `sizes`) with its CPR and CMD.

    Areas use the trapezoid rule over sizes / n_total, so both lie in [0, 1] for a curve in
    [0, 1]; faithfulness may leave that range (a circuit can beat the full model).
    """
    if not sizes or any(len(f) != len(sizes) for f in per_seed):
        raise ValueError("each seed needs one faithfulness value per circuit size")
    xs = [s / n_total for s in sizes]

    def area(ys: Sequence[float]) -> float:
        return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))

    cprs = [area(f) for f in per_seed]
    cmds = [area([abs(1 - y) for y in f]) for f in per_seed]
    columns = list(zip(*per_seed, strict=True))
    return FaithfulnessCurve(
        sizes=list(sizes),
        faithfulness=[Estimate.of(c) for c in columns],
        cpr=Estimate.of(cprs),
        cmd=Estimate.of(cmds),
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a run document (written to schema/run.schema.json)."""
    schema = Run.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mi-atlas run document"
    return schema
