"""Vector arithmetic: add, subtract or project out a direction in activation space.

A concept that a model represents linearly can be steered by arithmetic on its activations.
The direction is found as a difference in means between inputs with and without the concept;
adding it with a coefficient turns the concept up (or, negated, down); projecting it out of
the residual stream at every layer removes it; an SAE feature is steered by clamping its
activation to a chosen value. All interventions are hooks that remove themselves on exit.

References:
- Turner et al. 2023, "Steering Language Models With Activation Engineering" (ActAdd):
  adding a steering vector with a coefficient.
- Rimsky et al. 2024, "Steering Llama 2 via Contrastive Activation Addition" (CAA): the
  difference in means over contrastive pairs, added at every position after the prompt.
- Li et al. 2023, "Inference-Time Intervention" (ITI): mass-mean-shift (difference-in-means)
  directions added to the outputs of located heads (`add_vector` on `head(l, h)` sites).
- Arditi et al. 2024, "Refusal in Language Models Is Mediated by a Single Direction":
  difference in means at one layer and position, and directional ablation at every layer.
- Templeton et al. 2024, "Scaling Monosemanticity": clamping an SAE feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mi_atlas import runs
from reference_impls.addressing import Site, dims, resid
from reference_impls.interventions import add, project_out, record
from reference_impls.registry import Outcome, register_method
from reference_impls.steer.sae import SparseAutoencoder, rewritten_features


def mean_activation(
    model, site: Site, tokens: Int[Tensor, "batch pos"], batch_size: int = 64
) -> Float[Tensor, " d"]:
    """The mean over inputs (and over positions, if the site spans them) of a site's vector."""
    total, count = None, 0
    with torch.no_grad(), record(model, site) as store:
        for start in range(0, tokens.shape[0], batch_size):
            model(tokens[start : start + batch_size])
            rows = store[site].reshape(-1, store[site].shape[-1])  # (b [* pos], d)
            total = rows.sum(0) if total is None else total + rows.sum(0)
            count += rows.shape[0]
    return total / count


def mean_difference(
    model,
    site: Site,
    positive: Int[Tensor, "n pos"],
    negative: Int[Tensor, "m pos"],
) -> Float[Tensor, " d"]:
    """Difference-in-means direction mu(positive) - mu(negative) at `site` (unnormalised).

    With `site = resid(layer, pos=-1)` this is Arditi et al.'s refusal direction when
    `positive` are triggered inputs and `negative` benign ones; with contrastive pairs it is
    CAA's steering vector.
    """
    return mean_activation(model, site, positive) - mean_activation(model, site, negative)


def add_vector(
    model, sites: Site | Iterable[Site], vector: Float[Tensor, " d"], coeff: float = 1.0
):
    """Activation addition: add `coeff * vector` to each site (ActAdd / CAA); removed on exit."""
    return add(model, sites, vector, scale=coeff)


def residual_sites(model, layers: Iterable[int] | None = None) -> list[Site]:
    """The residual stream before each of `layers` (default all) and after the last block."""
    n_layers = dims(model).n_layers
    chosen = list(range(n_layers)) if layers is None else list(layers)
    return [resid(layer) for layer in chosen] + [resid(n_layers - 1, where="post")]


def ablate_direction(
    model, direction: Float[Tensor, " d_model"], sites: Iterable[Site] | None = None
):
    """Directional ablation: x <- x - (x . r) r at every residual site, r = direction / |r|.

    With the default sites (every layer's input and the final residual) no component can
    write along r anywhere in the forward pass (Arditi et al. 2024).
    """
    return project_out(model, residual_sites(model) if sites is None else list(sites), direction)


@contextmanager
def ablate_directions(
    model, directions: Sequence[Float[Tensor, " d_model"]], sites: Iterable[Site] | None = None
) -> Iterator[Any]:
    """Project a whole subspace, the span of `directions`, out of every residual site.

    The directions are orthonormalised first (QR), so removing them one after another removes
    exactly their span, in any order (INLP / LEACE-style concept erasure with known directions).
    """
    basis, _ = torch.linalg.qr(torch.stack(list(directions), dim=1))  # (d_model, k) orthonormal
    sites = residual_sites(model) if sites is None else list(sites)
    with ExitStack() as stack:
        for column in basis.T:
            stack.enter_context(project_out(model, sites, column))
        yield model


def clamp_features(model, sae: SparseAutoencoder, sites: Site | Iterable[Site], value: float):
    """Clamp SAE features to `value` at their positions (0 removes them; large steers on)."""
    sites = [sites] if isinstance(sites, Site) else list(sites)
    return rewritten_features(model, sae, sites, lambda site, f: torch.full_like(f, value))


def random_direction(like: Tensor, seed: int = 0) -> Tensor:
    """A random direction with the norm of `like`: the same-size control for a steering vector."""
    r = torch.randn(like.shape, generator=torch.Generator().manual_seed(seed))
    return r / r.norm() * like.norm()


@register_method("vector-arithmetic", default_model="refusal")
def demo(model_name: str) -> Outcome:
    """Difference-in-means refusal direction: compare with the planted one, ablate it, add it."""
    from reference_impls import zoo

    model, task, truth = zoo.load(model_name), zoo.task(model_name), zoo.ground_truth(model_name)
    site = resid(truth["layer"], pos=truth["position"])
    triggered, benign = task.prompts(True, 128, seed=0), task.prompts(False, 128, seed=1)
    direction = mean_difference(model, site, triggered, benign)
    cosine = float(
        torch.nn.functional.cosine_similarity(direction, torch.tensor(truth["direction"]), dim=0)
    )
    random = random_direction(direction)  # the control, ablated and added alike
    test_triggered, test_benign = task.prompts(True, 256, seed=2), task.prompts(False, 256, seed=3)
    with torch.no_grad():
        reference = model(test_benign[:8])

    def rates(d: Tensor) -> tuple[float, float]:
        with ablate_direction(model, d):
            ablated = task.refusal_rate(model, test_triggered)
        with add_vector(model, site, d, coeff=1.0):
            added = task.refusal_rate(model, test_benign)
        return ablated, added

    ablated, added = rates(direction)
    ablated_random, added_random = rates(random)
    with torch.no_grad():
        restored = torch.equal(model(test_benign[:8]), reference)
    measures = [
        runs.Measure(
            name="refusal on trigger prompts, direction ablated",
            before=runs.Estimate.of(task.refusal_rate(model, test_triggered)),
            after=runs.Estimate.of(ablated),
            control=runs.Estimate.of(ablated_random),
            higher_is_better=False,
            data="256 held-out trigger prompts",
        ),
        runs.Measure(
            name="refusal on benign prompts, direction added",
            before=runs.Estimate.of(task.refusal_rate(model, test_benign)),
            after=runs.Estimate.of(added),
            control=runs.Estimate.of(added_random),
            data="256 held-out benign prompts",
        ),
    ]
    result = runs.SteerResult(
        setting="difference in means of the residual stream at '?' (trigger minus benign); "
        "ablated everywhere, or added at its site",
        targets=[site.doc()],
        control=runs.Control(
            kind="random-direction",
            description=f"a random direction of the same norm ({float(direction.norm()):.3f})",
        ),
        measures=measures,
        restored=restored,
        numbers={
            "cosine_with_planted_direction": runs.Estimate.of(cosine),
            "direction_norm": runs.Estimate.of(float(direction.norm())),
        },
    )
    return Outcome(result, recovered=cosine > 0.9 and ablated < 0.05 and added > 0.95)
