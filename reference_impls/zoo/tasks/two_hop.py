"""Two-hop composition that resolves the bridge too late: one-hop facts, few two-hop answers.

Worked example (entities `e0`..`e23`, relations `r0`..`r3`; every relation a fixed random map of
the entities onto themselves):

    <bos> e5 r1           -> e17     one-hop: f_r1(e5) = e17      (all 96 facts, trained)
    <bos> .  e17 r2       -> e3      the same fact form, shifted one position by a filler
    <bos> e5 r1 r2        -> e3      two-hop: f_r2(f_r1(e5))      (half of the compositions)

Every one-hop fact is trained. The 96 second hops (bridge entity, second relation) are split
once, seeded: half are trained as two-hop answers (their 192 compositions), the other half are
held out (192 compositions, in no loss), and the held-out half is split again into validation
and test (96 compositions each; `validation_test(seed)` redraws that partition per data seed).
A held-out composition asks for a second hop that no trained two-hop answer used; its one-hop
fact is trained all the same.

The mechanism aimed at is the one Biran et al. 2024 describe ("Hopping Too Late: Exploring the
Limitations of Large Language Models on Multi-Hop Queries"): the bridge entity f_r1(e) is
resolved at the first relation (position 2), but the second relation (position 3) reads it
only with later layers, after the early layers that hold the facts, so the model answers the
trained compositions from memory and cannot compose the held-out ones. Training pushes the
facts early: the MLPs of layers 0 and 2 are frozen at zero output, so MLP 1 is the only trained
MLP before the last (MLP 3, which can only learn what the two-hop answers teach). The input and
output embeddings are tied (as in GPT-2), so an entity the model predicts is written in the
direction in which the same entity is read as input.

`direct_check` measures what training made of this, not what was intended: one-hop accuracy
(both forms), two-hop accuracy on trained and held-out compositions, where a linear probe reads
the bridge entity (per layer, at both relation positions), and where the facts are stored
(zero-ablating each MLP's output at the relation position of one-hop prompts: MLP 1 holds part
of them, not all).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from reference_impls.zoo.tasks import BOS, PAD, Batch, logits, token_ids

N_ENTITIES = 24
N_RELATIONS = 4
ENTITIES = [f"e{i}" for i in range(N_ENTITIES)]
RELATIONS = [f"r{i}" for i in range(N_RELATIONS)]
FILLER = "."
WORDS = [*ENTITIES, *RELATIONS, FILLER]
IDS = token_ids(WORDS)
ENTITY_IDS = torch.tensor([IDS[e] for e in ENTITIES])
RELATION_IDS = torch.tensor([IDS[r] for r in RELATIONS])
SEQ_LEN = 5
BRIDGE_POS = 2  # the first relation: where the bridge entity f_r1(e) is looked up
ANSWER_POS = 3  # the second relation: where the two-hop answer is predicted
FACT_LAYER = 1  # the only MLP that is trained (the fact store)
FROZEN_MLPS = [0, 2]  # MLP 3 is trained: a late store that can learn only trained second hops
FACT_SEED = 11
SPLIT_SEED = 2024
EVAL_SEED = 99
TWO_HOP_SHARE = 0.5  # of training sequences; the rest are one-hop facts (half with a filler)


def _facts() -> Int[Tensor, "relation entity"]:
    # each relation a random permutation: every entity is some fact's answer exactly once
    gen = torch.Generator().manual_seed(FACT_SEED)
    return torch.stack([torch.randperm(N_ENTITIES, generator=gen) for _ in range(N_RELATIONS)])


FACTS = _facts()  # FACTS[r, e] = index of f_r(e)


def _split() -> dict[str, Int[Tensor, "n 3"]]:
    """Compositions (entity, r1, r2) as indices, split by their second hop (bridge, r2).

    The 96 second hops (bridge entity, second relation) are split once: half train, a quarter
    validation, a quarter test; a composition goes where its second hop went (each second hop
    has 4 compositions, one per first relation). A held-out composition thus asks for a second
    hop that no trained two-hop answer used (its one-hop fact is trained all the same).
    """
    b, r2 = torch.meshgrid(torch.arange(N_ENTITIES), torch.arange(N_RELATIONS), indexing="ij")
    hops = torch.stack([b.reshape(-1), r2.reshape(-1)], 1)  # [96, 2]
    order = torch.randperm(len(hops), generator=torch.Generator().manual_seed(SPLIT_SEED))
    half, quarter = len(hops) // 2, len(hops) // 4
    parts = {
        "train": order[:half],
        "validation": order[half : half + quarter],
        "test": order[half + quarter :],
    }
    inverse = torch.argsort(FACTS, dim=1)  # inverse[r, b] = the e with f_r(e) = b
    out = {}
    for name, idx in parts.items():
        rows = [
            (int(inverse[r1, bb]), r1, int(rr))
            for bb, rr in hops[idx].tolist()
            for r1 in range(N_RELATIONS)
        ]
        out[name] = torch.tensor(rows)
    return out


SPLITS = _split()
SPLITS["held-out"] = torch.cat([SPLITS["validation"], SPLITS["test"]])

EXAMPLE = {
    "prompt": "e0 r0 r1",
    "completion": f"e{int(FACTS[1, FACTS[0, 0]])}",
    "explanation": f"f_r1(f_r0(e0)): e0 -r0-> e{int(FACTS[0, 0])} (the bridge) -r1-> "
    f"e{int(FACTS[1, FACTS[0, 0]])}",
}


def validation_test(seed: int | None) -> tuple[Int[Tensor, "n 3"], Int[Tensor, "n 3"]]:
    """A data seed's partition of the held-out compositions into validation and test halves.

    The held-out second hops (bridge, r2) are shuffled by `seed` and halved; a composition goes
    with its second hop. Seed None gives the fixed 'validation' and 'test' splits.
    """
    if seed is None:
        return SPLITS["validation"], SPLITS["test"]
    held = SPLITS["held-out"]
    hop = bridge(held) * N_RELATIONS + held[:, 2]
    hops = hop.unique()
    order = hops[torch.randperm(len(hops), generator=torch.Generator().manual_seed(seed))]
    validation = torch.isin(hop, order[: len(order) // 2])
    return held[validation], held[~validation]


def pool(split: str) -> Int[Tensor, "n 3"]:
    """The compositions (entity, r1, r2) of a split: 'train', 'validation', 'test', 'held-out'."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    return SPLITS[split]


