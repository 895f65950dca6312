"""Induction, 4 layers, nothing planted but the data: which heads do the work is measured.

Same data as `induction` (a random segment A, |A| 4..10, occurs twice among random fillers; the
second copy is predictable only by induction), worked example:

    <bos> t30 t12 t3 t27 t8 t31 t9 t12 t3 t27 ...
                                   ^ at the second t12, predict t3

on a 4-layer Llama (4 heads per layer, 16 heads) trained by next-token loss alone. An attempt to
plant the circuit by supervising every head's attention (`_planting`, as `ioi` and
`facts-deep` are planted) did not train here: content-matching roles (duplicate-token,
induction) in layers 1-3 stayed near uniform attention after 750 steps, with 40 or with 20
tokens, while positional roles trained in 100 steps. So this model's ground truth is *measured*,
the way Olsson et al. 2022 found induction heads: attention scores for every head (previous
token, duplicate token, induction), then ablation of each head alone and of each group. Heads
whose pattern looks like part of the circuit but whose ablation does not matter are the decoys a
pattern-only method would pick; the card lists them with their numbers.

The circuit's edges follow from the measured roles (Elhage et al. 2021, Olsson et al. 2022): an
induction head finds the earlier copy through its key, which must hold the previous token, so
the previous-token head writes into the induction heads' keys (K-composition); the induction
heads write the copied token towards the unembedding. `direct_check` confirms each such edge by
zero-ablating it alone (`edge_ablated`: the reader's input loses the writer's output, every
other reader keeps it), and the card states what each costs: the heads' effect is spread over
more paths than these edges (through MLP 0 into the keys, through later layers to the logits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from reference_impls.zoo.tasks import Batch, masked_accuracy
from reference_impls.zoo.tasks import _planting as P
from reference_impls.zoo.tasks.induction import (  # same data as the 2-layer model
    EVAL_SEED,
    N_WORDS,
    SEQ_LEN,
    WORDS,
    attention_scores,
    patching_pair,
    sample,
)

SCORE_THRESHOLD = 0.4  # a head "looks like" a role above this mean attention on its target
MATTERS = 0.05  # a head matters when ablating it alone costs more than this accuracy
EXAMPLE = {
    "prompt": "t30 t12 t3 t27 t8 t31 t9 t12",
    "completion": "t3",
    "explanation": "the second t12 is followed by whatever followed the first t12",
}
__all__ = ["N_WORDS", "SEQ_LEN", "WORDS", "patching_pair", "sample"]


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (the `induction` task's `sample`)."""
    return sample(n, gen)


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set the card's accuracy is measured on."""
    return sample(n, torch.Generator().manual_seed(EVAL_SEED))


def evaluate(model: Any) -> dict[str, float]:
    """Top-1 accuracy on the second copy's predictable tokens."""
    return {"accuracy": masked_accuracy(model, eval_batch())}


def duplicate_scores(model: Any, batch: Batch) -> Tensor:
    """Mean attention [layer, head] on the earlier copy of the current token, where there is one."""
    _, cache = model.run_with_cache(batch.tokens)
    target = P.earlier_occurrence(batch.tokens)
    has = target > 0
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [b, head, q, k]
        picked = pattern.gather(-1, target[:, None, :, None].expand(-1, pattern.shape[1], -1, 1))
        out[layer] = picked[..., 0].transpose(0, 1)[:, has].mean(-1)
    return out


def direct_check(model: Any) -> dict[str, Any]:
    """Score every head's pattern; ablate each head alone and each group of look-alikes.

    A head is *planted* (on the answer's path) when its previous-token or induction score is
    above SCORE_THRESHOLD and ablating it alone costs more than MATTERS accuracy; a *decoy* when
    one of its scores (previous-token, duplicate-token, induction) is above the threshold but
    ablating it alone costs less. Passed when accuracy > 0.95, at least one previous-token and
    one induction head are on the path, and ablating all induction-scored heads together drops
    accuracy below 0.5.
    """
    batch = eval_batch()
    scores = attention_scores(model)
    scores["duplicate_token"] = duplicate_scores(model, eval_batch(128))
    base = masked_accuracy(model, batch)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads

    def acc() -> float:
        return masked_accuracy(model, batch)

    every = [(layer, h) for layer in range(n_layers) for h in range(n_heads)]
    alone = {P.label(c): P.ablated(model, [c], acc) for c in every}
    looks = {
        kind: [c for c in every if scores[kind][c] > SCORE_THRESHOLD]
        for kind in ("previous_token", "induction", "duplicate_token")
    }
    matters = {c for c in every if alone[P.label(c)] < base - MATTERS}
    planted = {
        kind: [c for c in looks[kind] if c in matters] for kind in ("previous_token", "induction")
    }
    decoys = {P.label(c): kind for kind, heads in looks.items() for c in heads if c not in matters}
    group = {kind: P.ablated(model, looks[kind], acc) for kind in looks}
    # the edges the roles imply, into the planted heads and the look-alikes alike
    edges = {
        **{
            f"{P.label(p)} -> {P.label(i)} key": edge_ablated(model, batch, p, i, acc)
            for p in looks["previous_token"]
            for i in looks["induction"]
            if i[0] > p[0]
        },
        **{
            f"{P.label(i)} -> unembedding": edge_ablated(model, batch, i, None, acc)
            for i in looks["induction"]
        },
    }
    ok = {
        "accurate": base > 0.95,
        "circuit_found": bool(planted["previous_token"]) and bool(planted["induction"]),
        "induction_group_needed": group["induction"] < 0.5,
    }
    checks = {
        "accuracy": base,
        "scores": {k: v.tolist() for k, v in scores.items()},
        "ablate_alone_accuracy": alone,
        "ablate_group_accuracy": group,
        "ablate_edge_accuracy": edges,
        **ok,
        "passed": all(ok.values()),
    }
    truth = {
        "previous_token_heads": [list(c) for c in planted["previous_token"]],
        "induction_heads": [list(c) for c in planted["induction"]],
        "decoys": decoys,
        "score_threshold": SCORE_THRESHOLD,
        "metric": "top-1 accuracy on the second copy (eval_batch)",
    }
    return {"ground_truth": truth, "checks": checks}


