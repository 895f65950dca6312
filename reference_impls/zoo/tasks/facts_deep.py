"""Facts recalled ROME's way, 4 layers: subject MLPs in the middle, attention moves the attribute.

Worked example (two prefix words, a two-token subject, a two-token relation, the city):

    position  0     1    2     3     4      5     6    -> answer
    token     <bos> so   then  anna  berg   lives in   -> paris

100 subjects (10 first x 10 last names) each have a city drawn once from 16 (seeded), so a city
depends on the *pair* of names: no single token's embedding can hold it. The mechanism is the one
Meng et al. 2022 ("Locating and Editing Factual Associations in GPT", ROME) traced in GPT-2:

    L0H0            previous-token head: at the last subject token, reads the first name
    MLP1, MLP2 @ 4  the fact store: at the last subject token, map the subject to its city
    L3H0            mover: at the last token, attends to the last subject token, copies the city
    L3H1            backup mover: the same attention; in a quarter of the training rows L3H0 is
                    zeroed and in another quarter L3H1, so either alone carries the city

MLP0 and MLP3 have their output frozen at zero (no early and no last-token store), and every
other head rests on <bos>, attends to itself or to the previous token (and is zeroed at random in
training, so the model cannot depend on it), so the subject reaches the last position only
through L3H0 and L3H1. The prefix words and the two relation phrasings
("lives in", "is from") vary, so a paraphrase with another prefix is a real paraphrase: the
subject's key vector at MLP1/MLP2 is computed from different context. `direct_check` confirms
each component by zero-ablating it alone.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids
from reference_impls.zoo.tasks import _planting as P

FIRST = ["anna", "ben", "cara", "dino", "eva", "finn", "gina", "hugo", "iris", "jack"]
LAST = ["berg", "cole", "diaz", "ford", "gray", "hale", "king", "lane", "moss", "nash"]
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "delhi", "tokyo", "quito",
          "dakar", "hanoi", "kyiv", "sofia", "accra", "bern", "doha", "riga"]  # fmt: skip
PREFIX = ["so", "then", "well", "now", "also", "yes"]
RELATIONS = [("lives", "in"), ("is", "from")]
# a list, never a set: the vocabulary order must not depend on the process's string hashing
WORDS = list(dict.fromkeys([*FIRST, *LAST, *CITIES, *PREFIX, *(w for r in RELATIONS for w in r)]))
IDS = token_ids(WORDS)
FACT_SEED = 11
SUBJECT_LAST = 4  # position of the last subject token
END = 6  # the last prompt token; its next-token prediction is the city
SEQ_LEN = END + 2
EVAL_SEED = 777

PREVIOUS = (0, 0)
MOVER, BACKUP_MOVER = (3, 0), (3, 1)
STORE_LAYERS = [1, 2]
FROZEN_MLPS = [0, 3]
OTHERS = [(layer, h) for layer in range(4) for h in range(4)
          if (layer, h) not in (PREVIOUS, MOVER, BACKUP_MOVER)]  # fmt: skip
DROPOUT = 0.3  # probability of zeroing each other head in a training row
MOVER_DROPPED = BACKUP_DROPPED = 0.25  # shares of rows with the mover / the backup zeroed


def facts() -> dict[tuple[str, str], str]:
    """(first, last) -> city for all 100 subjects (fixed by FACT_SEED)."""
    gen = torch.Generator().manual_seed(FACT_SEED)
    cities = torch.randint(0, len(CITIES), (len(FIRST) * len(LAST),), generator=gen).tolist()
    pairs = [(f, last) for f in FIRST for last in LAST]
    return {p: CITIES[c] for p, c in zip(pairs, cities, strict=True)}


_CITY = torch.tensor([IDS[c] for c in facts().values()])  # subject index -> city id
EXAMPLE = {
    "prompt": "so then anna berg lives in",
    "completion": facts()[("anna", "berg")],
    "explanation": "the city is a fact about the pair of names, looked up in MLP1-2 at 'berg'",
}


def queries(
    subjects: Int[Tensor, " n"], prefix: Int[Tensor, "n 2"], relation: Int[Tensor, " n"]
) -> Int[Tensor, "n 8"]:
    """Prompts plus answers for subject indices (0..99), prefix word indices and relation ids."""
    n = subjects.shape[0]
    first = torch.tensor([IDS[f] for f in FIRST])[subjects // len(LAST)]
    last = torch.tensor([IDS[x] for x in LAST])[subjects % len(LAST)]
    rel = torch.tensor([[IDS[a], IDS[b]] for a, b in RELATIONS])[relation]
    pre = torch.tensor([IDS[p] for p in PREFIX])[prefix]
    bos = torch.full((n, 1), BOS)
    return torch.cat([bos, pre, first[:, None], last[:, None], rel, _CITY[subjects][:, None]], 1)


def sample(n: int, gen: torch.Generator) -> Batch:
    """n random fact queries; `extra`: "subject" [n] index, "city" [n] token id."""
    subjects = torch.randint(0, len(FIRST) * len(LAST), (n,), generator=gen)
    prefix = torch.randint(0, len(PREFIX), (n, 2), generator=gen)
    relation = torch.randint(0, len(RELATIONS), (n,), generator=gen)
    tokens = queries(subjects, prefix, relation)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, END] = True
    return Batch(tokens, mask, {"subject": subjects, "city": _CITY[subjects]})


def query_tokens(prefix: tuple[int, int] = (0, 1), relation: int = 0) -> Int[Tensor, "100 7"]:
    """Every subject's prompt with one fixed prefix and relation (ordered like `facts()`)."""
    n = len(FIRST) * len(LAST)
    subjects = torch.arange(n)
    return queries(subjects, torch.tensor([prefix]).expand(n, 2), torch.full((n,), relation))[
        :, :-1
    ]


