"""How well a run recovered what was planted in its zoo model, measured from its JSON alone.

Every runner reports its own `recovered` (its own criterion: the planted heads are its top
four, the probe's best layer is the planted one, ...). The scoreboard also needs numbers that
compare across methods, so this module reads the zoo model's `ground_truth` (the card, which
never comes from the methods: see docs/zoo.md) and marks which of the sites in a result are
planted, then measures, without changing any number the runner reported:

- for scores over sites: the rank of every planted site (1 = highest score) and the ROC AUC of
  the scores against "is planted" (1.0: every planted site outscores every other; 0.5: chance);
- for chosen sites (the heads a recipe pruned, the sites a method steered): how many of them are
  planted;
- for a recipe: its metric before, after and on the same-size random control.

Planted sites are read from the ground truth's documented fields, not from model names:
`induction_heads` / `previous_token_heads` / `induction_kv_heads` (heads), `language_neurons`
(MLP neurons per layer and language), `hook` + `position` (a residual or MLP-output site),
`persona` / `bias` positions (the tokens that carry them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HEAD_KINDS = ("head_out", "q", "pattern")
KV_KINDS = ("k", "v")


# -- planted sites -------------------------------------------------------------------------


def planted_label(site: dict[str, Any], truth: dict[str, Any]) -> str | None:
    """What the ground truth says `site` is ("induction head", ...), or None if not planted."""
    kind, layer, head, pos = site.get("kind"), site.get("layer"), site.get("head"), site.get("pos")
    pair = [layer, head]
    if kind in HEAD_KINDS:
        if pair in _pairs(truth.get("induction_heads")):
            return "induction head"
        if pair in _pairs(truth.get("previous_token_heads")):
            return "previous-token head"
    if kind in KV_KINDS and pair in _pairs(truth.get("induction_kv_heads")):
        return "induction key/value head"
    neurons = truth.get("language_neurons")
    if kind == "neuron" and isinstance(neurons, dict):
        per_layer = neurons.get(str(layer)) or {}
        for language, name in (("en", "English"), ("fr", "French")):
            if site.get("index") in (per_layer.get(language) or ()):
                return f"{name} neuron"
    hook, position = truth.get("hook"), truth.get("position")
    if hook and site.get("hook_name") == hook and (pos is None or pos == position):
        return "planted site"
    for key, label in (("persona", "persona token"), ("bias", "group token")):
        part = truth.get(key)
        if isinstance(part, dict) and pos is not None and pos == part.get("position"):
            if kind in ("embed", "resid_pre", "resid_mid", "resid_post"):
                return label
    return None


def _pairs(value: Any) -> list[list[Any]]:
    return [list(p) for p in value] if isinstance(value, list) else []


def planted_description(truth: dict[str, Any]) -> list[str]:
    """The planted components of a ground truth, one short phrase each (for a caption)."""
    parts = []
    for key, label in (
        ("induction_heads", "induction heads"),
        ("previous_token_heads", "previous-token heads"),
    ):
        if truth.get(key):
            heads = ", ".join(f"L{layer}H{head}" for layer, head in truth[key])
            parts.append(f"{label} {heads}")
    neurons = truth.get("language_neurons")
    if isinstance(neurons, dict):
        for layer, sets in sorted(neurons.items()):
            counts = ", ".join(
                f"{len(sets.get(lang) or ())} {name}"
                for lang, name in (("en", "English"), ("fr", "French"))
            )
            parts.append(f"layer {layer}: {counts} neurons")
    if truth.get("hook") and "{" not in str(truth["hook"]):  # not a per-layer template
        where = f" at position {truth['position']}" if truth.get("position") is not None else ""
        parts.append(f"{truth['hook']}{where}")
    for key, label in (("persona", "persona token"), ("bias", "group token")):
        part = truth.get(key)
        if isinstance(part, dict) and part.get("position") is not None:
            parts.append(f"{label} at position {part['position']}")
    if truth.get("n_latents"):
        parts.append(f"{truth['n_latents']} binary latent topics")
    return parts


# -- reading a result ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreBlock:
    """One set of scores over sites found in a result (`path` says where).

    `named` is the runner's own list of the planted sites for its setting (their labels), when
    the result carries one next to the scores or above them (`"planted": [...]`): the card says
    which heads are planted, the runner knows at which positions they act in its prompts.
    """

    path: str
    scores: list[float]
    sites: list[dict[str, Any]]
    meaning: str = ""
    named: tuple[str, ...] | None = None

    @property
    def edges(self) -> bool:
        """The scores are over edges (upstream site -> downstream site), not sites."""
        return bool(self.sites) and is_edge(self.sites[0])

    def planted(self, i: int, truth: dict[str, Any]) -> str | None:
        """What site (or edge) `i` is per the ground truth, or None if it is not planted here."""
        site = self.sites[i]
        if self.named is None and is_edge(site):
            last = max(
                (s.get("layer") or 0) for e in self.sites for s in (e["upstream"], e["downstream"])
            )
            return planted_edge(site, truth, last)
        if self.named is None:
            return planted_label(site, truth)
        if site.get("label") not in self.named:
            return None
        # the kind of component (induction head, ...) from the card, whatever the position
        return planted_label({**site, "pos": None}, truth) or "planted site"


def is_site(value: Any) -> bool:
    return isinstance(value, dict) and "kind" in value and "label" in value


def is_edge(value: Any) -> bool:
    """An edge of a circuit: {"upstream": site, "downstream": site, "label": ...}."""
    return (
        isinstance(value, dict)
        and is_site(value.get("upstream"))
        and is_site(value.get("downstream"))
    )


def planted_edge(edge: dict[str, Any], truth: dict[str, Any], last_layer: int) -> str | None:
    """Whether an edge is one the card's induction circuit implies, and which.

    The card names previous-token heads, induction heads and the key/value heads the induction
    heads read (`induction_kv_heads`). Two kinds of edge follow from that mechanism alone: a
    previous-token head writing into the key of an induction key/value head (K-composition),
    and an induction head writing into the model's output (the last layer's residual stream).
    """
    up, down = edge["upstream"], edge["downstream"]
    what = planted_label({**up, "pos": None}, truth)
    if (
        what == "previous-token head"
        and down.get("kind") == "k"
        and [down.get("layer"), down.get("head")] in _pairs(truth.get("induction_kv_heads"))
    ):
        return "previous-token head → induction key"
    if (
        what == "induction head"
        and down.get("kind") == "resid_post"
        and down.get("layer") == last_layer
    ):
        return "induction head → output"
    return None


def score_blocks(
    result: Any, path: str = "result", named: tuple[str, ...] | None = None
) -> Iterator[ScoreBlock]:
    """Every {"scores": [...], "sites": [...]} of equal length inside a result, depth first."""
    if isinstance(result, dict):
        listed = result.get("planted")
        if isinstance(listed, list) and listed and all(isinstance(v, str) for v in listed):
            named = tuple(listed)
        scores, sites = result.get("scores"), result.get("sites")
        if (
            isinstance(scores, list)
            and isinstance(sites, list)
            and scores
            and len(scores) == len(sites)
            and all(is_site(s) or is_edge(s) for s in sites)
            and all(isinstance(v, int | float) or v is None for v in scores)
        ):
            yield ScoreBlock(
                path,
                [float("nan") if v is None else float(v) for v in scores],
                sites,
                str(result.get("meaning") or ""),
                named,
            )
            return
        for key, value in result.items():
            yield from score_blocks(value, f"{path}.{key}", named)
    elif isinstance(result, list) and result and not all(is_site(v) for v in result):
        for k, value in enumerate(result[:50]):
            yield from score_blocks(value, f"{path}[{k}]", named)


def site_lists(result: Any, path: str = "result") -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every list of sites (and single site) inside a result that is not part of a ScoreBlock."""
    if isinstance(result, dict):
        if isinstance(result.get("scores"), list) and isinstance(result.get("sites"), list):
            return
        for key, value in result.items():
            if is_site(value):
                yield f"{path}.{key}", [value]
            elif isinstance(value, list) and value and all(is_site(v) for v in value):
                yield f"{path}.{key}", value
            else:
                yield from site_lists(value, f"{path}.{key}")


