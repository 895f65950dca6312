"""What every improve recipe shares: the same-size random control and the result it reports.

A recipe chains Locate -> Steer -> a measured improvement. To show that the *located* sites
matter, and not merely that steering anything of that size changes the model, the same steer
is applied to randomly chosen sites (or a random direction) of the same size, and every metric
is measured three times: before steering, after steering the located sites, and under the
control. `compare` does exactly that and checks that the model is bit-for-bit restored
afterwards; `recipe_result` builds the typed `runs.RecipeResult` that `mi-atlas run <recipe>
--json` prints inside its run document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.addressing import Site


def random_sites(
    candidates: Iterable[Site], like: Sequence[Site], seed: int = 0, exclude: bool = True
) -> list[Site]:
    """`len(like)` sites drawn uniformly without replacement from `candidates`.

    With `exclude` (the default) the located sites themselves are never drawn, so the control
    asks "does steering *other* sites of the same size do it?"; without it the draw is from
    all candidates, as a random pruning mask is.
    """
    located = set(like)
    pool = [s for s in candidates if not (exclude and s in located)]
    if len(pool) < len(like):
        raise ValueError(f"only {len(pool)} candidate sites outside the {len(like)} located ones")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return [pool[i] for i in order[: len(like)].tolist()]


def draw_seed(seed: int, draw: int) -> int:
    """The seed of recipe seed `seed`'s `draw`-th random control draw.

    Distinct across recipe seeds: with `seed + draw`, seed s's second draw would be seed s+1's
    first, and the spread over seeds would come from overlapping windows of the same draws.
    """
    return 1000 * seed + draw


def head_output_norms(
    model: Any,
    heads: Sequence[Site],
    tokens: Int[Tensor, "batch pos"],
    positions: Sequence[int] | None = None,
) -> Tensor:
    """A magnitude statistic of each head: the norm of what it writes into the residual stream,
    z @ W_O, mean over the sequences of `tokens` and `positions` (all if None). One forward pass.

    Returns (n_heads,). The data-derived control of recipes that choose heads by another score.
    """
    from reference_impls.interventions import weight

    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=sorted({h.hook_name for h in heads}))
        norms = []
        for head in heads:
            z = head.select(cache[head.hook_name])  # (batch, pos, d_head)
            z = z if positions is None else z[:, list(positions)]
            w_o = weight(model, f"blocks.{head.layer}.attn.W_O")[head.head]  # (d_head, d_model)
            norms.append((z @ w_o).norm(dim=-1).mean())
    return torch.stack(norms)


def inner_residual_sites(model: Any, n_pos: int) -> list[Site]:
    """The residual stream entering every block after the first, at every position.

    Block 0's input is the token embedding itself (patching it swaps the token); the sites
    after it are where the model has written what it read. (`resid_mid` is left out: in
    TransformerLens 4's bridge, writing to `hook_resid_mid` changes only the MLP's input, not
    the residual stream that skips the MLP.)
    """
    n_layers = A.dims(model).n_layers
    return [A.resid(layer, pos) for layer in range(1, n_layers) for pos in range(n_pos)]


def top_component(model: Any, site: Site, tokens: Int[Tensor, "batch pos"], like: Tensor) -> Tensor:
    """A data-derived control direction: the top principal component of `site` on `tokens`.

    The direction of most variance in the very activations the located direction was taken
    from, with the sign that agrees with `like` (which matters when it is added) and `like`'s
    norm. Where the located direction is simply the largest thing in those activations, this
    control does as well: the located site adds nothing that PCA alone would not find.
    """
    from reference_impls.interventions import record

    with torch.no_grad(), record(model, site) as store:
        model(tokens)
        acts = store[site].reshape(-1, store[site].shape[-1])  # (batch [* pos], d)
    _, _, vh = torch.linalg.svd(acts - acts.mean(0), full_matrices=False)
    top = vh[0] if float(vh[0] @ like) >= 0 else -vh[0]
    return top * like.norm()


def measured(
    name: str, before: float, after: float, control: float, higher_is_better: bool = True
) -> runs.Measure:
    """One metric before steering, after steering the located sites, and under the control."""
    return runs.Measure(
        name=name,
        before=runs.Estimate.of(before),
        after=runs.Estimate.of(after),
        control=runs.Estimate.of(control),
        higher_is_better=higher_is_better,
    )


Metric = Callable[[], float]  # evaluates the model as it is right now
Steer = Callable[[Any], AbstractContextManager]  # target (sites or a direction) -> steering context


def compare(
    model: Any,
    steer: Steer,
    located: Any,
    controls: Sequence[Any],
    metrics: dict[str, tuple[Metric, bool]],
    probe: Int[Tensor, "batch pos"],
) -> tuple[dict[str, runs.Measure], bool]:
    """Measure every metric before, under `steer(located)`, and under `steer(c)` for each control.

    `metrics` maps a name to (zero-argument evaluation, higher is better). `steer(target)` is a
    context manager that steers while open and undoes itself on exit (a hook context, or a
    `WeightEdit`, which is applied when made and undone on exit). The control value is the
    mean over `controls` (one random draw, or several to average out the luck of one). Returns
    the measures and whether the model's logits on `probe` are bit-for-bit what they were.
    """
    with torch.no_grad():
        reference = model(probe)
    before = {name: fn() for name, (fn, _) in metrics.items()}
    with steer(located):
        after = {name: fn() for name, (fn, _) in metrics.items()}
    ctrl = {name: 0.0 for name in metrics}
    for control in controls:
        with steer(control):
            for name, (fn, _) in metrics.items():
                ctrl[name] += fn() / len(controls)
    with torch.no_grad():
        restored = torch.equal(model(probe), reference)
    measures = {
        name: measured(name, before[name], after[name], ctrl[name], better)
        for name, (_, better) in metrics.items()
    }
    return measures, restored


def recipe_result(
    locate: str,
    steer: str,
    metric: runs.Measure,
    collateral: Sequence[runs.Measure],
    targets: Sequence[Site],
    control: runs.Control,
    restored: bool,
    details: dict[str, Any] | None = None,
    other: Sequence[runs.Measure] = (),
    located: runs.LocateResult | None = None,
) -> runs.RecipeResult:
    """The typed result of a recipe (`runs.RecipeResult`): the headline metric, collateral, the
    steered sites, the control, and every number of `details` (nested names joined by " / ";
    text becomes a note)."""
    numbers, notes = flatten(details or {})
    return runs.RecipeResult(
        locate=locate,
        steer=steer,
        metric=metric,
        collateral=list(collateral),
        targets=[s.doc() for s in targets],
        control=control,
        restored=restored,
        numbers=numbers,
        other=list(other),
        located=located,
        notes=notes,
    )


def random_sites_control(controls: Sequence[Sequence[Site]], what: str) -> runs.Control:
    """The control of a recipe that steered `len(controls)` random draws of sites."""
    draws = len(controls)
    return runs.Control(
        kind="random-sites",
        description=f"{what}, drawn at random" + (f" ({draws} draws, mean)" if draws > 1 else ""),
        targets=[s.doc() for draw in controls[:1] for s in draw],
    )


def flatten(
    details: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, runs.Estimate], list[str]]:
    """Numbers (by " / "-joined name) and one-line notes from a nested dict of details."""
    numbers: dict[str, runs.Estimate] = {}
    notes: list[str] = []
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, runs.Estimate):  # one value per seed, kept as measured
            numbers[name] = value
        elif isinstance(value, bool):
            notes.append(f"{name}: {'yes' if value else 'no'}")
        elif isinstance(value, int | float):
            numbers[name] = runs.Estimate.of(value)
        elif isinstance(value, dict):
            more, text = flatten(value, f"{name} / ")
            numbers.update(more)
            notes += text
        elif isinstance(value, list | tuple) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            numbers.update({f"{name} / {i}": runs.Estimate.of(v) for i, v in enumerate(value)})
        else:
            notes.append(f"{name}: {_text(value)}")
    return numbers, notes


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    return str(value)


def masked_logprob(tokens: Int[Tensor, "batch pos"], loss_mask: Tensor):
    """A locate metric: each example's mean log-probability of its next tokens on `loss_mask`.

    Shaped like the locate metrics (`reference_impls.locate.metrics`): logits with any leading
    copy axes, (*copies, batch, pos, vocab) -> (*copies, batch).
    """
    target = tokens[:, 1:]
    weights = loss_mask[:, :-1].float()

    def metric(logits: Tensor) -> Tensor:
        logprobs = torch.log_softmax(logits[..., :-1, :], dim=-1)  # (*copies, batch, pos-1, vocab)
        index = target.expand(*logprobs.shape[:-1]).unsqueeze(-1)
        picked = logprobs.gather(-1, index).squeeze(-1)  # (*copies, batch, pos-1)
        return (picked * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)

    return metric


SEEDS = (0, 1, 2, 3, 4)  # every registered recipe reports mean ± std over these data seeds


def over_seeds(
    run: Callable[..., Any], model_name: str, seeds: Sequence[int] = SEEDS, **kwargs: Any
) -> Any:
    """`run(model_name, seed=s)` for every seed, merged into one outcome of mean ± std.

    Each seed draws the recipe's own data (prompts, fine-tuning sets, random control sites);
    every measure's before / after / control and every number present in all seeds become
    Estimates over the seeds. Targets, control and the locate ranking are seed 0's (a note says
    so when they differ); `restored` holds only if every seed restored the model.
    """
    from reference_impls.registry import Outcome

    outcomes = [run(model_name, seed=s, **kwargs) for s in seeds]
    results: list[runs.RecipeResult] = [o.result for o in outcomes]
    first = results[0]

    def merge(measures: Sequence[runs.Measure]) -> runs.Measure:
        # one value per seed: the seed's mean (a control averaged over draws counts once)
        return measures[0].model_copy(
            update={
                p: runs.Estimate.of([getattr(m, p).mean for m in measures])
                for p in ("before", "after", "control")
            }
        )

    shared = set.intersection(*(set(r.numbers) for r in results))
    numbers = {
        k: runs.Estimate.of([r.numbers[k].mean for r in results])
        for k in first.numbers
        if k in shared
    }
    notes = list(first.notes)
    if any([t.label for t in r.targets] != [t.label for t in first.targets] for r in results):
        notes.append("the located targets differ between seeds; those shown are seed 0's")
    merged = first.model_copy(
        update={
            "metric": merge([r.metric for r in results]),
            "collateral": [merge(ms) for ms in zip(*(r.collateral for r in results), strict=True)],
            "other": [merge(ms) for ms in zip(*(r.other for r in results), strict=True)],
            "numbers": numbers,
            "restored": all(r.restored for r in results),
            "notes": notes,
        }
    )
    recovered = [o.recovered for o in outcomes]
    return Outcome(
        merged,
        recovered=None if None in recovered else all(recovered),
        seeds=tuple(seeds),
    )