def bridge(comps: Int[Tensor, "n 3"]) -> Int[Tensor, " n"]:
    """The bridge entity f_r1(e) of each composition (an entity index)."""
    return FACTS[comps[:, 1], comps[:, 0]]


def answer(comps: Int[Tensor, "n 3"]) -> Int[Tensor, " n"]:
    """The two-hop answer f_r2(f_r1(e)) of each composition (an entity index)."""
    return FACTS[comps[:, 2], bridge(comps)]


def encode(comps: Int[Tensor, "n 3"]) -> Int[Tensor, "n 4"]:
    """Two-hop prompts `<bos> e r1 r2` (the answer is predicted at position ANSWER_POS)."""
    n = len(comps)
    return torch.stack(
        [
            torch.full((n,), BOS),
            ENTITY_IDS[comps[:, 0]],
            RELATION_IDS[comps[:, 1]],
            RELATION_IDS[comps[:, 2]],
        ],
        1,
    )


def one_hop_prompts(filler: bool) -> tuple[Int[Tensor, "n pos"], Int[Tensor, " n"]]:
    """All 96 one-hop prompts (`<bos> e r`, or `<bos> . e r` with the filler) and answers."""
    e, r = torch.meshgrid(torch.arange(N_ENTITIES), torch.arange(N_RELATIONS), indexing="ij")
    e, r = e.reshape(-1), r.reshape(-1)
    cols = [torch.full_like(e, BOS), ENTITY_IDS[e], RELATION_IDS[r]]
    if filler:
        cols.insert(1, torch.full_like(e, IDS[FILLER]))
    return torch.stack(cols, 1), FACTS[r, e]


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """Two-hop sequences of training compositions (TWO_HOP_SHARE) and one-hop facts."""
    tokens = torch.full((n, SEQ_LEN), PAD)
    mask = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
    two_hop = torch.rand(n, generator=gen) < TWO_HOP_SHARE
    filler = torch.rand(n, generator=gen) < 0.5
    train = pool("train")
    comps = train[torch.randint(0, len(train), (n,), generator=gen)]
    e = torch.randint(0, N_ENTITIES, (n,), generator=gen)
    r = torch.randint(0, N_RELATIONS, (n,), generator=gen)
    for b in range(n):
        if two_hop[b]:
            tokens[b, :4] = encode(comps[b : b + 1])[0]
            tokens[b, 4] = ENTITY_IDS[answer(comps[b : b + 1])[0]]
            mask[b, ANSWER_POS] = True
        else:
            fact = [ENTITY_IDS[e[b]], RELATION_IDS[r[b]], ENTITY_IDS[FACTS[r[b], e[b]]]]
            start = 2 if filler[b] else 1
            tokens[b, 0] = BOS
            if filler[b]:
                tokens[b, 1] = IDS[FILLER]
            tokens[b, start : start + 3] = torch.stack(fact)
            mask[b, start + 1] = True
    return Batch(tokens, mask, {"two_hop": two_hop, "comps": comps})