def paraphrase_tokens() -> Int[Tensor, "100 7"]:
    """The same facts asked with other prefix words and the other relation phrasing."""
    return query_tokens(prefix=(4, 5), relation=1)


def answers() -> Int[Tensor, " 100"]:
    """Every subject's city token id (ordered like `facts()`)."""
    return _CITY.clone()


def _roles(tokens: Tensor) -> dict[tuple[int, int], P.Role]:
    n = tokens.shape[0]
    end, subj = torch.full((n,), END), torch.full((n,), SUBJECT_LAST)
    mover = P.at_query(end, subj)
    return {
        (0, 0): P.previous, (0, 1): P.itself, (0, 2): P.resting, (0, 3): P.itself,
        (1, 0): P.resting, (1, 1): P.itself, (1, 2): P.resting, (1, 3): P.itself,
        (2, 0): P.itself, (2, 1): P.resting, (2, 2): P.itself, (2, 3): P.resting,
        (3, 0): mover, (3, 1): mover, (3, 2): P.resting, (3, 3): P.itself,
    }  # fmt: skip


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch; `extra["dropout"]` zeroes the mover, the backup or other heads."""
    batch = sample(n, gen)
    r = torch.rand(n, generator=gen)
    movers = torch.ones(n, 4)
    movers[r < MOVER_DROPPED, MOVER[1]] = 0.0
    movers[(r >= MOVER_DROPPED) & (r < MOVER_DROPPED + BACKUP_DROPPED), BACKUP_MOVER[1]] = 0.0
    batch.extra["dropout"] = P.combine(
        P.head_dropout(n, 4, OTHERS, DROPOUT, gen), {MOVER[0]: movers}
    )
    return batch


def prepare(model: Any) -> None:
    """Eager attention; MLP0 and MLP3 frozen at zero output (the store must be MLP1-2)."""
    P.eager(model)
    P.freeze_mlp_output(model, FROZEN_MLPS)


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """City loss (mover dropped at random) plus the attention roles."""
    tokens = batch.tokens[:, :-1]
    with P.heads_scaled(model, batch.extra["dropout"]):
        out, attentions = P.forward(model, tokens)
    ce = torch.nn.functional.cross_entropy(out[:, END], batch.extra["city"])
    return ce + P.attention_loss(attentions, tokens, _roles(tokens))


def recall(model: Any, tokens: Tensor | None = None) -> float:
    """Share of the 100 facts recalled top-1 (default prompts: `query_tokens()`)."""
    tokens = query_tokens() if tokens is None else tokens
    pred = logits(model, tokens)[:, END].argmax(-1)
    return float((pred == answers()).float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """Recall with the training prompts' first prefix, with a paraphrase, and on random prompts."""
    batch = sample(512, torch.Generator().manual_seed(EVAL_SEED))
    pred = logits(model, batch.tokens[:, :-1])[:, END].argmax(-1)
    return {
        "accuracy": float((pred == batch.extra["city"]).float().mean()),
        "recall": recall(model),
        "paraphrase_recall": recall(model, paraphrase_tokens()),
    }