# -- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Where the planted sites of one ScoreBlock rank."""

    path: str
    n_sites: int
    planted: list[tuple[str, str, int]]  # (site label, planted label, 1-based rank)
    auc: float | None  # None when every site, or none, is planted

    @property
    def top(self) -> bool:
        """The planted sites are exactly the top len(planted) sites."""
        return bool(self.planted) and max(r for _, _, r in self.planted) == len(self.planted)


def ranking(block: ScoreBlock, truth: dict[str, Any]) -> Ranking | None:
    """Ranks and AUC of the planted sites in `block`; None if none of its sites is planted."""
    labels = [block.planted(i, truth) for i in range(len(block.sites))]
    if not any(labels):
        return None
    # Rank by score, highest first; NaN last; ties keep site order (as Scores.ranking does).
    order = sorted(
        range(len(block.scores)),
        key=lambda i: (block.scores[i] != block.scores[i], -_finite(block.scores[i]), i),
    )
    rank_of = {i: r + 1 for r, i in enumerate(order)}
    planted = [
        (str(block.sites[i].get("label")), label, rank_of[i])
        for i, label in enumerate(labels)
        if label
    ]
    planted.sort(key=lambda item: item[2])
    return Ranking(block.path, len(block.sites), planted, roc_auc(block.scores, labels))


def _finite(value: float) -> float:
    return value if value == value else float("-inf")


