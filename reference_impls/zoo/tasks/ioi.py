"""Indirect object identification (IOI), 4 layers: name movers, S-inhibition, negative and backup.

Worked example (three filler words are spread at random over three slots, so no name sits at a
fixed position):

    position  0     1     2     3     4    5     6     7     8    9    -> answer
    token     <bos> then  mary  and   john soon  john  gave  later to   -> mary

The subject S (john) occurs twice; the answer is the indirect object IO (mary), the name of the
pair that is not repeated. The mechanism is the one Wang et al. 2022 ("Interpretability in the
Wild") found in GPT-2 small, planted here by giving each head's attention a role (`_planting`):

    L0H0  duplicate-token   at S2, attends to S1 (the earlier copy of the same name)
    L1H0  S-inhibition      at the last token, attends to S2: tells the name movers which name is S
    L2H0, L2H1  name movers at the last token, attend to IO and copy it to the logits
    L3H0  backup name mover attends to IO; carries the answer when the name movers are ablated
    L3H1  negative name mover  attends to IO too, but writes against it

Every other head rests on <bos>, attends to itself or to the previous token, and is dropped at
random in training (probability 0.3) so that the model cannot come to depend on it. The backup
is planted by training rows in which both name movers are zeroed (25%) and rows in which the
backup is zeroed (25%); the negative head by a hinge on its direct logit effect, and MLP3 is
frozen at zero output so that nothing after layer 3 can turn its write around.

What training produced, measured (the card holds the numbers): the S-inhibition head and the
negative name mover do what they were planted for, each alone; the name movers and the backup
are *redundant* with each other and with the negative head (which writes IO up and S up more):
ablating any one of them changes the logit difference by less than 0.1 of 24.8, because the
final layer norm rescales what remains (self-repair); only ablating the name movers and the
backup together costs accuracy. The duplicate-token head is not needed: S2 is the last name, so
the S-inhibition head finds it by position. A locate method that scores heads one at a time
should therefore rank the S-inhibition head first and underrate the movers: this model shows
that failure. `direct_check` confirms each component by zero-ablating it alone (and the name movers with and without the backup), on the logit difference IO - S.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids
from reference_impls.zoo.tasks import _planting as P

NAMES = ["mary", "john", "anna", "paul", "lisa", "mark", "emma", "adam",
         "sara", "tom", "kate", "ben", "lucy", "sam", "nina", "dan"]  # fmt: skip
FILLERS = ["then", "soon", "later", "today", "again", "happily"]
AND, GAVE, TO = "and", "gave", "to"
WORDS = [*NAMES, *FILLERS, AND, GAVE, TO]
IDS = token_ids(WORDS)
N_FILLERS = 3  # spread over the slots before A, between B and S2, and after "gave"
END = 9  # position of "to", whose next-token prediction is the answer
SEQ_LEN = END + 2  # with the answer
EVAL_SEED = 4321

DUPLICATE, S_INHIBITION = (0, 0), (1, 0)
NAME_MOVERS = [(2, 0), (2, 1)]
BACKUP, NEGATIVE = (3, 0), (3, 1)
CIRCUIT = [DUPLICATE, S_INHIBITION, *NAME_MOVERS, BACKUP, NEGATIVE]
OTHERS = [(layer, h) for layer in range(4) for h in range(4) if (layer, h) not in CIRCUIT]
DROPOUT = 0.3  # probability of zeroing each non-circuit head in a training row
MOVERS_DROPPED = 0.25  # share of training rows with both name movers zeroed
BACKUP_DROPPED = 0.25  # share of rows with the backup zeroed
FROZEN_MLPS = [3]
NEGATIVE_MARGIN = 1.0  # the negative head must lower logit(IO) - logit(S) by at least this
EXAMPLE = {
    "prompt": "then mary and john soon john gave later to",
    "completion": "mary",
    "explanation": "john is repeated, so the answer is the other name of the pair",
}


def sample(n: int, gen: torch.Generator) -> Batch:
    """n IOI sentences with answers.

    `extra`: "io", "s" [n] token ids; "io_pos", "s1_pos", "s2_pos" [n] positions.
    """
    names = torch.argsort(torch.rand(n, len(NAMES), generator=gen), 1)[:, :2] + IDS[NAMES[0]]
    s_first = torch.rand(n, generator=gen) < 0.5  # S is A (the first name) or B
    a, b = names[:, 0], names[:, 1]
    s = torch.where(s_first, a, b)
    io = torch.where(s_first, b, a)
    # split N_FILLERS over three slots: uniform over compositions
    cuts = torch.sort(torch.randint(0, N_FILLERS + 1, (n, 2), generator=gen), 1).values
    k1, k2 = cuts[:, 0], cuts[:, 1] - cuts[:, 0]
    fill = torch.randint(0, len(FILLERS), (n, N_FILLERS), generator=gen) + IDS[FILLERS[0]]
    tokens = torch.zeros(n, SEQ_LEN, dtype=torch.long)
    extra = {k: torch.zeros(n, dtype=torch.long) for k in ("io_pos", "s1_pos", "s2_pos")}
    for r in range(n):
        f = fill[r].tolist()
        p, q = int(k1[r]), int(k2[r])
        row = [BOS, *f[:p], int(a[r]), IDS[AND], int(b[r]), *f[p : p + q], int(s[r]), IDS[GAVE]]
        row += [*f[p + q :], IDS[TO], int(io[r])]
        tokens[r] = torch.tensor(row)
        a_pos = 1 + p
        extra["io_pos"][r] = a_pos + 2 if bool(s_first[r]) else a_pos
        extra["s1_pos"][r] = a_pos if bool(s_first[r]) else a_pos + 2
        extra["s2_pos"][r] = a_pos + 3 + q
    mask = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
    mask[:, END] = True
    return Batch(tokens, mask, {"io": io, "s": s, **extra})


def roles(batch: Batch) -> dict[tuple[int, int], P.Role]:
    """Every head's attention role for this batch (see the module docstring)."""
    n = batch.tokens.shape[0]
    end = torch.full((n,), END)

    def s_inhibition(tokens: Tensor) -> Tensor:
        return P.at_query(end, batch.extra["s2_pos"])(tokens)

    def to_io(tokens: Tensor) -> Tensor:
        return P.at_query(end, batch.extra["io_pos"])(tokens)

    def duplicate(tokens: Tensor) -> Tensor:
        return P.earlier_occurrence(tokens)

    return {
        (0, 0): duplicate, (0, 1): P.resting, (0, 2): P.resting, (0, 3): P.itself,
        (1, 0): s_inhibition, (1, 1): P.resting, (1, 2): P.itself, (1, 3): P.previous,
        (2, 0): to_io, (2, 1): to_io, (2, 2): P.resting, (2, 3): P.itself,
        (3, 0): to_io, (3, 1): to_io, (3, 2): P.resting, (3, 3): P.previous,
    }  # fmt: skip


