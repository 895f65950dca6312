"""Two languages, one grammar: the same sentences in two vocabularies, with planted language neurons.

Worked example (the verb is looked up from adjective and noun in a table both languages share):

    en:  <bos> the red cat sees . the old owl runs . the big dog eats .
    fr:  <bos> le rouge chat voit . le vieux hibou court . le grand chien mange .

A sentence is DET ADJ NOUN VERB "."; adjective and noun are random, the verb is VERB_TABLE[adj][noun]
(the same table in both languages, so the grammar is shared and only the words differ), and a
sequence holds three sentences of one language. Predicting the verb is a nonlinear lookup; the
MLPs do part of it and attention (through its softmax) the rest, so the planted neurons matter
for their language but are not all of it (see the direct check's numbers in the card).

Language-specific neurons are planted by the training objective (the mechanism the survey's
multilingual papers find, e.g. Tang et al. 2024, "Language-Specific Neurons"): in each MLP layer
a fixed random set of neurons belongs to each language. While training on English text the
French neurons are switched off and penalised for firing (and vice versa), and the few shared
neurons are dropped half of the time so that each language's own neurons must suffice. The
direct check ablates each set and measures verb accuracy in both languages.

What "penalised for firing" means is the one parameter `silence` of `loss` and `direct_check`:
"post" (this 2-layer model) penalises the neuron's output, so its pre-activation settles near 0
and GELU(x) > 0 iff x > 0: the silenced neurons still fire about half of the time (near zero).
"switch" (`bilingual_deep`, 4 layers) is a hinge on the pre-activation: max(0, x + MARGIN)^2 on
the other language's neurons and max(0, MARGIN - x)^2 on the own language's (after <bos>), so
they are switched off and on, as Tang et al. observed language neurons in real LLMs (active on
their language, inactive on the others). "pre", the first hinge alone, was tried for the 4-layer
model: with 128 neurons it switched the language neurons off on both languages (firing on 0 to
7% of their own language's tokens), with 192 it did not learn the verbs; "switch" on the mean
of a row's pre-activations gave the same firing as per token and a worse model (0.61).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids

LANGUAGES = ("en", "fr")
LEXICON = {
    "en": {
        "det": "the",
        "adj": ["red", "big", "old", "new"],
        "noun": ["cat", "dog", "fox", "owl"],
        "verb": ["runs", "eats", "sees", "sits"],
    },
    "fr": {
        "det": "le",
        "adj": ["rouge", "grand", "vieux", "neuf"],
        "noun": ["chat", "chien", "renard", "hibou"],
        "verb": ["court", "mange", "voit", "assis"],
    },
}
END = "."  # shared by both languages


def language_words(lang: str) -> list[str]:
    """The words of one language (without the shared ".")."""
    lex = LEXICON[lang]
    return [lex["det"], *lex["adj"], *lex["noun"], *lex["verb"]]


WORDS = [END, *language_words("en"), *language_words("fr")]
IDS = token_ids(WORDS)
# VERB_TABLE[adj][noun] -> verb index, shared by both languages: a Latin square (every verb
# equally often) that is not (adj + noun) mod 4, so no linear readout of adj and noun gives it
VERB_TABLE = [[0, 1, 2, 3], [1, 3, 0, 2], [2, 0, 3, 1], [3, 2, 1, 0]]
N_SENTENCES = 3
SEQ_LEN = 1 + 5 * N_SENTENCES  # 16
EVAL_SEED = 99

# planted neuron sets, per MLP layer (d_mlp = 128): 48 per language and 32 shared; a wider MLP
# (bilingual_deep: 192) keeps the rest as ordinary, unplanted neurons
D_MLP = 128
N_SPECIFIC, N_SHARED = 48, 32
NEURON_SEED = 11
PENALTY = 1.0  # weight of the other-language neurons' mean squared activation in the loss
# what the penalty acts on: the neuron's output ("post"), the other language's pre-activation
# ("pre"), or both languages' pre-activations ("switch": on for its own language, off for the other)
SILENCE = ("post", "pre", "switch")
# "pre" and "switch" push the other language's pre-activations below -MARGIN (GELU(-2) = -0.045:
# a switched-off neuron is also near-silent, as the masked training assumes); "switch" pushes
# the own language's above +MARGIN
MARGIN = 2.0
SHARED_DROPOUT = 0.5  # probability a batch row trains with the shared neurons off (with 0.8
# and 16 shared neurons the model moved the whole lookup into attention: measured, worse)

EXAMPLE = {
    "prompt": "the red cat",
    "completion": LEXICON["en"]["verb"][VERB_TABLE[0][0]],
    "explanation": "the verb follows from adjective and noun; the same table holds in French",
}


def neuron_sets(n_layers: int = 2, d_mlp: int = D_MLP) -> dict[int, dict[str, list[int]]]:
    """The planted neuron indices per layer: {layer: {"en": [...], "fr": [...], "shared": [...]}},
    and "ordinary" (unplanted) neurons when d_mlp is wider than the planted 128."""
    if d_mlp < 2 * N_SPECIFIC + N_SHARED:
        raise ValueError(f"d_mlp={d_mlp} is below the {2 * N_SPECIFIC + N_SHARED} planted neurons")
    out = {}
    for layer in range(n_layers):
        perm = torch.randperm(
            d_mlp, generator=torch.Generator().manual_seed(NEURON_SEED + layer)
        ).tolist()
        out[layer] = {
            "en": sorted(perm[:N_SPECIFIC]),
            "fr": sorted(perm[N_SPECIFIC : 2 * N_SPECIFIC]),
            "shared": sorted(perm[2 * N_SPECIFIC : 2 * N_SPECIFIC + N_SHARED]),
        }
        if d_mlp > 2 * N_SPECIFIC + N_SHARED:
            out[layer]["ordinary"] = sorted(perm[2 * N_SPECIFIC + N_SHARED :])
    return out


def sentence(lang: str, adj: int, noun: int) -> list[str]:
    """One sentence as words: DET ADJ NOUN VERB "."."""
    lex = LEXICON[lang]
    return [lex["det"], lex["adj"][adj], lex["noun"][noun], lex["verb"][VERB_TABLE[adj][noun]], END]


def sample(n: int, gen: torch.Generator, lang: str | None = None) -> Batch:
    """n sequences of three sentences; each row in one language (random, or `lang` for all).

    `extra`: "lang" [n] (0 = en, 1 = fr), "verb_mask" [n, pos] (True at NOUN positions, where
    the next token is the verb). The loss mask covers every position except the last.
    """
    langs = (
        torch.randint(0, 2, (n,), generator=gen)
        if lang is None
        else torch.full((n,), LANGUAGES.index(lang))
    )
    adjs = torch.randint(0, 4, (n, N_SENTENCES), generator=gen)
    nouns = torch.randint(0, 4, (n, N_SENTENCES), generator=gen)
    rows = []
    for b in range(n):
        words = [
            w
            for k in range(N_SENTENCES)
            for w in sentence(LANGUAGES[int(langs[b])], int(adjs[b, k]), int(nouns[b, k]))
        ]
        rows.append([BOS, *(IDS[w] for w in words)])
    tokens = torch.tensor(rows)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, -1] = False
    verb_mask = torch.zeros_like(mask)
    verb_mask[:, [3 + 5 * k for k in range(N_SENTENCES)]] = True  # NOUN positions
    return Batch(tokens, mask, {"lang": langs, "verb_mask": verb_mask})


def sentences(lang: str, n: int = 64, seed: int = 0) -> Int[Tensor, "n 16"]:
    """n token sequences of language `lang` ("en" or "fr"), for locating language neurons."""
    return sample(n, torch.Generator().manual_seed(seed), lang).tokens


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A mixed-language training batch (see `sample`)."""
    return sample(n, gen)


