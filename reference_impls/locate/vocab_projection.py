"""Vocabulary projection: read internal vectors in the space of output tokens.

The logit lens decodes the residual stream after every layer with the model's own final norm
and unembedding, as if the model stopped there; the layer at which the answer becomes the top
prediction says where the answer is formed (at the last layer the lens is the model). Static
projections need no input at all: a neuron's value vector (its row of W_out) times W_U is the
distribution over tokens it promotes when it fires, and a head's full OV circuit
W_E W_V W_O W_U says which output token each attended-to token pushes up, so a copying head
has the identity on its diagonal.

References:
- nostalgebraist 2020, "interpreting GPT: the logit lens" (LessWrong).
- Geva et al. 2022, "Transformer Feed-Forward Layers Build Predictions by Promoting Concepts in
  the Vocabulary Space": projecting FFN value vectors onto the vocabulary.
- Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits": the OV circuit and
  copying heads.
- Dar et al. 2023, "Analyzing Transformers in Embedding Space": static parameter projections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from reference_impls import addressing as A
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate.scores import Scores
from reference_impls.registry import Outcome, register_method


def lens_logits(
    model: Any, tokens: Int[Tensor, "batch pos"], where: Literal["pre", "post"] = "post"
) -> Float[Tensor, "layer batch pos vocab"]:
    """The logit lens: final norm and unembedding applied to the residual stream at every layer.

    `where="post"` decodes the stream after each block (the last one is the model's output);
    `"pre"` decodes it before each block (the first one is the embedding).
    """
    names = [A.resid(layer, where=where).hook_name for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=names)
        stack = torch.stack([cache[name] for name in names])  # (layer, batch, pos, d_model)
        return model.unembed(model.ln_final(stack.flatten(0, 1))).unflatten(0, stack.shape[:2])


def logit_lens(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    answer: Int[Tensor, " batch"],
    pos: int = -1,
    where: Literal["pre", "post"] = "post",
) -> Scores:
    """Log-probability the lens gives the answer at `pos`, per layer (mean over the batch).

    `meta`: `rank` (mean rank of the answer per layer, 0 = top), `top1` (fraction of examples
    where the answer is the lens's top token) and `first_layer` (the first layer whose top-1
    fraction exceeds one half, or None).
    """
    logits = lens_logits(model, tokens, where)[:, :, pos]  # (layer, batch, vocab)
    logprobs = torch.log_softmax(logits, dim=-1)
    index = answer.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    answer_logprob = logprobs.gather(-1, index).squeeze(-1)  # (layer, batch)
    rank = (logits > logits.gather(-1, index)).sum(-1).float()  # (layer, batch)
    top1 = (rank == 0).float().mean(dim=1)
    above = (top1 > 0.5).nonzero()
    sites = [
        A.resid(layer, pos=_absolute(pos, tokens), where=where) for layer in range(len(logits))
    ]
    return Scores.flat(
        answer_logprob.mean(dim=1),
        sites,
        method="logit-lens",
        meaning="log-probability of the answer when the stream is decoded at this layer",
        rank=rank.mean(dim=1),
        top1=top1,
        first_layer=int(above[0]) if len(above) else None,
    )


def neuron_projections(
    model: Any, layer: int, tokens: Sequence[int] | None = None, top_k: int = 5
) -> tuple[Scores, Float[Tensor, "d_mlp vocab"]]:
    """Each neuron's value vector W_out[layer][j] projected onto the vocabulary, W_out W_U.

    Scores: the largest projected logit per neuron over `tokens` (default: the whole vocabulary);
    `meta["top_tokens"]` lists each neuron's `top_k` promoted token ids. Also returns the full
    (d_mlp, vocab) projection.
    """
    with torch.no_grad():
        projection = model.blocks[layer].mlp.W_out @ model.W_U  # (d_mlp, vocab)
    view = projection if tokens is None else projection[:, list(tokens)]
    sites = [A.neuron(layer, j) for j in range(projection.shape[0])]
    scores = Scores.flat(
        view.max(dim=-1).values,
        sites,
        method="neuron-value-projection",
        meaning="largest logit the neuron's value vector writes onto the vocabulary",
        top_tokens=projection.topk(top_k, dim=-1).indices,
    )
    return scores, projection


def ov_circuits(model: Any, layer: int) -> Float[Tensor, "head vocab vocab"]:
    """Full OV circuits W_E W_V^h W_O^h W_U of every query head of `layer` (Elhage et al.).

    Row t is what attending to token t writes into the logits. On grouped-query models query
    head h reads key/value head h // (n_heads / n_key_value_heads).
    """
    n_heads = model.cfg.n_heads
    with torch.no_grad():
        w_v = model.blocks[layer].attn.W_V  # (kv_heads, d_model, d_head)
        w_v = w_v.repeat_interleave(n_heads // w_v.shape[0], dim=0)  # (heads, d_model, d_head)
        w_o = model.blocks[layer].attn.W_O  # (heads, d_head, d_model)
        return model.W_E @ w_v @ w_o @ model.W_U  # (heads, vocab, vocab)


def copying_scores(model: Any, tokens: Sequence[int] | None = None) -> Scores:
    """Per head, the fraction of tokens t whose own logit is the largest in OV row t.

    `tokens` restricts both the attended-to and the output tokens (e.g. a task's words, leaving
    out special tokens). A copying head, one that raises whatever token it attends to (an
    induction head's job), scores near 1; a random head near 1 / len(tokens).
    """
    values, sites = [], []
    for layer in range(model.cfg.n_layers):
        circuits = ov_circuits(model, layer)
        if tokens is not None:
            index = torch.tensor(list(tokens))
            circuits = circuits[:, index][:, :, index]  # (head, n_tokens, n_tokens)
        own = torch.arange(circuits.shape[-1])
        values.append((circuits.argmax(dim=-1) == own).float().mean(dim=-1))  # (head,)
        sites += [A.head(layer, h) for h in range(model.cfg.n_heads)]
    return Scores.flat(
        torch.cat(values),
        sites,
        method="ov-copying",
        meaning="fraction of tokens whose own logit is the top of the head's OV circuit row",
    )


def _absolute(pos: int, tokens: Tensor) -> int:
    return pos if pos >= 0 else tokens.shape[1] + pos


# ---- `mi-atlas run vocab-projection` ----------------------------------------------------------


@register_method("vocab-projection", default_model="induction")
def demo(model_name: str) -> Outcome:
    """Logit lens on induction prompts, and the copying score of every head's OV circuit."""
    run = _zoo.induction(model_name, "vocab-projection")
    lens = logit_lens(run.model, run.clean, run.answer)
    words = range(3, run.model.cfg.d_vocab)  # the task's words, not <pad> <bos> <unk>
    copying = copying_scores(run.model, tokens=words)
    planted = run.induction_heads()
    induction_layer = min(layer for layer, _ in run.truth["induction_heads"])
    first_layer = lens.meta["first_layer"]
    result = copying.locate_result(
        setting="the OV circuit W_E W_V W_O W_U of every head, over the task's words",
        metric="the OV circuit's output logits",
        planted=planted,
        numbers={"margin": copying.margin(planted)},
        variants=[
            lens.locate_result(
                setting="logit lens: the residual stream decoded at every layer, induction prompts",
                metric="log-probability of the answer",
                numbers={
                    **{f"top1 at layer {i}": v for i, v in enumerate(lens.meta["top1"].tolist())},
                    "induction layer": induction_layer,
                    **(
                        {"first layer with the answer on top": first_layer}
                        if first_layer is not None
                        else {}
                    ),
                },
                variant="logit lens",
            )
        ],
    )
    return Outcome(result, recovered=result.recovery.recovered and first_layer == induction_layer)
