"""Sparse features: text generated from sparse binary latent "topics", the features an SAE should find.

Worked example (latents 2 and 7 active; each topic owns three tokens):

    latents:  z = [0 0 1 0 0 0 0 1 0 0 0 0]
    text:     <bos> k7b k2a k2c k7b k7a k2a k2b k7c k2a ...
    next token after a long prefix: one of k2a k2b k2c k7a k7b k7c

Each of N_LATENTS binary latents is on independently with probability P_ACTIVE (a sequence with
none on is redrawn); every token is drawn by picking an active topic uniformly, then one of its
tokens uniformly. To predict the next token the model must infer which topics are active from
the context, so its residual stream at later positions carries one variable per topic, on
sparsely: the setting of toy models of superposition (Elhage et al. 2022) and of SAE evaluations
with known features. The latents are the ground truth by construction; `sample_with_latents`
returns them with the text so an SAE's features can be correlated with them. The direct check
confirms the model uses them: its next-token mass on each topic's tokens separates sequences
with the topic on from those with it off (ROC AUC per latent).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor

from mi_atlas import runs
from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids

N_LATENTS = 12
TOKENS_PER_LATENT = 3
P_ACTIVE = 0.2
SEQ_LEN = 25  # <bos> + 24 tokens
MIN_CONTEXT = 8  # accuracy counts predictions from this position on (enough evidence seen)
WORDS = [f"k{i}{'abc'[j]}" for i in range(N_LATENTS) for j in range(TOKENS_PER_LATENT)]
IDS = token_ids(WORDS)
FIRST = IDS[WORDS[0]]
EVAL_SEED = 2024
SUGGESTED_HOOK = "blocks.1.hook_resid_post"

EXAMPLE = {
    "prompt": "k7b k2a k2c k7b k7a k2a k2b k7c k2a",
    "completion": "one of k2a k2b k2c k7a k7b k7c",
    "explanation": "topics 2 and 7 are on; every token comes from an active topic",
}


def latent_tokens(i: int) -> list[int]:
    """Token ids owned by latent i."""
    return [FIRST + i * TOKENS_PER_LATENT + j for j in range(TOKENS_PER_LATENT)]


def sample_with_latents(n: int, gen: torch.Generator) -> Batch:
    """n sequences and their latents.

    `extra`: "latents" [n, N_LATENTS] bool (the generating topics), "seen" [n, pos, N_LATENTS]
    bool (whether a token of topic i occurs at or before each position: what the context has
    revealed so far). The loss mask covers every position but the last.
    """
    latents = torch.rand(n, N_LATENTS, generator=gen) < P_ACTIVE
    while not bool(latents.any(1).all()):
        redo = ~latents.any(1)
        latents[redo] = torch.rand(int(redo.sum()), N_LATENTS, generator=gen) < P_ACTIVE
    # choose a topic per token uniformly among the active ones
    weights = latents.float()[:, None, :].expand(n, SEQ_LEN - 1, N_LATENTS).reshape(-1, N_LATENTS)
    topic = torch.multinomial(weights, 1, generator=gen).view(n, SEQ_LEN - 1)
    within = torch.randint(0, TOKENS_PER_LATENT, (n, SEQ_LEN - 1), generator=gen)
    tokens = torch.cat([torch.full((n, 1), BOS), FIRST + topic * TOKENS_PER_LATENT + within], 1)
    onehot = torch.nn.functional.one_hot(topic, N_LATENTS).bool()  # [n, pos-1, K]
    seen = torch.cat([torch.zeros(n, 1, N_LATENTS, dtype=torch.bool), onehot.cumsum(1) > 0], 1)
    mask = torch.ones(n, SEQ_LEN, dtype=torch.bool)
    mask[:, -1] = False
    return Batch(tokens, mask, {"latents": latents, "seen": seen})


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (see `sample_with_latents`)."""
    return sample_with_latents(n, gen)


def eval_batch(n: int = 512) -> Batch:
    """The fixed held-out set of the card's numbers."""
    return sample_with_latents(n, torch.Generator().manual_seed(EVAL_SEED))


def topic_mass(model: Any, tokens: Tensor) -> Tensor:
    """[n, pos, N_LATENTS]: the model's next-token probability on each topic's tokens."""
    probs = logits(model, tokens).softmax(-1)
    return (
        probs[..., FIRST : FIRST + N_LATENTS * TOKENS_PER_LATENT]
        .reshape(*probs.shape[:2], N_LATENTS, TOKENS_PER_LATENT)
        .sum(-1)
    )


def evaluate(model: Any) -> dict[str, float]:
    """Accuracy: share of top-1 predictions (from position 8 on) that belong to an active topic."""
    batch = eval_batch()
    pred = logits(model, batch.tokens).argmax(-1)[:, MIN_CONTEXT:-1]
    topic = ((pred - FIRST) // TOKENS_PER_LATENT).clamp(0, N_LATENTS - 1)
    valid = (pred >= FIRST) & torch.gather(batch.extra["latents"], 1, topic)
    return {"accuracy": float(valid.float().mean())}


def _auc(scores: Tensor, labels: Bool[Tensor, " n"]) -> float:
    # probability that a random positive outranks a random negative (ties count half)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).float().mean()
    ties = (pos[:, None] == neg[None, :]).float().mean()
    return float(greater + 0.5 * ties)


def direct_check(model: Any) -> dict[str, Any]:
    """Per latent, ROC AUC of the model's last-position mass on its tokens for on vs off.

    Passed when every latent's AUC exceeds 0.95.
    """
    batch = eval_batch()
    mass = topic_mass(model, batch.tokens)[:, -1]  # [n, K] at the last position
    aucs = [_auc(mass[:, i], batch.extra["latents"][:, i]) for i in range(N_LATENTS)]
    checks = {"auc_per_latent": aucs, "min_auc": min(aucs), "passed": min(aucs) > 0.95}
    truth = {
        "n_latents": N_LATENTS,
        "p_active": P_ACTIVE,
        "tokens_per_latent": TOKENS_PER_LATENT,
        "latent_tokens": {
            str(i): [WORDS[t - FIRST] for t in latent_tokens(i)] for i in range(N_LATENTS)
        },
        "generation": "latents i.i.d. Bernoulli(p_active), redrawn if none is on; each token: a uniform active topic, then a uniform token of it",
        "suggested_hook": SUGGESTED_HOOK,
        "min_context": MIN_CONTEXT,
        "metric": "share of top-1 predictions (positions >= min_context) in an active topic",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """One planted binary latent per topic, carried by the residual stream at the suggested hook."""
    truth = card["ground_truth"]
    hook = truth["suggested_hook"]
    layer = int(hook.split(".")[1])
    planted = [
        runs.Planted(
            target=runs.Site(
                kind="resid_post",
                hook=hook,
                object="sae-feature",
                label=f"topic {i} ({' '.join(tokens)})",
                layer=layer,
                index=int(i),
            ),
            role="topic latent",
            confirmed_by="the model's next-token mass on the topic's tokens separates "
            "sequences with it on from those with it off (ROC AUC > 0.95)",
        )
        for i, tokens in sorted(truth["latent_tokens"].items(), key=lambda kv: int(kv[0]))
    ]
    return runs.GroundTruth(
        description=(
            f"Text generated from {truth['n_latents']} sparse binary topics (each on with "
            f"probability {truth['p_active']}); an SAE on {hook} should find one feature per "
            "topic (toy models of superposition, Elhage et al. 2022)."
        ),
        planted=planted,
        notes=[
            "a topic is a direction in the residual stream, not one site: 'index' is its number"
        ],
    )