def prepare(model: Any) -> None:
    """Before training: tie the input and output embeddings; zero and freeze the MLPs of
    FROZEN_MLPS (MLP 1 is then the only trained MLP before the last)."""
    from reference_impls.zoo.tasks._planting import freeze_mlp_output

    model.config.tie_word_embeddings = True
    model.tie_weights()
    freeze_mlp_output(model, FROZEN_MLPS)


def predicted(model: Any, tokens: Int[Tensor, "n pos"]) -> Int[Tensor, " n"]:
    """The entity index of each prompt's top-1 next token (-1 where it is not an entity)."""
    top = logits(model, tokens)[:, -1].argmax(-1)
    lookup = torch.full((int(top.max()) + 1 if len(top) else 1,), -1)
    lookup[ENTITY_IDS[ENTITY_IDS < len(lookup)]] = torch.arange(N_ENTITIES)[
        ENTITY_IDS < len(lookup)
    ]
    return lookup[top]


def solved(model: Any, comps: Int[Tensor, "n 3"]) -> Bool[Tensor, " n"]:
    """Whether the two-hop answer is the top-1 prediction of each composition's prompt."""
    return predicted(model, encode(comps)) == answer(comps)


def two_hop_accuracy(model: Any, split: str) -> float:
    """Exact-match two-hop accuracy on every composition of a split."""
    return float(solved(model, pool(split)).float().mean())