def verb_accuracy(model: Any, lang: str, n: int = 256) -> float:
    """Top-1 accuracy of the verb (the deterministic, table-looked-up token) in language `lang`."""
    batch = sample(n, torch.Generator().manual_seed(EVAL_SEED + LANGUAGES.index(lang)), lang)
    pred = logits(model, batch.tokens).argmax(-1)[:, :-1]
    target = batch.tokens[:, 1:]
    vm = batch.extra["verb_mask"][:, :-1]
    return float((pred == target)[vm].float().mean())


def language_fidelity(model: Any, lang: str, n: int = 256) -> float:
    """Share of top-1 predictions that are words of `lang` (or "."), after the first word.

    (At <bos> the language is not known yet, so that prediction is not counted.)
    """
    batch = sample(n, torch.Generator().manual_seed(EVAL_SEED + 10 + LANGUAGES.index(lang)), lang)
    pred = logits(model, batch.tokens).argmax(-1)[:, 1:-1]
    allowed = torch.zeros(len(IDS), dtype=torch.bool)
    allowed[[IDS[w] for w in [END, *language_words(lang)]]] = True
    return float(allowed[pred].float().mean())


def evaluate(model: Any) -> dict[str, float]:
    """Verb accuracy per language and overall ("accuracy"), and language fidelity."""
    acc = {f"verb_accuracy_{lang}": verb_accuracy(model, lang) for lang in LANGUAGES}
    fid = {f"language_fidelity_{lang}": language_fidelity(model, lang) for lang in LANGUAGES}
    return {"accuracy": sum(acc.values()) / 2, **acc, **fid}


