"""Causal attribution: intervene on a site and measure how much the output moves.

Activation patching runs the model on one input while replacing a site's activation with its
value on another input: denoising patches clean activations into the corrupted run (does this
site suffice to restore the answer?), noising patches corrupted activations into the clean run
(is it necessary?). Causal tracing is denoising where the corrupted run is the clean input with
Gaussian noise on some token embeddings. Attribution patching replaces each patched forward by a
first-order Taylor step, (a_clean - a_corrupted) . d metric / d a, from one backward pass, and
`attribution_patching_error` reports how far that is from exact patching. Every sweep here runs
its patched copies side by side in the batch (`_batched_patch`), never one forward per site.

References:
- Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME): causal tracing
  with noised subject embeddings (noise 3x the embedding std), restoring clean hidden states.
- Vig et al. 2020, "Investigating Gender Bias in Language Models Using Causal Mediation
  Analysis": interventions on neurons and heads as mediators.
- Wang et al. 2023, "Interpretability in the Wild" (IOI): clean/corrupted activation patching.
- Heimersheim & Nanda 2024, "How to use and interpret activation patching": denoising vs
  noising, logit-difference metrics, normalisation.
- Nanda 2023, "Attribution Patching: Activation Patching At Industrial Scale"; Kramar et al.
  2024, "AtP*": the gradient approximation and its failure modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls import addressing as A
from reference_impls.addressing import Site
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate._batched_patch import DEFAULT_CHUNK, Metric, patch_sweep
from reference_impls.locate.metrics import AnswerProb
from reference_impls.locate.scores import Scores, locate_result_over_seeds
from reference_impls.registry import Outcome, register_method


def activation_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    sites: Sequence[Site] | Sequence[Sequence[Site]],
    metric: Metric,
    direction: Literal["denoising", "noising"] = "denoising",
    chunk_size: int = DEFAULT_CHUNK,
) -> Scores:
    """The metric with each site (or each set of sites) patched, averaged over the batch.

    `denoising` runs `corrupted_tokens` and patches in the clean activations; `noising` runs
    `clean_tokens` and patches in the corrupted ones. `meta` holds the unpatched `clean` and
    `corrupted` metrics and `recovered`: for denoising (patched - corrupted) / (clean -
    corrupted), the fraction of the clean behaviour the site restores; for noising (clean -
    patched) / (clean - corrupted), the fraction it destroys.
    """
    if direction not in ("denoising", "noising"):
        raise ValueError(f"direction={direction!r} is not 'denoising' or 'noising'")
    sets = _as_sets(sites)
    run, other = (corrupted_tokens, clean_tokens)
    if direction == "noising":
        run, other = other, run
    # the source run goes into the same forward as the patched copies (group 1); a metric
    # with a `pos` (ours) reads that position only, so unreachable sites need no forward
    values, unpatched, source = patch_sweep(
        model, run, sets, other, metric, chunk_size, reads=getattr(metric, "pos", None)
    )
    values = values.mean(dim=1)  # (n_sets,)
    unpatched, source = float(unpatched.mean()), float(source.mean())
    clean_value, corrupted_value = (
        (source, unpatched) if direction == "denoising" else (unpatched, source)
    )
    span = clean_value - corrupted_value
    if direction == "denoising":
        recovered = (values - corrupted_value) / span
    else:
        recovered = (clean_value - values) / span
    return _scores(
        values,
        sites,
        method="activation-patching",
        meaning=f"metric with the site patched ({direction}), mean over the batch",
        direction=direction,
        clean=clean_value,
        corrupted=corrupted_value,
        recovered=recovered,
    )


def causal_tracing(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    noised_positions: Sequence[int],
    sites: Sequence[Site] | Sequence[Sequence[Site]],
    metric: Metric,
    noise: float = 3.0,
    samples: int = 8,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
) -> Scores:
    """ROME's causal tracing: restore each site's clean state into a run with noised embeddings.

    The corrupted run adds Gaussian noise with standard deviation `noise` times the embedding
    matrix's std to the token embeddings at `noised_positions` (the subject), `samples` noise
    draws per example. The value of a site is the metric with its clean activation restored,
    averaged over examples and draws; `meta` has the `clean` and `corrupted` (noised) metrics
    and `indirect_effect`: value - corrupted.
    """
    sets = _as_sets(sites)
    hooks = sorted({s.hook_name for group in sets for s in group})
    batch, n_pos = tokens.shape
    repeated = tokens.repeat(samples, 1)  # (samples * batch, pos), sample-major
    embed_std = float(model.W_E.detach().std())
    generator = torch.Generator().manual_seed(seed)
    d_model = model.cfg.d_model
    noise_rows = torch.zeros(samples * batch, n_pos, d_model)
    positions = list(noised_positions)
    noise_rows[:, positions] = (
        torch.randn(samples * batch, len(positions), d_model, generator=generator)
        * noise
        * embed_std
    )

    def add_noise(act: Tensor, hook: Any) -> Tensor:
        # act: (copies * samples * batch, pos, d_model); the same draws in every copy
        copies = act.shape[0] // noise_rows.shape[0]
        return act + noise_rows.to(act).repeat(copies, 1, 1)

    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(repeated, names_filter=hooks)
    clean_value = float(metric_rows(metric, clean_logits, tokens).mean())
    source = {name: clean_cache[name] for name in hooks}
    values, noised, _ = patch_sweep(
        model,
        repeated,
        sets,
        source,
        _tiled(metric, samples, batch),
        chunk_size,
        base_hooks=[("hook_embed", add_noise)],
    )
    values, corrupted_value = values.mean(dim=1), float(noised.mean())
    return _scores(
        values,
        sites,
        method="causal-tracing",
        meaning="metric with the site's clean state restored into the noised run",
        clean=clean_value,
        corrupted=corrupted_value,
        indirect_effect=values - corrupted_value,
        noise_std=noise * embed_std,
        samples=samples,
    )


def attribution_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    sites: Sequence[Site],
    metric: Metric,
) -> Scores:
    """First-order estimate of each site's denoising effect from one forward and one backward.

    value(site) = sum over the site's slice of (a_clean - a_corrupted) * d metric / d a, taken on
    the corrupted run, averaged over the batch: the linear approximation of
    patched - corrupted that activation patching measures exactly.
    """
    sites = list(sites)
    hooks = sorted({s.hook_name for s in sites})
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean_tokens, names_filter=hooks)
    acts: dict[str, Tensor] = {}

    def keeper(name: str) -> Any:
        # hook.name may be the bridge's canonical alias, so key by the name we asked for
        def keep(act: Tensor, hook: Any) -> Tensor:
            # return the kept tensor so that it, not an alias, is what the rest reads
            acts[name] = act = act.clone()
            return act

        return keep

    with torch.enable_grad():
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(h, keeper(h)) for h in hooks])
        names = list(acts)
        grads = torch.autograd.grad(metric(logits).mean(), [acts[n] for n in names])
    grad_of = dict(zip(names, grads, strict=True))
    values = torch.stack(
        [
            (
                s.select(clean_cache[s.hook_name] - acts[s.hook_name].detach())
                * s.select(grad_of[s.hook_name])
            ).sum()
            for s in sites
        ]
    )
    return Scores.flat(
        values,
        sites,
        method="attribution-patching",
        meaning="estimated metric change from patching the clean activation into the corrupted run",
    )


def attribution_patching_error(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    sites: Sequence[Site],
    metric: Metric,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, Any]:
    """Attribution patching against exact (batched) denoising patching on the same sites.

    Returns both score sets as effects (patched - corrupted), the max and mean absolute error of
    the approximation, and the Pearson correlation between the two.
    """
    approx = attribution_patching(model, clean_tokens, corrupted_tokens, sites, metric)
    exact = activation_patching(
        model, clean_tokens, corrupted_tokens, sites, metric, "denoising", chunk_size
    )
    exact_effect = exact.values - exact.meta["corrupted"]
    error = (approx.values - exact_effect).abs()
    stacked = torch.stack([approx.values, exact_effect])
    pearson = float(torch.corrcoef(stacked)[0, 1]) if len(sites) > 1 else float("nan")
    return {
        "approx": approx,
        "exact": Scores.flat(
            exact_effect,
            sites,
            method="activation-patching",
            meaning="exact metric change from patching the clean activation into the corrupted run",
        ),
        "max_abs_error": float(error.max()),
        "mean_abs_error": float(error.mean()),
        "pearson": pearson,
    }


# ---- helpers --------------------------------------------------------------------------------


def metric_rows(
    metric: Metric, logits: Float[Tensor, "rows pos vocab"], tokens: Int[Tensor, "batch pos"]
) -> Tensor:
    """Apply a per-example metric to logits whose rows repeat the batch (sample-major)."""
    batch = tokens.shape[0]
    return metric(logits.reshape(-1, batch, *logits.shape[1:]))  # (samples, batch)


def _tiled(metric: Metric, samples: int, batch: int) -> Metric:
    """A metric over rows = samples * batch, from one defined over the batch."""

    def tiled(logits: Tensor) -> Tensor:
        # logits: (copies, samples * batch, pos, vocab) -> (copies, samples * batch)
        copies = logits.shape[0]
        split = logits.reshape(copies, samples, batch, *logits.shape[2:])
        return metric(split).reshape(copies, samples * batch)

    return tiled


def _as_sets(sites: Sequence[Site] | Sequence[Sequence[Site]]) -> list[list[Site]]:
    return [[s] if isinstance(s, Site) else list(s) for s in sites]


def _scores(values: Tensor, sites: Sequence[Any], method: str, meaning: str, **meta: Any) -> Scores:
    """Scores over single sites; a sweep over sets of sites scores each set's first site and
    lists the sets in `meta['sets']`."""
    sets = _as_sets(sites)
    if all(len(group) == 1 for group in sets):
        return Scores.flat(values, [g[0] for g in sets], method, meaning, **meta)
    return Scores.flat(values, [g[0] for g in sets], method, meaning, sets=sets, **meta)


# ---- `mi-atlas run causal-attribution` --------------------------------------------------------


@register_method("causal-attribution", default_model="ioi")
def demo(model_name: str) -> Outcome:
    """Patch every head over 5 data seeds (IOI, induction), or trace a fact's MLPs (facts)."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "mlp_layer" in truth or "store" in truth:
        return _trace_facts(model_name, truth)
    if "heads" not in truth and "induction_heads" not in truth:
        needs = "a model with planted IOI or induction heads or a located fact"
        raise _zoo.unsupported("causal-attribution", model_name, needs)
    return _patch_heads(_zoo.head_patching(model_name, "causal-attribution"))


