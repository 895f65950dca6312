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
from reference_impls.locate.scores import Scores, locate_result_over_seeds
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


LENS_PROMPTS = 32  # prompts per data seed for the logit lens


@register_method("vocab-projection", default_model="ioi")
def demo(model_name: str) -> Outcome:
    """Copying score of every head's OV circuit (weights), and the logit lens over 5 data seeds."""
    from reference_impls import zoo

    truth = zoo.ground_truth(model_name)
    if "heads" in truth:  # IOI: the heads that write a name into the logits are the planted
        model, task = zoo.load(model_name), zoo.task(model_name)
        words = [task.IDS[w] for w in task.NAMES]
        heads = {_zoo.parse_head(label): role for label, role in truth["heads"].items()}
        planted = [A.head(*h) for h, role in heads.items() if "name mover" in role]
        unplanted = {f"{role} L{h[0]}H{h[1]}": A.head(*h) for h, role in heads.items()
                     if "name mover" not in role}  # fmt: skip
        what, words_text = "IOI prompts (answer: IO)", "the 16 names"

        def prompts(seed: int) -> tuple[Tensor, Tensor]:
            tokens, io, _ = task.prompts(LENS_PROMPTS, seed=seed)
            return tokens, io
    elif "induction_heads" in truth:
        run = _zoo.induction(model_name, "vocab-projection")
        model, planted = run.model, run.induction_heads()
        words = list(range(3, model.cfg.d_vocab))  # the task's words, not <pad> <bos> <unk>
        unplanted = {f"decoy L{d.layer}H{d.head}": d for d in run.decoys()}
        what, words_text = "induction prompts", "the task's words"

        def prompts(seed: int) -> tuple[Tensor, Tensor]:
            clean, _, answer = run.pair(seed)
            return clean, answer
    else:
        raise _zoo.unsupported(
            "vocab-projection", model_name, "a model with planted IOI or induction heads"
        )
    # the OV circuits are weights: no prompts, so the copying score has no data seed (n = 1)
    copying = copying_scores(model, tokens=words)
    order = copying.ranking()
    writer_layer = min(s.layer for s in planted)

    def one(seed: int) -> dict[str, Any]:
        lens = logit_lens(model, *prompts(seed))
        first = lens.meta["first_layer"]
        return {
            "lens": lens,
            "first_layer": first,
            **{f"top1 at layer {i}": v for i, v in enumerate(lens.meta["top1"].tolist())},
        }

    seeds = _zoo.per_seed(one)
    firsts = seeds.pop("first_layer")
    lens_numbers: dict[str, Any] = {k: v for k, v in seeds.items() if k != "lens"}
    lens_numbers["planted heads' layer"] = float(writer_layer)
    if None not in firsts:
        lens_numbers["first layer with the answer on top"] = [float(f) for f in firsts]
    result = copying.locate_result(
        setting=f"the OV circuit W_E W_V W_O W_U of every head, over {words_text}",
        metric="the OV circuit's output logits",
        planted=planted,
        numbers={
            "margin": copying.margin(planted),
            **{f"rank of {name}": float(order.index(site) + 1) for name, site in unplanted.items()},
        },
        variants=[
            locate_result_over_seeds(
                seeds["lens"],
                setting=f"logit lens: the residual stream decoded at every layer, {what}; "
                f"{len(_zoo.SEEDS)} data seeds of {LENS_PROMPTS}",
                metric="log-probability of the answer",
                numbers=lens_numbers,
                variant="logit lens",
            )
        ],
        notes=[
            "a copying score above chance says a head's OV circuit raises the token it attends "
            "to; it cannot tell a name mover from a negative one (whose effect depends on what "
            "the rest of the model writes)",
            "the copying score reads weights only (no prompts), so it has no spread over data "
            "seeds; the logit lens beside it is mean ± std over the seeds",
        ],
    )
    recovered = result.recovery.recovered and all(f == writer_layer for f in firsts)
    return Outcome(result, recovered=recovered, seeds=_zoo.SEEDS)