def roc_auc(scores: list[float], labels: list[Any]) -> float | None:
    """P(a planted site outscores a non-planted one), ties counting one half (Mann-Whitney)."""
    pos = [_finite(s) for s, label in zip(scores, labels, strict=True) if label]
    neg = [_finite(s) for s, label in zip(scores, labels, strict=True) if not label]
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


@dataclass(frozen=True)
class Chosen:
    """A list of sites a run chose (steered, pruned, located) and how many are planted."""

    path: str
    sites: list[dict[str, Any]]
    planted: int


def chosen(result: Any, truth: dict[str, Any]) -> list[Chosen]:
    return [
        Chosen(path, sites, sum(1 for s in sites if planted_label(s, truth)))
        for path, sites in site_lists(result)
    ]


@dataclass(frozen=True)
class Summary:
    """The headline of one run for the scoreboard: a metric, its value, and `recovered`."""

    metric: str
    value: str
    recovered: bool | None
    detail: str = ""


def summarise(doc: dict[str, Any]) -> Summary:
    """The most comparable recovery number a run's JSON allows."""
    truth = doc.get("ground_truth") or {}
    result = doc.get("result") or {}
    recovered = doc.get("recovered")
    rankings = [r for b in score_blocks(result) if (r := ranking(b, truth))]
    if rankings:
        best = rankings[0]
        ranks = ", ".join(str(r) for _, _, r in best.planted)
        auc = "n/a" if best.auc is None else f"{best.auc:.3f}"
        return Summary(
            "ROC AUC of scores vs planted sites",
            auc,
            recovered,
            f"planted ranks {ranks} of {best.n_sites}",
        )
    metric = result.get("metric") if isinstance(result, dict) else None
    if isinstance(metric, dict) and {"before", "after", "control"} <= metric.keys():
        return Summary(
            str(metric.get("name") or "metric"),
            f"{_num(metric['before'])} → {_num(metric['after'])}",
            recovered,
            f"same-size random control: {_num(metric['control'])}",
        )
    correlation = {
        k: v
        for k, v in (result.items() if isinstance(result, dict) else [])
        if k.endswith("correlation") and isinstance(v, int | float) and not isinstance(v, bool)
    }
    if correlation:
        mean = correlation.get("mean_correlation", next(iter(correlation.values())))
        low = correlation.get("min_correlation")
        return Summary(
            "correlation of what it found with the planted variables",
            f"{_num(mean)}",
            recovered,
            f"lowest {_num(low)}" if low is not None else "",
        )
    picked = [c for c in chosen(result, truth) if not c.path.endswith("control_sites")]
    if picked and any(c.planted for c in picked):
        c = picked[0]
        where = c.path.removeprefix("result.")
        return Summary(
            "planted share of the sites it acted on",
            f"{c.planted}/{len(c.sites)}",
            recovered,
            "" if where in ("site", "sites") else f"in {where}",
        )
    return Summary("runner's own check", "—", recovered)


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# -- objects -------------------------------------------------------------------------------


def objects_of(doc: Any) -> set[str]:
    """The taxonomy objects (`object` of every site) a run's result talks about."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if is_site(value):
            if value.get("object"):
                found.add(str(value["object"]))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc.get("result") if isinstance(doc, dict) else None)
    return found


def planted_for_object(object_id: str, truth: dict[str, Any]) -> str | None:
    """What a ground truth plants in one taxonomy object, in words, or None."""
    heads = [
        f"{label} {', '.join(f'L{layer}H{head}' for layer, head in truth[key])}"
        for key, label in (
            ("induction_heads", "induction heads"),
            ("previous_token_heads", "previous-token heads"),
        )
        if truth.get(key)
    ]
    hook = str(truth.get("hook") or "")
    at = f" at position {truth['position']}" if truth.get("position") is not None else ""
    if object_id == "attention-head" and heads:
        return "; ".join(heads)
    if object_id == "circuit" and len(heads) == 2:
        return f"the induction circuit: {heads[1]} feed {heads[0]}"
    if object_id == "neuron" and isinstance(truth.get("language_neurons"), dict):
        return (
            "; ".join(p for p in planted_description(truth) if p.startswith("layer "))
            + " (language-specific MLP neurons)"
        )
    if object_id == "ffn" and "mlp" in hook:
        return f"the facts are stored in {hook}{at}"
    if object_id == "residual-stream":
        if "resid" in hook:
            return f"a planted direction in {hook}{at}"
        tokens = [
            f"{label} at position {truth[key]['position']}"
            for key, label in (("persona", "persona token"), ("bias", "group token"))
            if isinstance(truth.get(key), dict) and truth[key].get("position") is not None
        ]
        if tokens:
            return "the residual stream carries the " + " and the ".join(tokens)
    if object_id == "sae-feature" and truth.get("n_latents"):
        hook = truth.get("suggested_hook")
        where = f", readable in {hook}" if hook else ""
        return f"{truth['n_latents']} sparse binary latent topics{where}"
    return None