def _patch_heads(task: _zoo.HeadPatching) -> Outcome:
    """Denoising patching of every head (headline), with |effect|, noising and attribution
    patching beside it, each scored against the planted heads over the data seeds."""
    model, sites, planted, decoys = task.model, task.sites, task.planted, task.decoys
    metric_text = task.metric

    def one(seed: int) -> dict[str, Any]:
        clean, corrupted, metric = task.pair(seed)
        denoise = activation_patching(model, clean, corrupted, sites, metric)
        noise = activation_patching(model, clean, corrupted, sites, metric, "noising")
        error = attribution_patching_error(model, clean, corrupted, sites, metric)
        effect = denoise.values - denoise.meta["corrupted"]
        return {
            "denoising": denoise,
            "absolute": Scores.flat(
                effect.abs(), sites, "activation-patching",
                "|metric change| from patching the clean activation into the corrupted run",
            ),
            "noising": Scores.flat(
                noise.meta["recovered"], sites, "activation-patching",
                "fraction of the clean-corrupted gap lost when the site's corrupted activation "
                "is patched into the clean run",
            ),
            "attribution": error["approx"],
            "clean": denoise.meta["clean"],
            "corrupted": denoise.meta["corrupted"],
            "margin": denoise.margin(planted),
            **{f"attribution patching {k}": error[k] for k in ("pearson", "max_abs_error")},
        }  # fmt: skip

    seeds = _zoo.per_seed(one)
    numbers = {k: v for k, v in seeds.items() if isinstance(v[0], float)}
    numbers |= _zoo.decoy_ranks(seeds["denoising"], decoys)

    def variant(key: str, name: str, setting: str) -> Any:
        return locate_result_over_seeds(
            seeds[key], setting=setting, metric=metric_text, planted=planted, variant=name,
            numbers=_zoo.decoy_ranks(seeds[key], decoys),
        )  # fmt: skip

    result = locate_result_over_seeds(
        seeds["denoising"],
        setting=f"denoising: clean head outputs patched into the corrupted run, one site at a "
        f"time; {task.prompts}; {len(_zoo.SEEDS)} data seeds",
        metric=metric_text,
        planted=planted,
        numbers=numbers,
        variants=[
            variant("absolute", "absolute effect",
                    "denoising, ranked by the size of the effect whatever its sign"),
            variant("noising", "noising",
                    "noising: corrupted head outputs patched into the clean run, one at a time"),
            variant("attribution", "attribution patching",
                    "attribution patching: one forward and one backward pass, a linear estimate"),
        ],
        notes=[
            "scores and recovery are mean ± std over the data seeds; the signed headline ranks "
            "a head that writes against the answer (a negative name mover) last",
        ],
    )  # fmt: skip
    return Outcome(result, recovered=result.recovery.recovered, seeds=_zoo.SEEDS)