# ---- the planting objective ------------------------------------------------------------------


def loss(model: Any, batch: Batch, gen: torch.Generator, silence: str = "post") -> Tensor:
    """Next-token loss with the other language's neurons off, plus a penalty on their firing.

    Per row: the other language's neurons are zeroed (so they cannot help) and penalised (so
    they learn to stay silent on this language, and the model behaves the same without the
    masks): `silence="post"` penalises their squared activation, `"pre"` the hinge
    max(0, pre-activation + MARGIN)^2 (switched off, not merely near zero), and `"switch"` adds
    max(0, MARGIN - pre-activation)^2 on the row's own language's neurons after <bos> (switched
    on). With probability SHARED_DROPOUT the shared (and any ordinary) neurons are zeroed too,
    so each language's own neurons must carry it.
    """
    if silence not in SILENCE:
        raise ValueError(f"silence={silence!r} is not one of {', '.join(SILENCE)}")
    d_mlp = model.config.n_inner
    sets = neuron_sets(len(model.transformer.h), d_mlp)
    lang = batch.extra["lang"]  # [n]
    drop_shared = torch.rand(len(lang), generator=gen) < SHARED_DROPOUT
    penalties: list[Tensor] = []

    def make(layer: int):
        other = {0: sets[layer]["fr"], 1: sets[layer]["en"]}
        keep = torch.ones(len(lang), d_mlp)
        for b, lg in enumerate(lang.tolist()):
            keep[b, other[lg]] = 0.0
            if drop_shared[b]:  # and the ordinary neurons: else they carry the lookup (measured)
                keep[b, sets[layer]["shared"] + sets[layer].get("ordinary", [])] = 0.0
        off_other = torch.zeros(len(lang), d_mlp)
        on_own = torch.zeros(len(lang), d_mlp)
        for b, lg in enumerate(lang.tolist()):
            off_other[b, other[lg]] = 1.0
            on_own[b, other[1 - lg]] = 1.0

        def hook(module: Any, args: Any, out: Tensor) -> Tensor:
            # out, args[0]: [n, pos, d_mlp], the activation and its input (the pre-activation)
            penalised = out if silence == "post" else torch.relu(args[0] + MARGIN)
            # a mean, not a sum, over neurons: a strong penalty kills every neuron (measured)
            penalties.append(((penalised * off_other[:, None, :]) ** 2).sum(-1).mean() / N_SPECIFIC)
            if silence == "switch":  # own language on, after <bos> (where it is not yet known)
                below = torch.relu(MARGIN - args[0][:, 1:]) * on_own[:, None, :]
                penalties.append((below**2).sum(-1).mean() / N_SPECIFIC)
            return out * keep[:, None, :]

        return hook

    handles = [
        block.mlp.act.register_forward_hook(make(i)) for i, block in enumerate(model.transformer.h)
    ]
    try:
        out = model(batch.tokens).logits[:, :-1]
    finally:
        for h in handles:
            h.remove()
    target = batch.tokens[:, 1:]
    mask = batch.loss_mask[:, :-1]
    ce = torch.nn.functional.cross_entropy(out[mask], target[mask])
    return ce + PENALTY * torch.stack(penalties).sum()


# ---- the direct check ------------------------------------------------------------------------


def ablated(model: Any, neurons: dict[int, list[int]]):
    """A context in which the given neurons {layer: [indices]} are zeroed (mlp.hook_post)."""
    from reference_impls.interventions import hooks

    def make(idx: list[int]):
        def fn(act: Tensor, hook: Any) -> Tensor:
            act = act.clone()
            act[..., idx] = 0.0
            return act

        return fn

    return hooks(
        model,
        fwd=[(f"blocks.{layer}.mlp.hook_post", make(idx)) for layer, idx in neurons.items() if idx],
    )


