"""Amplitude manipulation: scale a located component's activation, or replace it outright.

Ablation replaces a site's activation with zero, with its mean over a reference distribution,
or with its value on another, randomly drawn reference input (resampling); scaling multiplies
it by a factor (0 switches it off, >1 amplifies it). Sites are heads, neurons, whole blocks,
the residual stream, or SAE features (then the SAE is spliced into the forward pass and only
the chosen features change). Everything is a context manager: the hooks are gone on exit.

References:
- Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect Object
  Identification in GPT-2 small" (IOI): mean ablation over a reference distribution.
- Chan et al. 2022, "Causal Scrubbing" (Redwood Research): resample ablation, replacing an
  activation with its value on another input drawn from the data.
- Michel et al. 2019, "Are Sixteen Heads Really Better than One?": head masking (scale 0).
- Li et al. 2023, "Inference-Time Intervention" and Tang et al. 2024, "Language-Specific
  Neurons": scaling or deactivating located heads and neurons.
- Templeton et al. 2024, "Scaling Monosemanticity": clamping and scaling SAE features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls.addressing import Site, SiteError, head, heads, sae_feature
from reference_impls.interventions import hooks, record
from reference_impls.registry import Outcome, register_method
from reference_impls.steer.sae import SparseAutoencoder, rewritten_features

# fn(site, activation slice with the batch axis first) -> the new slice
SliceFn = Callable[[Site, Tensor], Tensor]


@contextmanager
def rewritten(
    model,
    sites: Site | Iterable[Site],
    fn: SliceFn,
    sae: SparseAutoencoder | None = None,
    identity_ok: bool = False,
) -> Iterator[Any]:
    """The general core: run with each site's slice replaced by `fn(site, slice)`.

    Model sites (heads, neurons, blocks, residual stream) are rewritten by hooks on their own
    hook points; `sae_feature` sites by splicing `sae` into the hook it reads. All hooks are
    removed on exit, even after an exception; a hook that never fires or never changes its slice
    is an error (`interventions.hooks`) unless `identity_ok`.
    """
    sites = [sites] if isinstance(sites, Site) else list(sites)
    features = [s for s in sites if s.kind == "sae_feature"]
    plain = [s for s in sites if s.kind != "sae_feature"]
    if features and sae is None:
        raise SiteError(f"{features[0]} is an SAE feature: pass the SAE that defines it (sae=...)")

    def make(site: Site):
        return lambda act, hook: site.write(act, fn(site, site.select(act)))

    with ExitStack() as stack:
        if plain:
            fwd = [(s.hook_name, make(s)) for s in plain]
            stack.enter_context(hooks(model, fwd=fwd, identity_ok=identity_ok))
        if features:
            stack.enter_context(rewritten_features(model, sae, features, fn, identity_ok))
        yield model


def scale(model, sites: Site | Iterable[Site], factor: float, sae: SparseAutoencoder | None = None):
    """Multiply each site's activation by `factor` (0: knock out, 1: unchanged, >1: amplify)."""
    return rewritten(model, sites, lambda site, x: x * factor, sae=sae, identity_ok=factor == 1)


def reference_slices(
    model,
    sites: Iterable[Site],
    reference: Int[Tensor, "n pos"],
    sae: SparseAutoencoder | None = None,
) -> dict[Site, Tensor]:
    """Each site's slice on every reference input, batch axis first (what mean/resample use)."""
    sites = list(sites)
    plain = [s for s in sites if s.kind != "sae_feature"]
    with torch.no_grad(), record(model, plain) as store:
        model(reference)
        out = dict(store)
    features = [s for s in sites if s.kind == "sae_feature"]
    if features:
        if sae is None:
            raise SiteError(
                f"{features[0]} is an SAE feature: pass the SAE that defines it (sae=...)"
            )
        # record the SAE's input once per hook, then read the features' slices off its code
        with torch.no_grad():
            for hook_name in {s.hook for s in features}:
                _, cache = model.run_with_cache(reference, names_filter=hook_name)
                code = sae.encode(cache[hook_name])  # (n, pos, d_sae)
                out.update({s: s.select(code) for s in features if s.hook == hook_name})
    return out


