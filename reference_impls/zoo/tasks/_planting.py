"""Planting a mechanism by training: supervised attention, head dropout and frozen MLPs.

The deeper zoo models (4 layers) get their mechanism from the training objective, not from luck.
Each head gets a *role* whose attention pattern is a function of the tokens (previous token,
earlier occurrence of the same token, the position after it, a named position, the <bos>
"resting" position, itself); a cross-entropy term pulls the head's attention onto that target
(Wang et al. 2022 name the IOI heads by exactly such patterns; here the patterns are imposed and
the values, MLPs and read-outs are learned). Heads whose output the model must learn to do
without (backups) are zeroed at random during training (dropout of whole heads, as McGrath et al.
2023 saw self-repair arise), and MLPs that must not store anything are frozen at zero output.

Everything here runs on the Hugging Face model during training (`model.transformer.h[l]`, GPT-2
layout); the trained checkpoint is an ordinary GPT-2 that the bridge loads like any other.
Whether the planted mechanism is really there is never taken from this file: each task's
`direct_check` confirms every component by ablating that component alone on the bridged model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls.zoo.tasks import BOS

# A role maps tokens [batch, pos] to the key position each query attends to [batch, pos];
# -1 = no target at that query (unsupervised there).
Role = Callable[[Tensor], Tensor]


def previous(tokens: Int[Tensor, "b pos"]) -> Int[Tensor, "b pos"]:
    """Attend to the previous position (position 0 attends to itself)."""
    pos = torch.arange(tokens.shape[1])
    return (pos - 1).clamp(min=0).expand_as(tokens).clone()


def itself(tokens: Int[Tensor, "b pos"]) -> Int[Tensor, "b pos"]:
    """Attend to the current position."""
    return torch.arange(tokens.shape[1]).expand_as(tokens).clone()


def resting(tokens: Int[Tensor, "b pos"]) -> Int[Tensor, "b pos"]:
    """Attend to <bos> (position 0): a head that reads nothing position-specific."""
    return torch.zeros_like(tokens)


def earlier_occurrence(tokens: Int[Tensor, "b pos"], shift: int = 0) -> Int[Tensor, "b pos"]:
    """The most recent earlier position holding the same token, plus `shift`; else <bos>.

    shift 0 is a duplicate-token head, shift 1 an induction head (the token after the earlier
    occurrence; it is at most the query itself). Special tokens (ids < 3) never count.
    """
    n, length = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, q, k]
    earlier = torch.ones(length, length, dtype=torch.bool).tril(-1)
    ok = same & earlier & (tokens[:, None, :] > 2)
    idx = torch.where(ok, torch.arange(length), -1).amax(-1)  # most recent, or -1
    return torch.where(idx >= 0, idx + shift, torch.zeros_like(idx))


def at_query(query: Int[Tensor, " b"], key: Int[Tensor, " b"]) -> Role:
    """A role that attends from position `query[b]` to `key[b]` only; <bos> everywhere else."""

    def role(tokens: Tensor) -> Tensor:
        target = torch.zeros_like(tokens)
        target[torch.arange(tokens.shape[0]), query] = key
        return target

    return role


def attention_loss(
    attentions: tuple[Float[Tensor, "b head q k"], ...],
    tokens: Int[Tensor, "b pos"],
    roles: dict[tuple[int, int], Role],
    valid: Int[Tensor, " b"] | None = None,
) -> Tensor:
    """Mean cross-entropy of each supervised head's attention against its role's target.

    `valid[b]` (optional) is the sequence length of row b: queries at or beyond it carry no loss.
    """
    terms = []
    length = tokens.shape[1]
    for (layer, head), role in roles.items():
        target = role(tokens)  # [b, q]
        probs = attentions[layer][:, head]  # [b, q, k]
        mask = target >= 0
        if valid is not None:
            mask &= torch.arange(length)[None] < valid[:, None]
        picked = probs.gather(-1, target.clamp(min=0)[..., None])[..., 0]  # [b, q]
        terms.append(-(picked[mask] + 1e-6).log().mean())
    return torch.stack(terms).mean()


@contextmanager
def heads_scaled(model: Any, scale: dict[int, Float[Tensor, "b head"]]) -> Iterator[None]:
    """Multiply each head's output (the input of `attn.c_proj`) by `scale[layer][b, head]`."""

    def hook_for(factor: Tensor) -> Callable:
        def pre_hook(module: Any, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            x = args[0]  # [b, pos, n_heads * d_head]
            b, p, d = x.shape
            n_heads = factor.shape[1]
            x = (x.view(b, p, n_heads, d // n_heads) * factor[:, None, :, None]).view(b, p, d)
            return (x, *args[1:])

        return pre_hook

    handles = [
        out_projection(model, layer).register_forward_pre_hook(hook_for(f))
        for layer, f in scale.items()
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def out_projection(model: Any, layer: int) -> Any:
    """The attention output projection of `layer` (GPT-2 `attn.c_proj` or Llama `o_proj`)."""
    if hasattr(model, "transformer"):
        return model.transformer.h[layer].attn.c_proj
    return model.model.layers[layer].self_attn.o_proj


def head_dropout(
    n: int, n_heads: int, heads: list[tuple[int, int]], p: float, gen: torch.Generator
) -> dict[int, Tensor]:
    """Per-row masks that zero each of `heads` independently with probability p."""
    scale: dict[int, Tensor] = {}
    for layer, head in heads:
        scale.setdefault(layer, torch.ones(n, n_heads))
        scale[layer][:, head] = (torch.rand(n, generator=gen) >= p).float()
    return scale


def combine(*scales: dict[int, Tensor]) -> dict[int, Tensor]:
    """The product of several per-layer head masks (`head_dropout` outputs)."""
    out: dict[int, Tensor] = {}
    for scale in scales:
        for layer, f in scale.items():
            out[layer] = out[layer] * f if layer in out else f.clone()
    return out


def head_output(model: Any, layer: int, heads: list[int]) -> Callable[[], Tensor]:
    """Install a hook recording the summed output of `heads` in `layer`; returns a getter.

    The output of head h is its slice of c_proj's input times its rows of c_proj's weight
    (GPT-2's Conv1D: weight is [d_in, d_out]). Used for losses on a head's direct effect.
    """
    store: list[Tensor] = []
    attn = model.transformer.h[layer].attn

    def pre_hook(module: Any, args: tuple[Tensor, ...]) -> None:
        x = args[0]
        b, p, d = x.shape
        d_head = d // model.config.n_head
        z = x.view(b, p, -1, d_head)
        w = module.weight.view(-1, d_head, module.weight.shape[1])  # [head, d_head, d_model]
        store.append(sum(z[:, :, h] @ w[h] for h in heads))

    handle = attn.c_proj.register_forward_pre_hook(pre_hook)

    def get() -> Tensor:
        handle.remove()
        return store[-1]

    return get


def freeze_mlp_output(model: Any, layers: list[int]) -> None:
    """Zero and freeze the output projection (and bias) of the MLPs of `layers`."""
    for layer in layers:
        proj = model.transformer.h[layer].mlp.c_proj
        with torch.no_grad():
            proj.weight.zero_()
            proj.bias.zero_()
        proj.weight.requires_grad_(False)
        proj.bias.requires_grad_(False)


def eager(model: Any) -> Any:
    """Switch a Hugging Face model to eager attention, the one that returns attention weights."""
    model.config._attn_implementation = "eager"
    return model


def forward(
    model: Any, tokens: Int[Tensor, "b pos"]
) -> tuple[Float[Tensor, "b pos vocab"], tuple[Tensor, ...]]:
    """Logits and per-layer attention probabilities [b, head, q, k] of a GPT-2 in training."""
    out = model(tokens, output_attentions=True)
    return out.logits, out.attentions


__all__ = [
    "BOS",
    "Role",
    "at_query",
    "attention_loss",
    "earlier_occurrence",
    "eager",
    "forward",
    "freeze_mlp_output",
    "head_dropout",
    "head_output",
    "heads_scaled",
    "itself",
    "previous",
    "resting",
]


# ---- confirming on the bridged model ---------------------------------------------------------


def role_scores(
    model: Any, tokens: Int[Tensor, "b pos"], roles: dict[tuple[int, int], Role]
) -> dict[tuple[int, int], float]:
    """Mean attention each head puts on its role's target (bridged model, hook_pattern)."""
    _, cache = model.run_with_cache(tokens)
    out = {}
    for (layer, head), role in roles.items():
        target = role(tokens)
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, head]  # [b, q, k]
        picked = pattern.gather(-1, target.clamp(min=0)[..., None])[..., 0]
        out[(layer, head)] = float(picked[target >= 0].mean())
    return out


def ablated(model: Any, components: list[Any], metric: Callable[[], float]) -> float:
    """`metric()` with every component (a head (layer, head), or an addressing Site) zeroed."""
    from reference_impls.addressing import head
    from reference_impls.interventions import ablate

    sites = [head(*c) if isinstance(c, tuple) else c for c in components]
    if not sites:
        return metric()
    with ablate(model, sites):
        return metric()


def label(component: tuple[int, int]) -> str:
    """'L2H1' for head (2, 1)."""
    return f"L{component[0]}H{component[1]}"