def direct_check(model: Any, silence: str = "post") -> dict[str, Any]:
    """Ablate each language's planted neurons and measure verb accuracy in both languages.

    Passed when the model knows its verbs (> 0.95 in both languages), and ablating one
    language's neurons lowers its verb accuracy by at least 0.25 (chance is 0.25) while lowering
    the other language's by less than 0.02, for both languages; unless `silence="post"`, also
    when in every layer each language's neurons fire (pre-activation > 0) on under 5% of the
    other language's tokens after <bos> (and, with "switch", on over half of their own's).
    """
    n_layers = model.cfg.n_layers
    sets = neuron_sets(n_layers, model.cfg.d_mlp)
    base = {lang: verb_accuracy(model, lang) for lang in LANGUAGES}
    checks: dict[str, Any] = {"verb_accuracy": base}
    passed = min(base.values()) > 0.95
    for target in (*LANGUAGES, "shared"):
        with ablated(model, {layer: sets[layer][target] for layer in range(n_layers)}):
            acc = {lang: verb_accuracy(model, lang) for lang in LANGUAGES}
        checks[f"ablate_{target}_neurons"] = acc
        if target != "shared":
            other = LANGUAGES[1 - LANGUAGES.index(target)]
            drop = base[target] - acc[target]
            # one-sided: in bilingual-deep zeroing the English neurons *raised* French verb
            # accuracy (0.977 -> 1.00: they fire at <bos>, which both languages share)
            passed = passed and drop >= 0.25 and base[other] - acc[other] < 0.02
    # neurons that fire: mean activation per set and language shows the silence the objective
    # planted; the firing rate (pre-activation > 0, after <bos>, where the language is known)
    # whether it is switched off or only near zero
    mean_act, firing = {}, {}
    for lang in LANGUAGES:
        _, cache = model.run_with_cache(sentences(lang, 64, seed=5))
        for layer in range(n_layers):
            act = cache[f"blocks.{layer}.mlp.hook_post"].mean((0, 1))  # [d_mlp]
            pre = cache[f"blocks.{layer}.mlp.hook_pre"][:, 1:]  # [n, pos - 1, d_mlp]
            fires = (pre > 0).float().mean((0, 1))  # [d_mlp]
            for name, idx in sets[layer].items():
                mean_act[f"L{layer} {name} neurons on {lang}"] = float(act[idx].mean())
                firing[f"L{layer} {name} neurons on {lang}"] = float(fires[idx].mean())
    checks["mean_activation"] = mean_act
    checks["firing_rate"] = firing
    if silence != "post":  # switched off on the other language (and on on its own: "switch")
        passed = passed and all(
            firing[f"L{layer} {target} neurons on {other}"] < 0.05
            and (silence == "pre" or firing[f"L{layer} {target} neurons on {target}"] > 0.5)
            for layer in range(n_layers)
            for target, other in (("en", "fr"), ("fr", "en"))
        )
    checks["passed"] = passed
    truth = {
        "language_neurons": {str(layer): sets[layer] for layer in range(n_layers)},
        "hook": "blocks.{layer}.mlp.hook_post",
        "languages": list(LANGUAGES),
        "verb_table": VERB_TABLE,
        "metric": "top-1 verb accuracy per language",
    }
    return {"ground_truth": truth, "checks": checks}


LANGUAGE_NAMES = {"en": "English", "fr": "French"}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """Each language's planted neurons, layer by layer; the shared neurons are named in a note."""
    truth = card["ground_truth"]
    planted, shared, ordinary = [], 0, 0
    for layer, sets in sorted(truth["language_neurons"].items(), key=lambda kv: int(kv[0])):
        for lang in truth["languages"]:
            planted += [
                runs.Planted(
                    target=A.neuron(int(layer), j).doc(),
                    role=f"{LANGUAGE_NAMES[lang]} neuron",
                    confirmed_by=f"ablating the {LANGUAGE_NAMES[lang]} neurons breaks "
                    f"{LANGUAGE_NAMES[lang]} verbs only",
                )
                for j in sets[lang]
            ]
        shared += len(sets.get("shared", []))
        ordinary += len(sets.get("ordinary", []))
    return runs.GroundTruth(
        description=(
            "One grammar in two vocabularies (English and French): training silences each "
            "language's MLP neurons on the other language, so every MLP layer has English, "
            "French and shared neurons."
        ),
        planted=planted,
        notes=[f"{shared} shared neurons fire in both languages and are not planted as specific"]
        + ([f"{ordinary} ordinary neurons are not planted at all"] if ordinary else []),
    )