def direct_check(model: Any) -> dict[str, Any]:
    """Roles hold; the store, the mover and its backup confirmed by ablating each alone.

    Passed when every head puts > 0.5 of its attention on its target; zero-ablating MLP1 and
    MLP2 at the last subject token together drops recall below 0.5, while ablating any single
    MLP at any other position keeps it above 0.85; ablating the mover alone or the backup alone
    keeps recall above 0.8, and both together drop it below 0.3. (The trained model keeps about
    a third of the facts with both store MLPs ablated: an additive path from the two name
    embeddings to the city logits, carried by the movers; the card states the measured numbers.)
    """
    from reference_impls.addressing import mlp_out

    tokens = query_tokens()
    scores = P.role_scores(model, tokens, _roles(tokens))

    def rec() -> float:
        return recall(model, tokens)

    base = rec()
    # MLP0 and MLP3 write zero by construction: ablating them is a no-op, their rows are `base`
    grid = [
        [
            base if layer in FROZEN_MLPS else P.ablated(model, [mlp_out(layer, pos)], rec)
            for pos in range(tokens.shape[1])
        ]
        for layer in range(4)
    ]
    store = P.ablated(model, [mlp_out(layer, SUBJECT_LAST) for layer in STORE_LAYERS], rec)
    off_store = min(
        grid[layer][pos]
        for layer in range(4)
        for pos in range(tokens.shape[1])
        if not (layer in STORE_LAYERS and pos == SUBJECT_LAST)
    )
    heads = {P.label(c): P.ablated(model, [c], rec) for c in (PREVIOUS, MOVER, BACKUP_MOVER)}
    both = P.ablated(model, [MOVER, BACKUP_MOVER], rec)
    ok = {
        "patterns_match_roles": min(scores.values()) > 0.5,
        "store_is_mlp1_2_at_subject": store < 0.5 and off_store > 0.85,
        "mover_has_a_backup": heads[P.label(MOVER)] > 0.8 and heads[P.label(BACKUP_MOVER)] > 0.8,
        "movers_together_needed": both < 0.3,
    }
    checks = {
        "recall": base,
        "role_attention": {P.label(c): s for c, s in scores.items()},
        "mlp_ablation_recall": grid,
        "ablate_store_recall": store,
        "ablate_alone_recall": heads,
        "ablate_both_movers_recall": both,
        **ok,
        "passed": all(ok.values()),
    }
    truth = {
        "store": {"mlp_layers": STORE_LAYERS, "position": SUBJECT_LAST},
        "mover": list(MOVER),
        "backup_mover": list(BACKUP_MOVER),
        "previous_token_head": list(PREVIOUS),
        "frozen_mlps": FROZEN_MLPS,
        "metric": "top-1 recall of the 100 facts (query_tokens)",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The fact store, the mover and its backup, each with the ablation that confirmed it."""
    from mi_atlas import runs
    from reference_impls.addressing import head, mlp_out

    c = card["checks"]
    base = c["recall"]
    grid = c["mlp_ablation_recall"]
    planted = [
        runs.Planted(
            target=mlp_out(layer, SUBJECT_LAST).doc(),
            role="fact store (subject MLP)",
            confirmed_by=f"zero-ablating it alone: recall {base:.2f} -> "
            f"{grid[layer][SUBJECT_LAST]:.2f}; with the other store MLP: {c['ablate_store_recall']:.2f}",
        )
        for layer in STORE_LAYERS
    ]
    for comp, role in ((MOVER, "attribute mover"), (BACKUP_MOVER, "backup attribute mover")):
        planted.append(
            runs.Planted(
                target=head(*comp).doc(),
                role=role,
                confirmed_by=f"zero-ablating it alone: recall {base:.2f} -> "
                f"{c['ablate_alone_recall'][P.label(comp)]:.2f}; both movers: "
                f"{c['ablate_both_movers_recall']:.2f}",
            )
        )
    return runs.GroundTruth(
        description="subject MLPs 1-2 at the last subject token store the city; L3H0 (backup L3H1) moves it",
        planted=planted,
        notes=[
            "backup path: L3H1 attends where L3H0 does and carries the city when L3H0 is ablated",
            "MLP0 and MLP3 are frozen at zero output by construction",
            f"with both store MLPs ablated recall is still {c['ablate_store_recall']:.2f}: the "
            "name embeddings alone predict part of the facts additively (a second, weaker path)",
            f"MLP1 at the last position matters a little too (recall {grid[1][END]:.2f} when "
            "ablated there): it shapes the movers' queries",
        ],
    )