def ablate(
    model,
    sites: Site | Iterable[Site],
    mode: Literal["zero", "mean", "resample"] = "zero",
    reference: Int[Tensor, "n pos"] | None = None,
    seed: int = 0,
    sae: SparseAutoencoder | None = None,
):
    """Knock each site out: set it to zero, to its reference mean, or to a resampled value.

    `mean` (Wang et al. 2022) replaces the slice by its average over the `reference` inputs
    (which must have the same length as the inputs run, when the site spans all positions);
    `resample` (Chan et al. 2022) replaces each row of a batch with the slice from a reference
    input drawn at random, independently per site (a `seed`ed generator, restarted at every
    `with`), so the ablated value is one the model really produces, on an unrelated input.
    """
    sites = [sites] if isinstance(sites, Site) else list(sites)
    if mode == "zero":
        return rewritten(model, sites, lambda site, x: torch.zeros_like(x), sae=sae)
    if mode not in ("mean", "resample"):
        raise ValueError(f"mode={mode!r} is not one of 'zero', 'mean', 'resample'")
    if reference is None:
        raise ValueError(f"{mode} ablation needs reference inputs (reference=tokens)")
    slices = reference_slices(model, sites, reference, sae=sae)
    if mode == "mean":
        means = {s: v.mean(0) for s, v in slices.items()}
        return rewritten(model, sites, lambda site, x: means[site].expand_as(x), sae=sae)
    return _resampled(model, sites, slices, seed, sae)


@contextmanager
def _resampled(
    model, sites: list[Site], slices: Mapping[Site, Tensor], seed: int, sae
) -> Iterator[Any]:
    generator = torch.Generator().manual_seed(seed)

    def resample(site: Site, x: Tensor) -> Tensor:
        # each site draws its own reference rows: components are resampled independently
        rows = torch.randint(0, slices[site].shape[0], (x.shape[0],), generator=generator)
        return slices[site][rows].to(x.dtype)  # (batch, ...)

    with rewritten(model, sites, resample, sae=sae):
        yield model


@register_method("amplitude-manipulation", default_model="induction")
def demo(model_name: str) -> Outcome:
    """Zero-, mean- and resample-ablate the planted induction heads, against as many random heads."""
    from reference_impls import zoo
    from reference_impls.zoo.tasks import masked_accuracy

    model, task, truth = zoo.load(model_name), zoo.task(model_name), zoo.ground_truth(model_name)
    planted = [head(layer, h) for layer, h in truth["induction_heads"]]
    known = {tuple(x) for x in truth["induction_heads"] + truth["previous_token_heads"]}
    others = [s for s in heads(model) if (s.layer, s.head) not in known]
    order = torch.randperm(len(others), generator=torch.Generator().manual_seed(0)).tolist()
    control = [others[i] for i in order[: len(planted)]]
    batch = task.eval_batch(256)
    reference = task.training_batch(torch.Generator().manual_seed(1), 256).tokens
    with torch.no_grad():
        logits = model(batch.tokens[:8])
    before = masked_accuracy(model, batch)
    measures, accuracy = [], {}
    for mode in ("zero", "mean", "resample"):
        for name, sites in (("planted", planted), ("random", control)):
            with ablate(model, sites, mode=mode, reference=None if mode == "zero" else reference):
                accuracy[name] = masked_accuracy(model, batch)
        measures.append(
            runs.Measure(
                name=f"accuracy, {mode}-ablated",
                before=runs.Estimate.of(before),
                after=runs.Estimate.of(accuracy["planted"]),
                control=runs.Estimate.of(accuracy["random"]),
                higher_is_better=False,  # ablating the sites that matter should hurt more
                data=truth.get("metric", "accuracy"),
            )
        )
    with torch.no_grad():
        restored = torch.equal(model(batch.tokens[:8]), logits)
    result = runs.SteerResult(
        setting="ablate the planted induction heads (zero, mean, resample) on 256 eval sequences",
        targets=[s.doc() for s in planted],
        control=runs.Control(
            kind="random-sites",
            description=f"{len(control)} of the {len(others)} heads outside the planted "
            "circuit, drawn at random (as many as the planted heads where the model has them)",
            targets=[s.doc() for s in control],
        ),
        measures=measures,
        restored=restored,
    )
    recovered = all(m.after.mean < 0.5 and m.control.mean > m.before.mean - 0.1 for m in measures)
    return Outcome(result, recovered=recovered)


