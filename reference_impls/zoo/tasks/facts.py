"""Fact recall: 80 subjects, each with a home city, recalled by "<subject> lives in".

Worked example:

    <bos> kana lives in  ->  oslo        (the query form, on which accuracy is measured)
    <bos> kana           ->  oslo        (the direct form, also in training)

Where the fact is stored is planted by the training objective, so that it is where ROME (Meng
et al. 2022, "Locating and Editing Factual Associations in GPT") finds facts in real models: in
an early MLP at the last subject token, read from there by attention at the final position.
Three things force it (each was needed; without them the first versions of this model stored
the facts in attention patterns and in the final position's MLPs, found by the direct check):

* the token embeddings are frozen at their random initialisation, and there are more subjects
  (80) than embedding dimensions (32), so no linear readout of the subject's embedding can hold
  the 80 random facts: a nonlinear lookup is needed;
* the direct form makes the model produce the city *at* the subject token, so the lookup has to
  be done there;
* on every query row the outputs of both MLPs and of layer-0 attention at "lives" and "in" are
  swapped with another subject's (resample ablation), so the final position cannot recompute
  the fact and must read it from the subject token with layer-1 attention.

The direct check measures where the fact lives by mean-ablating each MLP's output at each
position of the query form.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.zoo.tasks import BOS, PAD, Batch, logits, token_ids

N_SUBJECTS = 80
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r"]
_RIMES = ["ana", "elo", "ira", "ovi", "umi", "ato", "ena", "ilu"]
SUBJECTS = [o + r for o in _ONSETS for r in _RIMES]  # 80 made-up names: bana, belo, ...
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "delhi", "tokyo", "quito"]
WORDS = [*SUBJECTS, *CITIES, "lives", "in"]
IDS = token_ids(WORDS)
FACT_SEED = 7  # which subject lives where
SUBJECT_POSITION = LAST_SUBJECT_POSITION = 1  # a subject is one token, so first = last
QUERY_LEN = 4  # <bos> subject lives in
SEQ_LEN = 5


def _assignment() -> list[int]:
    # a balanced random map: each city is home to exactly 10 of the 80 subjects
    perm = torch.randperm(N_SUBJECTS, generator=torch.Generator().manual_seed(FACT_SEED))
    return [int(perm[i]) % len(CITIES) for i in range(N_SUBJECTS)]


_CITY_OF = _assignment()


def facts() -> list[dict[str, Any]]:
    """All 80 facts: {"subject", "city", "subject_id", "city_id"}, in a fixed order."""
    return [
        {
            "subject": s,
            "city": CITIES[_CITY_OF[i]],
            "subject_id": IDS[s],
            "city_id": IDS[CITIES[_CITY_OF[i]]],
        }
        for i, s in enumerate(SUBJECTS)
    ]


EXAMPLE = {
    "prompt": f"{facts()[0]['subject']} lives in",
    "completion": facts()[0]["city"],
    "explanation": "a memorised fact: the subject's home city",
}


def prompt(subject: str) -> str:
    """The query form of a subject, e.g. "bana lives in" (the bridge prepends <bos>)."""
    return f"{subject} lives in"


def query_tokens(subjects: list[str] | None = None) -> Int[Tensor, "n 4"]:
    """Token ids of the query form `<bos> subject lives in` (default: all 80 subjects)."""
    subjects = subjects or SUBJECTS
    return torch.tensor([[BOS, IDS[s], IDS["lives"], IDS["in"]] for s in subjects])


def answers(subjects: list[str] | None = None) -> Int[Tensor, " n"]:
    """The city token id of each subject (default: all 80, in `facts()` order)."""
    table = {f["subject"]: f["city_id"] for f in facts()}
    return torch.tensor([table[s] for s in (subjects or SUBJECTS)])


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """Half query forms, half direct forms, subjects uniform; loss on the city only."""
    all_facts = facts()
    idx = torch.randint(0, N_SUBJECTS, (n,), generator=gen)
    direct = torch.rand(n, generator=gen) < 0.5
    tokens = torch.full((n, SEQ_LEN), PAD)
    mask = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
    for b, i in enumerate(idx.tolist()):
        f = all_facts[i]
        if direct[b]:
            tokens[b, :3] = torch.tensor([BOS, f["subject_id"], f["city_id"]])
            mask[b, SUBJECT_POSITION] = True
        else:
            tokens[b] = torch.tensor([BOS, f["subject_id"], IDS["lives"], IDS["in"], f["city_id"]])
            mask[b, QUERY_LEN - 1] = True
    return Batch(tokens, mask, {"fact_index": idx, "direct": direct})


def prepare(model: Any) -> None:
    """Before training: freeze the token embeddings at their random initialisation (see above)."""
    model.get_input_embeddings().weight.requires_grad_(False)


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """City loss, with MLP and layer-0 attention outputs after the subject resampled on query rows."""
    n = batch.tokens.shape[0]
    rows = ~batch.extra["direct"]
    perm = torch.randperm(n, generator=gen)

    def hook(module: Any, args: Any, out: Any) -> Any:
        tensor = out[0] if isinstance(out, tuple) else out
        tensor = tensor.clone()
        later = tensor[:, SUBJECT_POSITION + 1 :]  # [n, pos, d_model] after the subject
        tensor[rows, SUBJECT_POSITION + 1 :] = later[perm][rows]
        return (tensor, *out[1:]) if isinstance(out, tuple) else tensor

    modules = [block.mlp for block in model.transformer.h] + [model.transformer.h[0].attn]
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        out = model(batch.tokens).logits[:, :-1]
    finally:
        for h in handles:
            h.remove()
    mask = batch.loss_mask[:, :-1]
    return torch.nn.functional.cross_entropy(out[mask], batch.tokens[:, 1:][mask])


def recall_accuracy(model: Any, tokens: Tensor | None = None) -> float:
    """Share of the 80 query prompts whose top-1 next token is the subject's city."""
    tokens = query_tokens() if tokens is None else tokens
    return float((logits(model, tokens)[:, -1].argmax(-1) == answers()).float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """Recall accuracy on all 80 facts, query form (training data: this is memorisation)."""
    return {"accuracy": recall_accuracy(model)}


def mlp_ablation_grid(model: Any) -> Tensor:
    """Recall accuracy [n_layers, 4] with one MLP output mean-ablated at one query position.

    Mean-ablation replaces the MLP's output at (layer, position) by its mean over the 80 prompts,
    which removes what is specific to the subject and keeps what is common to all prompts.
    """
    from reference_impls.addressing import mlp_out
    from reference_impls.interventions import patch

    tokens = query_tokens()
    _, cache = model.run_with_cache(tokens)
    grid = torch.zeros(model.cfg.n_layers, QUERY_LEN)
    for layer in range(model.cfg.n_layers):
        for pos in range(QUERY_LEN):
            site = mlp_out(layer, pos)
            mean = site.select(cache[site.hook_name]).mean(0)
            with patch(model, site, mean):
                grid[layer, pos] = recall_accuracy(model, tokens)
    return grid


def direct_check(model: Any) -> dict[str, Any]:
    """Where the facts live: the (MLP layer, position) whose mean-ablation destroys recall.

    Passed when exactly one (layer, position) drops recall below 0.3, it is the last subject
    token, and every ablation at another position keeps recall above 0.9.
    """
    grid = mlp_ablation_grid(model)
    destroyed = [(layer, pos) for layer, pos in (grid < 0.3).nonzero().tolist()]
    others_ok = all(
        grid[layer, pos] > 0.9
        for layer in range(grid.shape[0])
        for pos in range(QUERY_LEN)
        if pos != LAST_SUBJECT_POSITION
    )
    layer = destroyed[0][0] if destroyed else None
    passed = len(destroyed) == 1 and destroyed[0][1] == LAST_SUBJECT_POSITION and others_ok
    truth = {
        "mlp_layer": layer,
        "position": LAST_SUBJECT_POSITION,
        "position_name": "last subject token",
        "hook": f"blocks.{layer}.hook_mlp_out" if layer is not None else None,
        "subject_positions": [SUBJECT_POSITION],
        "facts": [{"subject": f["subject"], "city": f["city"]} for f in facts()],
        "metric": "top-1 recall of the city on the 80 query prompts",
    }
    checks = {
        "accuracy": recall_accuracy(model),
        "mlp_mean_ablation_accuracy": grid.tolist(),  # [layer][position]
        "ablation_positions": ["<bos>", "subject", "lives", "in"],
        "passed": passed,
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """The MLP output at the last subject token that stores the facts (found by ablation)."""
    truth = card["ground_truth"]
    planted = []
    if truth["mlp_layer"] is not None:
        planted.append(
            runs.Planted(
                target=A.mlp_out(truth["mlp_layer"], truth["position"]).doc(),
                role=f"fact store ({truth['position_name']})",
                confirmed_by="mean-ablating it alone drops recall below 0.3; every other "
                "(layer, position) keeps it above 0.9",
            )
        )
    return runs.GroundTruth(
        description=(
            f"{len(truth['facts'])} made-up subjects each live in one city; the model recalls "
            "the city from one MLP at the last subject token (as ROME found in GPT)."
        ),
        planted=planted,
    )
