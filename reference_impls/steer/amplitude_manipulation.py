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

from reference_impls.addressing import Site, SiteError, head, heads, sae_feature
from reference_impls.interventions import hooks, record
from reference_impls.registry import register_method
from reference_impls.steer._threads import single_threaded
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
@single_threaded
def demo(model_name: str) -> dict[str, Any]:
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
    accuracy = {"none": masked_accuracy(model, batch)}
    for mode in ("zero", "mean", "resample"):
        for name, sites in (("planted", planted), ("random", control)):
            with ablate(model, sites, mode=mode, reference=None if mode == "zero" else reference):
                accuracy[f"{mode} {name}"] = masked_accuracy(model, batch)
    recovered = all(
        accuracy[f"{m} planted"] < 0.5 and accuracy[f"{m} random"] > accuracy["none"] - 0.1
        for m in ("zero", "mean", "resample")
    )
    return {
        "metric": truth.get("metric", "accuracy"),
        "accuracy": {k: round(v, 4) for k, v in accuracy.items()},
        "sites": [s.to_dict() for s in planted],
        "control_sites": [s.to_dict() for s in control],
        "recovered": recovered,
    }


@register_method("amplitude-manipulation-sae", default_model="sparse-features")
@single_threaded
def sae_demo(model_name: str) -> dict[str, Any]:
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
    effects = []
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
        effects.append(
            {
                "latent": latent,
                "feature": feature,
                "correlation": match.correlations[latent],
                "mass_when_on": round(float(mass[on].mean()), 4),
                "mass_when_on_feature_ablated": round(float(ablated[on].mean()), 4),
                "mass_when_on_other_feature_ablated": round(float(control[on].mean()), 4),
                "mass_when_off": round(float(mass[~on].mean()), 4),
                "mass_when_off_feature_clamped_on": round(float(clamped[~on].mean()), 4),
            }
        )
    return {
        "hook": hook,
        "sae": {"d_sae": sae.d_sae, "rows": int(acts.shape[0])},
        "mean_correlation": round(match.mean_correlation, 4),
        "min_correlation": min(match.correlations),
        "features": effects,
        "recovered": min(match.correlations) > 0.9 and len(set(match.features)) == task.N_LATENTS,
    }
