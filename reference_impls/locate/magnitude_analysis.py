"""Magnitude analysis: activation statistics per condition, and which sites are specific to one.

Run the model on inputs from several conditions (languages, trigger vs benign prompts, ...),
collect per-site statistics (mean activation, how often a neuron fires, a head's output norm),
and rank sites by how specific they are to a condition. Training-free and cheap, as good as the
contrast in the data. Two specificity scores: language activation probability entropy (LAPE),
low when a neuron fires for one condition only, and the standardised mean difference (Cohen's
d) of one target condition against the rest.

References:
- Tang et al. 2024, "Language-Specific Neurons: The Key to Multilingual Capabilities in Large
  Language Models" (LAPE: entropy of the normalised per-language activation probabilities).
- Kojima et al. 2024, "On the Multilingual Ability of Decoder-based Pre-trained Language
  Models: Finding and Controlling Language-Specific Neurons".
- Lin et al. 2024 / Zhao et al. 2024 style trigger neurons and heads: mean-difference contrasts
  between harmful and harmless prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from reference_impls import addressing as A
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate.scores import Scores, locate_result_over_seeds
from reference_impls.registry import Outcome, register_method

# a condition: token ids, optionally with a mask of the positions whose activations count
Condition = Int[Tensor, "batch pos"] | tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]


def site_activations(
    model: Any, condition: Condition, sites: Sequence[A.Site], pre_activation: bool = False
) -> Float[Tensor, "site n"]:
    """One scalar per site and counted token: a neuron's activation, a head's output norm.

    Neuron sites give s_j at each counted (example, position), or with `pre_activation` the
    input of the activation function (the gate's, on SwiGLU MLPs), whose sign says whether the
    neuron fires: GELU, ReLU and SiLU are positive exactly where their input is. Head sites give
    the L2 norm of the head's output z; residual and block sites their L2 norm. A site with a
    position counts only that position.
    """
    tokens, mask = condition if isinstance(condition, tuple) else (condition, None)
    hook_of = {
        s: _pre_hook(s) if pre_activation and s.kind == "neuron" else s.hook_name for s in sites
    }
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=sorted(set(hook_of.values())))
    rows = []
    for site in sites:
        act = cache[hook_of[site]]
        keep = torch.ones(tokens.shape, dtype=torch.bool) if mask is None else mask.clone()
        if site.pos is not None:
            only = torch.zeros_like(keep)
            only[:, site.pos] = keep[:, site.pos]
            keep = only
        whole = site.at(None).select(act)  # (batch, pos, ...) at every position
        if site.kind != "neuron":
            whole = whole.flatten(2).norm(dim=-1)  # (batch, pos)
        rows.append(whole[keep])
    return torch.stack(rows)  # (site, n)


def condition_statistics(
    model: Any, conditions: Mapping[str, Condition], sites: Sequence[A.Site]
) -> dict[str, Float[Tensor, "site condition"]]:
    """Per site and condition: `mean`, `std`, `mean_abs` (the magnitude) and `p_active`, the
    fraction of counted tokens where the site fires (a neuron's pre-activation > 0; any other
    site's value > 0)."""
    stats: dict[str, list[Tensor]] = {"mean": [], "std": [], "mean_abs": [], "p_active": []}
    for condition in conditions.values():
        acts = site_activations(model, condition, sites)  # (site, n)
        fires = site_activations(model, condition, sites, pre_activation=True) > 0
        stats["mean"].append(acts.mean(dim=1))
        stats["std"].append(acts.std(dim=1))
        stats["mean_abs"].append(acts.abs().mean(dim=1))
        stats["p_active"].append(fires.float().mean(dim=1))
    return {name: torch.stack(values, dim=1) for name, values in stats.items()}


def _pre_hook(site: A.Site) -> str:
    """The hook holding the input of a neuron's activation function (the gate's on SwiGLU)."""
    return f"blocks.{site.layer}.mlp.hook_pre"


def lape(
    model: Any,
    conditions: Mapping[str, Condition],
    sites: Sequence[A.Site],
    statistic: str = "p_active",
    min_level: float | None = None,
) -> Scores:
    """Language activation probability entropy, negated so that specific sites score highest.

    With the default `statistic="p_active"` this is Tang et al.'s LAPE: p_c = P(activation > 0 |
    condition c), q = p / sum_c p, LAPE = -sum_c q_c log q_c. A site that fires for one condition
    only has LAPE 0 (score 0, the maximum); one that fires equally for all k conditions has
    log k. `statistic="mean_abs"` puts the mean activation magnitude in place of p: the same
    entropy, for neurons that are silenced (near zero) rather than switched off (negative)
    on the other conditions. Sites whose largest statistic is below `min_level` (default for
    p_active, as Tang et al.: the 95th percentile of all p_c; for mean_abs: none) are too rarely
    active to be called specific and score -log k - 1, below every other site.
    `meta["condition"]` names the condition each site prefers.
    """
    if statistic not in ("p_active", "mean_abs"):
        raise ValueError(f"statistic={statistic!r} is not 'p_active' or 'mean_abs'")
    names = list(conditions)
    stats = condition_statistics(model, conditions, sites)
    p = stats[statistic]  # (site, condition)
    q = p / p.sum(dim=1, keepdim=True).clamp_min(1e-12)
    entropy = -(q * q.clamp_min(1e-12).log()).sum(dim=1)
    score = -entropy
    if min_level is None:
        min_level = float(torch.quantile(p.flatten(), 0.95)) if statistic == "p_active" else 0.0
    score[p.max(dim=1).values < min_level] = -torch.log(torch.tensor(float(len(names)))) - 1
    return Scores.flat(
        score,
        sites,
        method="lape" if statistic == "p_active" else "magnitude-entropy",
        meaning=f"minus the entropy of the per-condition {statistic} (0 = one condition only)",
        conditions=names,
        statistic=statistic,
        min_level=min_level,
        condition=[names[i] for i in p.argmax(dim=1).tolist()],
        p_active=stats["p_active"],
        mean_abs=stats["mean_abs"],
        mean=stats["mean"],
    )


def mean_difference(
    model: Any, conditions: Mapping[str, Condition], sites: Sequence[A.Site], target: str
) -> Scores:
    """Cohen's d of `target` against all other conditions pooled, per site.

    (mean_target - mean_rest) / pooled standard deviation: how many standard deviations a site's
    activation rises on the target condition (a trigger, a language).
    """
    if target not in conditions:
        raise KeyError(f"target condition {target!r} is not one of {', '.join(conditions)}")
    on = site_activations(model, conditions[target], sites)
    off = torch.cat(
        [site_activations(model, c, sites) for n, c in conditions.items() if n != target], dim=1
    )
    n_on, n_off = on.shape[1], off.shape[1]
    pooled = (
        ((n_on - 1) * on.var(dim=1) + (n_off - 1) * off.var(dim=1)) / (n_on + n_off - 2)
    ).sqrt()
    d = (on.mean(dim=1) - off.mean(dim=1)) / pooled.clamp_min(1e-8)
    return Scores.flat(
        d,
        sites,
        method="mean-difference",
        meaning=f"Cohen's d of the activation on {target!r} against the other conditions",
        target=target,
        mean_target=on.mean(dim=1),
        mean_rest=off.mean(dim=1),
    )


# ---- `mi-atlas run magnitude-analysis` --------------------------------------------------------

# what each zoo model's planting means for firing-rate LAPE (measured: docs/locate.md)
NOTES = {
    "bilingual": "the language neurons are silenced (pre-activation near 0), not switched off, "
    "on the other language: they fire about as often there; bilingual-deep switches them off",
    "bilingual-deep": "the language neurons are switched on and off (half of each MLP layer): "
    "Tang et al.'s filter, the 95th percentile of all firing rates, is then 1.0",
}


@register_method("magnitude-analysis", default_model="bilingual")
def demo(model_name: str) -> Outcome:
    """Find each language's neurons from activation statistics on sentences of both languages,
    over 5 data seeds: on `bilingual` (2 layers, neurons silenced near zero on the other
    language) or `bilingual-deep` (4 layers, neurons switched on and off as Tang et al. saw)."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "language_neurons" not in truth:
        raise _zoo.unsupported(
            "magnitude-analysis", model_name, "a model with planted language neurons"
        )
    model, task = zoo.load(model_name), zoo.task(model_name)
    neurons = [s for layer in range(model.cfg.n_layers) for s in A.neurons(model, layer)]
    language_of = {
        A.neuron(int(layer), j): lang
        for layer, sets in truth["language_neurons"].items()
        for lang in truth["languages"]
        for j in sets[lang]
    }

    def per_layer(scores: Scores) -> dict[str, float]:
        # per layer, as the planted sets are: of the top k (k = planted count), how many are
        # planted, and how many are labelled with their own language
        numbers: dict[str, float] = {}
        condition = dict(zip(scores.sites, scores.meta["condition"], strict=True))
        for layer in range(model.cfg.n_layers):
            specific = [s for s in language_of if s.layer == layer]
            top = [s for s in scores.ranking() if s.layer == layer][: len(specific)]
            numbers |= {
                f"L{layer} precision at planted": sum(s in language_of for s in top)
                / len(specific),
                f"L{layer} language correct": sum(language_of.get(s) == condition[s] for s in top)
                / len(specific),
                f"L{layer} margin": scores.margin(specific),
            }
        return numbers

    def one(seed: int) -> dict[str, Any]:
        languages = {lang: task.sentences(lang, 64, seed=1 + seed) for lang in truth["languages"]}
        # the headline is Tang et al.'s statistic, P(activation > 0); the magnitude entropy, a
        # simplification that works better on this zoo model, is listed beside it
        firing = lape(model, languages, neurons)
        magnitude = lape(model, languages, neurons, statistic="mean_abs")
        return {"firing": firing, "magnitude": magnitude,
                "firing numbers": per_layer(firing), "magnitude numbers": per_layer(magnitude)}  # fmt: skip

    seeds = _zoo.per_seed(one)

    def numbers(key: str) -> dict[str, list[float]]:
        return {k: [n[k] for n in seeds[key]] for k in seeds[key][0]}

    headline_numbers = numbers("firing numbers")
    # recovered: in every seed and layer, >= 0.9 of the top k are planted and correctly labelled
    recovered = all(
        min(v) >= 0.9
        for k, v in headline_numbers.items()
        if k.endswith(("precision at planted", "language correct"))
    )
    setting = (
        "64 sentences per language per data seed, {seeds} seeds; per neuron the entropy of its {} "
        "across languages"
    ).replace("{seeds}", str(len(_zoo.SEEDS)))
    metric = "MLP neuron activation (blocks.L.mlp.hook_post)"
    result = locate_result_over_seeds(
        seeds["firing"],
        setting=setting.format("firing rate P(activation > 0) (LAPE, Tang et al. 2024)"),
        metric=metric,
        planted=list(language_of),
        numbers=headline_numbers,
        variants=[
            locate_result_over_seeds(
                seeds["magnitude"],
                setting=setting.format("mean |activation| (a simplification of LAPE)"),
                metric=metric,
                planted=list(language_of),
                numbers=numbers("magnitude numbers"),
                variant="magnitude entropy",
            )
        ],
        notes=[NOTES[model_name]] if model_name in NOTES else [],
    )
    return Outcome(result, recovered=recovered, seeds=_zoo.SEEDS)