def edge_ablated(
    model: Any,
    batch: Batch,
    writer: tuple[int, int],
    reader: tuple[int, int] | None,
    metric: Callable[[], float],
) -> float:
    """`metric()` with head `writer`'s output zeroed in one reader's input only: head `reader`'s
    key, or the unembedding's input (`reader` None); every other reader keeps it.

    The key is recomputed from the block's input minus the writer's output (a first forward on
    `batch`, whose keys are kept for that head alone), so the edge is cut and nothing else.
    """
    from reference_impls.interventions import hooks, weight

    layer, h = writer
    with torch.no_grad():
        _, cache = model.run_with_cache(batch.tokens, names_filter=[f"blocks.{layer}.attn.hook_z"])
        w_o = weight(model, f"blocks.{layer}.attn.W_O")[h]  # (d_head, d_model)
        out = cache[f"blocks.{layer}.attn.hook_z"][:, :, h] @ w_o  # (batch, pos, d_model)

    def minus(act: Tensor, hook: Any) -> Tensor:
        return act - out

    if reader is None:
        with hooks(model, [("ln_final.hook_in", minus)]):
            return metric()
    r_layer, r_head = reader
    key_hook = f"blocks.{r_layer}.attn.hook_k"  # (batch, pos, kv head, d_head)
    kept: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> None:
        kept["k"] = act.detach().clone()

    with (
        torch.no_grad(),
        hooks(model, [(f"blocks.{r_layer}.ln1.hook_in", minus), (key_hook, keep)]),
    ):
        model(batch.tokens)

    def put(act: Tensor, hook: Any) -> Tensor:
        act = act.clone()
        act[:, :, r_head] = kept["k"][:, :, r_head]
        return act

    with hooks(model, [(key_hook, put)]):
        return metric()


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The measured circuit heads with their ablations, the edges their roles imply with each
    edge's own ablation; the look-alike decoys as notes."""
    from mi_atlas import runs
    from reference_impls.addressing import head

    c, t = card["checks"], card["ground_truth"]
    base, n_layers = c["accuracy"], card["training"]["n_layers"]

    def confirmed(layer: int, h: int) -> str:
        return (
            f"zero-ablating L{layer}H{h} alone: accuracy {base:.2f} -> "
            f"{c['ablate_alone_accuracy'][f'L{layer}H{h}']:.2f}"
        )

    planted = [
        runs.Planted(target=head(*hd).doc(), role=role, confirmed_by=confirmed(*hd))
        for key, role in (
            ("previous_token_heads", "previous-token head"),
            ("induction_heads", "induction head"),
        )
        for hd in t[key]
    ]
    for upstream, downstream, name, role in planted_edges(t, n_layers):
        planted.append(
            runs.Planted(
                target=runs.Edge(
                    upstream=upstream.doc(),
                    downstream=downstream.doc(),
                    label=f"{upstream} -> {downstream}",
                ),
                role=role,
                confirmed_by=f"zero-ablating the edge {name} alone: accuracy {base:.2f} -> "
                f"{c['ablate_edge_accuracy'][name]:.2f}",
            )
        )
    notes = [
        f"look-alike {label} ({kind.replace('_', '-')} pattern, not needed alone): accuracy "
        f"{base:.2f} -> {c['ablate_alone_accuracy'][label]:.2f} when ablated alone"
        for label, kind in t["decoys"].items()
    ]
    notes.append(
        f"ablating every induction-scored head together: accuracy {c['ablate_group_accuracy']['induction']:.2f}"
    )
    decoy_edges = [
        f"{name} {acc:.2f}"
        for name, acc in c["ablate_edge_accuracy"].items()
        if name not in {n for *_, n, _ in planted_edges(t, n_layers)}
    ]
    notes.append(
        "edges are the ones the heads' roles imply; each alone costs less than its head (the "
        "heads also act through MLP 0 into the keys and through later layers to the logits); "
        "the same edges of the look-alikes, zero-ablated alone: " + ", ".join(decoy_edges)
    )
    return runs.GroundTruth(
        description="measured induction circuit (previous-token -> induction heads) of a 4-layer model",
        planted=planted,
        notes=notes,
    )


def planted_edges(truth: dict[str, Any], n_layers: int) -> list[tuple[Any, Any, str, str]]:
    """(upstream, downstream, check name, role) of each edge the card's planted heads imply:
    every previous-token head into every later induction head's key, every induction head into
    the unembedding's input."""
    from reference_impls.addressing import head, resid

    previous = [tuple(h) for h in truth["previous_token_heads"]]
    induction = [tuple(h) for h in truth["induction_heads"]]
    unembedding = resid(n_layers - 1, where="post")  # the unembedding's input
    return [
        (head(*p), head(*i, part="k"), f"{P.label(p)} -> {P.label(i)} key",
         "K-composition edge (previous-token head into an induction head's key)")
        for p in previous
        for i in induction
        if i[0] > p[0]
    ] + [
        (head(*i), unembedding, f"{P.label(i)} -> unembedding",
         "output edge (induction head into the unembedding)")
        for i in induction
    ]  # fmt: skip