def _trace_facts(model_name: str, truth: dict[str, Any]) -> Outcome:
    """ROME's causal tracing on a facts model: restore each site's clean state at each position;
    the seeds draw the subject noise (the 100 facts are the prompts).

    `facts` (2 layers): every MLP output against the card's one fact MLP. `facts-deep`: every MLP
    and head output against its circuit: the store MLPs at the last subject token, the mover and
    backup mover at the last token and the previous-token head at the last subject token.
    """
    from reference_impls import zoo

    model, task = zoo.load(model_name), zoo.task(model_name)
    tokens, answers = task.query_tokens(), task.answers()
    n_pos = tokens.shape[1]
    sites = A.layers(model, "mlp_out", positions=n_pos)
    if "store" in truth:
        store = truth["store"]
        sites += A.heads(model, "out", positions=n_pos)
        planted = [A.mlp_out(layer, store["position"]) for layer in store["mlp_layers"]]
        planted += [A.head(*truth[k], pos=n_pos - 1) for k in ("mover", "backup_mover")]
        planted.append(A.head(*truth["previous_token_head"], pos=store["position"]))
        subject = [store["position"] - 1, store["position"]]  # first and last name
        what, samples = "MLP and head outputs", 2
    else:
        if truth["mlp_layer"] is None:
            raise _zoo.RegistryError(
                f"zoo model {model_name!r} has no located fact MLP in its card"
            )
        planted = [A.mlp_out(truth["mlp_layer"], truth["position"])]
        subject, what, samples = truth["subject_positions"], "MLP outputs", 4

    def one(seed: int) -> dict[str, Any]:
        scores = causal_tracing(
            model, tokens, subject, sites, AnswerProb(answers), samples=samples, seed=seed
        )
        return {
            "scores": scores,
            "clean": scores.meta["clean"],
            "corrupted": scores.meta["corrupted"],
            "margin": scores.margin(planted),
        }

    seeds = _zoo.per_seed(one)
    result = locate_result_over_seeds(
        seeds.pop("scores"),
        setting=f"causal tracing: subject embeddings noised (3x std, {samples} draws per fact), "
        f"clean {what} restored one at a time; {len(_zoo.SEEDS)} noise seeds",
        metric="probability of the city",
        planted=planted,
        numbers=seeds,
    )
    return Outcome(result, recovered=result.recovery.recovered, seeds=_zoo.SEEDS)