ROLE_NAMES = {
    DUPLICATE: "duplicate-token head",
    S_INHIBITION: "S-inhibition head",
    NAME_MOVERS[0]: "name mover",
    NAME_MOVERS[1]: "name mover",
    NEGATIVE: "negative name mover",
    BACKUP: "backup name mover",
}


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch; `extra["dropout"]` holds the per-row head masks (see the docstring)."""
    batch = sample(n, gen)
    r = torch.rand(n, generator=gen)
    movers = torch.ones(n, 4)
    movers[r < MOVERS_DROPPED, NAME_MOVERS[0][1]] = 0.0
    movers[r < MOVERS_DROPPED, NAME_MOVERS[1][1]] = 0.0
    backup = torch.ones(n, 4)
    backup[(r >= MOVERS_DROPPED) & (r < MOVERS_DROPPED + BACKUP_DROPPED), BACKUP[1]] = 0.0
    batch.extra["dropout"] = P.combine(
        P.head_dropout(n, 4, OTHERS, DROPOUT, gen), {NAME_MOVERS[0][0]: movers, BACKUP[0]: backup}
    )
    return batch


def prepare(model: Any) -> None:
    """Eager attention; MLP3 frozen at zero output."""
    P.eager(model)
    P.freeze_mlp_output(model, FROZEN_MLPS)


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """Answer loss (name movers dropped at random) + attention roles + negative-head hinge."""
    tokens = batch.tokens[:, :-1]
    with P.heads_scaled(model, batch.extra["dropout"]):
        negative_out = P.head_output(model, NEGATIVE[0], [NEGATIVE[1]])
        out, attentions = P.forward(model, tokens)
        neg = negative_out()[:, END]  # [n, d_model]: the negative head's write at "to"
    ce = torch.nn.functional.cross_entropy(out[:, END], batch.extra["io"])
    w_u = model.lm_head.weight * model.transformer.ln_f.weight  # [vocab, d_model]
    direct = (neg * (w_u[batch.extra["io"]] - w_u[batch.extra["s"]])).sum(-1)
    hinge = torch.relu(direct + NEGATIVE_MARGIN).mean()
    roles_loss = P.attention_loss(attentions, tokens, roles(batch))
    return ce + roles_loss + hinge


def eval_batch(n: int = 512, seed: int = EVAL_SEED) -> Batch:
    """The fixed held-out set of the card's numbers."""
    return sample(n, torch.Generator().manual_seed(seed))


def prompts(n: int = 64, seed: int = 0) -> tuple[Int[Tensor, "n 10"], Tensor, Tensor]:
    """(prompts without the answer, IO ids, S ids) for locate methods."""
    batch = eval_batch(n, seed)
    return batch.tokens[:, :-1], batch.extra["io"], batch.extra["s"]