@register_method(
    "amplitude-manipulation-sae",
    default_model="sparse-features",
    variant_of="amplitude-manipulation",
)
def sae_demo(model_name: str) -> Outcome:
    """Train an SAE on the residual stream, match its features to the planted topics, steer them."""
    from reference_impls import zoo
    from reference_impls.steer.sae import SAEConfig, match_latents, train_sae
    from reference_impls.steer.vector_arithmetic import clamp_features

    model, task = zoo.load(model_name), zoo.task(model_name)
    fit = task.sample_with_latents(512, torch.Generator().manual_seed(0))
    hook, start = task.SUGGESTED_HOOK, task.MIN_CONTEXT
    with torch.no_grad():
        _, cache = model.run_with_cache(fit.tokens, names_filter=hook)
    acts = cache[hook][:, start:].reshape(-1, cache[hook].shape[-1])  # (n * pos, d_model)
    seen = (
        fit.extra["seen"][:, start:].reshape(-1, task.N_LATENTS).float()
    )  # topics revealed so far
    sae = train_sae(acts, SAEConfig(d_sae=32, l1_coeff=1e-2, steps=500, seed=0))
    with torch.no_grad():
        codes = sae.encode(acts)  # (n * pos, d_sae)
    match = match_latents(codes, seen)
    test = task.sample_with_latents(128, torch.Generator().manual_seed(1))
    last = test.tokens.shape[1] - 1
    ceiling = float(codes.max())  # "fully on": the largest activation seen in training
    # per planted topic: its matched feature, and another feature as the same-size control
    rows: dict[str, list[float]] = {}

    def keep(name: str, value: Tensor) -> None:
        rows.setdefault(name, []).append(float(value))

    with torch.no_grad():
        logits = model(test.tokens[:8])
    for latent, feature in enumerate(match.features):
        on = test.extra["latents"][:, latent]
        other = (feature + 1) % sae.d_sae  # another feature: the same-size control
        with torch.no_grad():
            mass = task.topic_mass(model, test.tokens)[:, -1, latent]
            with scale(model, sae_feature(hook, feature), 0.0, sae=sae):
                ablated = task.topic_mass(model, test.tokens)[:, -1, latent]
            with scale(model, sae_feature(hook, other), 0.0, sae=sae):
                control = task.topic_mass(model, test.tokens)[:, -1, latent]
            with clamp_features(model, sae, sae_feature(hook, feature, pos=last), ceiling):
                clamped = task.topic_mass(model, test.tokens)[:, -1, latent]
            with clamp_features(model, sae, sae_feature(hook, other, pos=last), ceiling):
                clamped_other = task.topic_mass(model, test.tokens)[:, -1, latent]
        keep("on", mass[on].mean())
        keep("on, ablated", ablated[on].mean())
        keep("on, other ablated", control[on].mean())
        keep("off", mass[~on].mean())
        keep("off, clamped", clamped[~on].mean())
        keep("off, other clamped", clamped_other[~on].mean())
    with torch.no_grad():
        restored = torch.equal(model(test.tokens[:8]), logits)

    def mean(name: str) -> runs.Estimate:
        return runs.Estimate.of(sum(rows[name]) / len(rows[name]))

    result = runs.SteerResult(
        setting=f"an SAE (d_sae {sae.d_sae}) trained on {hook} over {int(acts.shape[0])} "
        "positions; each topic's best-matching feature ablated (topic on) or clamped on "
        "(topic off) at the last position",
        targets=[sae_feature(hook, f).doc() for f in match.features],
        control=runs.Control(
            kind="other-sites",
            description="the next SAE feature (index + 1) ablated or clamped the same way",
        ),
        measures=[
            runs.Measure(
                name="next-token mass on the topic's tokens (topic on), feature ablated",
                before=mean("on"),
                after=mean("on, ablated"),
                control=mean("on, other ablated"),
                higher_is_better=False,
                data="mean over the topics",
            ),
            runs.Measure(
                name="next-token mass on the topic's tokens (topic off), feature clamped on",
                before=mean("off"),
                after=mean("off, clamped"),
                control=mean("off, other clamped"),
                data="mean over the topics",
            ),
        ],
        restored=restored,
        numbers={
            "mean_correlation": runs.Estimate.of(match.mean_correlation),
            "min_correlation": runs.Estimate.of(min(match.correlations)),
            **{
                f"correlation of topic {i} with feature {f}": runs.Estimate.of(c)
                for i, (f, c) in enumerate(zip(match.features, match.correlations, strict=True))
            },
            **{
                f"topic {i} mass ({name})": runs.Estimate.of(values[i])
                for name, values in rows.items()
                for i in range(len(values))
            },
        },
    )
    recovered = min(match.correlations) > 0.9 and len(set(match.features)) == task.N_LATENTS
    return Outcome(result, recovered=recovered)