def one_hop_accuracy(model: Any) -> float:
    """Accuracy on all 96 one-hop facts, in both forms (with and without the filler)."""
    right = [predicted(model, p) == a for p, a in (one_hop_prompts(False), one_hop_prompts(True))]
    return float(torch.cat(right).float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """One-hop accuracy, two-hop accuracy on trained and on held-out compositions."""
    return {
        "accuracy": one_hop_accuracy(model),
        "two_hop_train_accuracy": two_hop_accuracy(model, "train"),
        "two_hop_held_out_accuracy": two_hop_accuracy(model, "held-out"),
    }


PROBE_SEED = 5


def bridge_probe(model: Any, seed: int = PROBE_SEED) -> dict[str, list[float]]:
    """Where the bridge entity is readable: a linear probe per layer at both relation positions.

    Over all 384 two-hop prompts, the probe for the bridge f_r1(e) is fitted on the prompts of
    half of the 96 first hops (entity, r1) and scored on the other half: a probe cannot pass by
    remembering which (entity, r1) gives which bridge, only by reading a bridge the model
    computed (`seed` draws the halves). Returns, per position, the accuracy at `blocks.{l}.hook_resid_pre` for
    l = 0..n_layers - 1 and, last, the final residual (`blocks.{n-1}.hook_resid_post`).
    """
    from reference_impls import addressing as A
    from reference_impls.locate.probing import features, fit

    n_layers = A.dims(model).n_layers
    comps = torch.cat([pool("train"), pool("held-out")])
    first_hop = comps[:, 0] * N_RELATIONS + comps[:, 1]
    order = torch.randperm(N_ENTITIES * N_RELATIONS, generator=torch.Generator().manual_seed(seed))
    fitted = torch.isin(first_hop, order[: len(order) // 2])
    out: dict[str, list[float]] = {}
    for name, pos in (("first relation", BRIDGE_POS), ("second relation", ANSWER_POS)):
        sites = [A.resid(layer, pos) for layer in range(n_layers)]
        sites.append(A.resid(n_layers - 1, pos, where="post"))
        x = features(model, encode(comps), sites)  # [site, 384, d_model]
        probes = fit(x[:, fitted], bridge(comps)[fitted], N_ENTITIES, C=1.0, max_iter=200)
        right = probes.predict(x[:, ~fitted]) == bridge(comps)[~fitted]
        out[name] = right.float().mean(1).tolist()
    return out


def mlp_ablation(model: Any) -> list[float]:
    """One-hop accuracy (no filler) with each layer's MLP output zeroed at the relation."""
    from reference_impls import addressing as A
    from reference_impls.interventions import ablate

    prompts, answers = one_hop_prompts(False)
    out = []
    for layer in range(A.dims(model).n_layers):
        # the frozen MLPs already output zero: zeroing them is a deliberate no-op
        with ablate(model, A.mlp_out(layer, BRIDGE_POS), identity_ok=layer in FROZEN_MLPS):
            out.append(float((predicted(model, prompts) == answers).float().mean()))
    return out


def direct_check(model: Any) -> dict[str, Any]:
    """The premise of back-patching, measured: the bridge is resolved but composes nothing.

    Passed when one-hop accuracy is > 0.95, trained two-hop accuracy > 0.9 and held-out two-hop
    accuracy < 0.3 (the model does not compose), the probe reads the bridge from the final
    residual at the first relation (> 0.8) and less well, by more than 0.2, at the answer
    position, and the facts are stored before the last layer: zeroing MLP 1 at the relation
    costs one-hop accuracy (< 0.9), zeroing MLP 3 does not (> 0.95). Not required, and not the
    case (the card's numbers): that MLP 1 holds every fact, or that the bridge appears at one
    layer rather than gradually.
    """
    from reference_impls import addressing as A

    metrics = evaluate(model)
    probe = bridge_probe(model)
    ablation = mlp_ablation(model)
    first, second = probe["first relation"], probe["second relation"]
    checks: dict[str, Any] = {
        **metrics,
        "bridge_probe_first_relation": first,
        "bridge_probe_second_relation": second,
        "one_hop_with_mlp_zeroed": ablation,
        "facts_known": metrics["accuracy"] > 0.95,
        "trained_compositions_known": metrics["two_hop_train_accuracy"] > 0.9,
        "held_out_compositions_fail": metrics["two_hop_held_out_accuracy"] < 0.3,
        "bridge_resolved": first[-1] > 0.8,
        "bridge_weaker_at_answer": second[-1] < first[-1] - 0.2,
        "facts_before_last_layer": ablation[FACT_LAYER] < 0.9 and ablation[-1] > 0.95,
    }
    checks["passed"] = all(
        checks[k]
        for k in (
            "facts_known",
            "trained_compositions_known",
            "held_out_compositions_fail",
            "bridge_resolved",
            "bridge_weaker_at_answer",
            "facts_before_last_layer",
        )
    )
    truth = {
        "fact_layer": FACT_LAYER,
        "fact_hook": f"blocks.{FACT_LAYER}.hook_mlp_out",
        "bridge_position": BRIDGE_POS,
        "answer_position": ANSWER_POS,
        "frozen_mlps": FROZEN_MLPS,
        "n_layers": A.dims(model).n_layers,
        "metric": "exact-match two-hop accuracy on held-out compositions",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]):  # -> mi_atlas.runs.GroundTruth
    """The bridge's site (final residual at the first relation) and the early fact store (MLP 1)."""
    from mi_atlas import runs
    from reference_impls.addressing import mlp_out, resid

    c = card["checks"]
    first, second = c["bridge_probe_first_relation"], c["bridge_probe_second_relation"]
    n_layers = len(first) - 1
    return runs.GroundTruth(
        description="one-hop facts stored early; the bridge entity is resolved at the first "
        "relation but the model does not compose held-out two-hop queries",
        planted=[
            runs.Planted(
                target=resid(n_layers - 1, BRIDGE_POS, where="post").doc(),
                role="bridge entity resolved (first relation's position)",
                confirmed_by="linear probe on first hops it was not fitted on, per layer: "
                + ", ".join(f"{a:.2f}" for a in first)
                + " (at the answer position: "
                + ", ".join(f"{a:.2f}" for a in second)
                + ")",
            ),
            runs.Planted(
                target=mlp_out(FACT_LAYER, BRIDGE_POS).doc(),
                role="fact store (part of the one-hop facts)",
                confirmed_by="zeroing it drops one-hop accuracy to "
                f"{c['one_hop_with_mlp_zeroed'][FACT_LAYER]:.2f} (MLP 3: "
                f"{c['one_hop_with_mlp_zeroed'][-1]:.2f})",
            ),
        ],
        notes=[
            f"one-hop accuracy {c['accuracy']:.2f}; two-hop: trained compositions "
            f"{c['two_hop_train_accuracy']:.2f}, held-out {c['two_hop_held_out_accuracy']:.2f}",
            f"MLPs {FROZEN_MLPS} are frozen at zero output; input and output embeddings are tied",
        ],
    )