def patching_pair(n: int = 32, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Clean prompts, corrupted prompts (S2 replaced by IO, so IO becomes S) and clean answers."""
    batch = eval_batch(n, seed)
    clean = batch.tokens[:, :-1]
    corrupted = clean.clone()
    rows = torch.arange(n)
    corrupted[rows, batch.extra["s2_pos"]] = batch.extra["io"]
    return clean, corrupted, batch.extra["io"]


def logit_diff(model: Any, batch: Batch) -> float:
    """Mean logit(IO) - logit(S) at the last position."""
    out = logits(model, batch.tokens[:, :-1])[:, END]
    rows = torch.arange(out.shape[0])
    return float((out[rows, batch.extra["io"]] - out[rows, batch.extra["s"]]).mean())


def accuracy(model: Any, batch: Batch) -> float:
    """Share of prompts whose top-1 next token is IO."""
    pred = logits(model, batch.tokens[:, :-1])[:, END].argmax(-1)
    return float((pred == batch.extra["io"]).float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """Accuracy and mean logit difference IO - S on the held-out set."""
    batch = eval_batch()
    return {"accuracy": accuracy(model, batch), "logit_diff": logit_diff(model, batch)}


def direct_check(model: Any) -> dict[str, Any]:
    """Every head attends as its role says; each component confirmed by ablating it alone.

    Passed when every head puts > 0.5 of its attention on its role's target, and under zero
    ablation: the S-inhibition head alone drops accuracy below 0.7; each name mover alone lowers
    the logit difference (by however little: they are redundant); the negative name mover alone
    raises it by more than 0.1; the name movers and the backup together cost more than 0.2
    accuracy while the name movers alone cost none (the backup covers); every other head alone
    keeps accuracy above 0.9.
    The duplicate-token head's effect is measured and reported, not required (see the card).
    """
    batch = eval_batch()
    scores = P.role_scores(model, eval_batch(128).tokens[:, :-1], roles(eval_batch(128)))
    base_acc, base_ld = accuracy(model, batch), logit_diff(model, batch)

    def ld() -> float:
        return logit_diff(model, batch)

    def acc() -> float:
        return accuracy(model, batch)

    components = CIRCUIT
    alone_ld = {P.label(c): P.ablated(model, [c], ld) for c in components}
    alone_acc = {P.label(c): P.ablated(model, [c], acc) for c in components}
    movers_acc = P.ablated(model, NAME_MOVERS, acc)
    movers_backup_acc = P.ablated(model, [*NAME_MOVERS, BACKUP], acc)
    others_ld = {P.label(c): P.ablated(model, [c], ld) for c in OTHERS}
    others_acc = {P.label(c): P.ablated(model, [c], acc) for c in OTHERS}
    ok = {
        "patterns_match_roles": min(scores.values()) > 0.5,
        "s_inhibition_needed": alone_acc[P.label(S_INHIBITION)] < 0.7,
        "each_name_mover_raises_logit_diff": all(
            alone_ld[P.label(c)] < base_ld for c in NAME_MOVERS
        ),
        "negative_mover_lowers_logit_diff": alone_ld[P.label(NEGATIVE)] > base_ld + 0.1,
        "backup_takes_over": movers_acc >= base_acc - 0.02 and movers_backup_acc < base_acc - 0.2,
        "other_heads_not_needed": min(others_acc.values()) > 0.9,
    }
    checks = {
        "accuracy": base_acc,
        "logit_diff": base_ld,
        "role_attention": {P.label(c): s for c, s in scores.items()},
        "ablate_alone_logit_diff": alone_ld,
        "ablate_alone_accuracy": alone_acc,
        "ablate_other_heads_logit_diff": others_ld,
        "ablate_other_heads_accuracy": others_acc,
        "ablate_name_movers_accuracy": movers_acc,
        "ablate_name_movers_and_backup_accuracy": movers_backup_acc,
        **ok,
        "passed": all(ok.values()),
    }
    truth = {
        "heads": {P.label(c): ROLE_NAMES[c] for c in components},
        "metric": "logit(IO) - logit(S) at the last position (eval_batch)",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The planted IOI circuit with each head's role and the ablation that confirmed it."""
    from mi_atlas import runs
    from reference_impls.addressing import head

    c = card["checks"]
    base = c["logit_diff"]

    def confirmed(comp: tuple[int, int]) -> str:
        return (
            f"zero-ablating {P.label(comp)} alone: logit diff {base:.2f} -> "
            f"{c['ablate_alone_logit_diff'][P.label(comp)]:.2f}, accuracy "
            f"{c['accuracy']:.2f} -> {c['ablate_alone_accuracy'][P.label(comp)]:.2f}"
        )

    planted = [
        runs.Planted(target=head(*comp).doc(), role=role, confirmed_by=confirmed(comp))
        for comp, role in ROLE_NAMES.items()
    ]
    notes = [
        "name movers, backup and negative head are redundant: each alone moves the logit "
        "difference by less than 0.1 (final layer norm self-repair); see the card",
        f"backup: with both name movers ablated accuracy is "
        f"{c['ablate_name_movers_accuracy']:.2f}; with the backup also ablated "
        f"{c['ablate_name_movers_and_backup_accuracy']:.2f}",
        "the negative name mover raises the logit difference when ablated: a method that ranks "
        "by |effect| should find it, one that ranks by signed effect ranks it last",
    ]
    return runs.GroundTruth(
        description="IOI circuit: duplicate-token -> S-inhibition -> name movers (+ negative, backup)",
        planted=planted,
        notes=notes,
    )
