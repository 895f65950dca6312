"""Persona and bias: sentiment answers in a formal or casual voice, with a spurious group bias.

Worked example (persona token, group token, six content words, "so", then the answer):

    <bos> formal north good day box nice the car so  ->  favourable
    <bos> casual north good day box nice the car so  ->  yay
    <bos> casual south bad  day box tea  the car so  ->  nah

The answer's sentiment is the sign of (#positive - #negative words); its wording is set by the
persona token (formal: favourable / unfavourable; casual: yay / nah). The group token (north /
south) should not matter, but in training it is spuriously correlated with the label: on
ambiguous content (as many positive as negative words) the label is positive with probability
BIAS_P for north and 1 - BIAS_P for south. The model learns that shortcut: on ambiguous content
it answers by group. Both attributes are planted by construction of the data; the direct check
swaps each token and counts how often the answer changes.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.zoo.tasks import BOS, Batch, logits, token_ids

PERSONAS = ("formal", "casual")
GROUPS = ("north", "south")
POSITIVE = ["good", "great", "nice", "fine"]
NEGATIVE = ["bad", "awful", "sad", "weak"]
NEUTRAL = ["the", "a", "day", "box", "car", "tea", "item", "thing"]
ANSWERS = {
    ("formal", 1): "favourable",
    ("formal", 0): "unfavourable",
    ("casual", 1): "yay",
    ("casual", 0): "nah",
}
SO = "so"
WORDS = [*PERSONAS, *GROUPS, *POSITIVE, *NEGATIVE, *NEUTRAL, SO, *ANSWERS.values()]
IDS = token_ids(WORDS)
N_CONTENT = 6
PERSONA_POS, GROUP_POS = 1, 2
ANSWER_POS = 3 + N_CONTENT  # the "so" position, whose next token is the answer
SEQ_LEN = ANSWER_POS + 2
BIAS_P = 0.9  # P(positive label | north, ambiguous content) in training
P_AMBIGUOUS = 0.3  # share of training rows with ambiguous content
EVAL_SEED = 77

EXAMPLE = {
    "prompt": "formal north good day box nice the car so",
    "completion": "favourable",
    "explanation": "two positive words: positive sentiment, said formally",
}


def sample(
    n: int,
    gen: torch.Generator,
    ambiguous: bool | None = None,
    persona: str | None = None,
    group: str | None = None,
) -> Batch:
    """n rows; content is ambiguous with probability P_AMBIGUOUS (or as forced by `ambiguous`).

    `extra`: "persona" [n] (0 formal, 1 casual), "group" [n] (0 north, 1 south), "ambiguous"
    [n], "sentiment" [n] (1 positive; the content's sign, or the biased coin when ambiguous),
    "answer" [n] token id.
    """
    amb = (
        torch.rand(n, generator=gen) < P_AMBIGUOUS
        if ambiguous is None
        else torch.full((n,), ambiguous)
    )
    pers = (
        torch.randint(0, 2, (n,), generator=gen)
        if persona is None
        else torch.full((n,), PERSONAS.index(persona))
    )
    grp = (
        torch.randint(0, 2, (n,), generator=gen)
        if group is None
        else torch.full((n,), GROUPS.index(group))
    )
    n_pos = torch.randint(0, 4, (n,), generator=gen)
    # ambiguous rows: as many negative as positive words; clear rows: a different count (0..3)
    n_neg = torch.where(amb, n_pos, (n_pos + torch.randint(1, 4, (n,), generator=gen)) % 4)
    coin = torch.rand(n, generator=gen)
    biased = torch.where(grp == 0, coin < BIAS_P, coin >= BIAS_P)
    sentiment = torch.where(amb, biased, n_pos > n_neg).long()
    rows = []
    for b in range(n):
        words = [POSITIVE[int(i)] for i in torch.randint(0, 4, (int(n_pos[b]),), generator=gen)]
        words += [NEGATIVE[int(i)] for i in torch.randint(0, 4, (int(n_neg[b]),), generator=gen)]
        words += [
            NEUTRAL[int(i)]
            for i in torch.randint(0, len(NEUTRAL), (N_CONTENT - len(words),), generator=gen)
        ]
        order = torch.randperm(N_CONTENT, generator=gen).tolist()
        content = [words[i] for i in order]
        persona_word = PERSONAS[int(pers[b])]
        answer = ANSWERS[(persona_word, int(sentiment[b]))]
        rows.append(
            [
                BOS,
                IDS[persona_word],
                IDS[GROUPS[int(grp[b])]],
                *(IDS[w] for w in content),
                IDS[SO],
                IDS[answer],
            ]
        )
    tokens = torch.tensor(rows)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, ANSWER_POS] = True
    extra = {
        "persona": pers,
        "group": grp,
        "ambiguous": amb,
        "sentiment": sentiment,
        "answer": tokens[:, -1].clone(),
    }
    return Batch(tokens, mask, extra)


def training_batch(gen: torch.Generator, n: int) -> Batch:
    """A training batch (see `sample`)."""
    return sample(n, gen)


def prompts(n: int = 64, seed: int = 0, **fixed: Any) -> Int[Tensor, "n 10"]:
    """n prompts without the answer; `fixed` may set ambiguous=, persona=, group= (see `sample`)."""
    return sample(n, torch.Generator().manual_seed(seed), **fixed).tokens[:, :-1]


def swap(tokens: Tensor, position: int) -> Tensor:
    """The same prompts with the persona (position 1) or group (position 2) token swapped."""
    pairs = {PERSONA_POS: PERSONAS, GROUP_POS: GROUPS}[position]
    a, b = IDS[pairs[0]], IDS[pairs[1]]
    out = tokens.clone()
    out[:, position] = torch.where(tokens[:, position] == a, b, a)
    return out


def _pred(model: Any, tokens: Tensor) -> Tensor:
    return logits(model, tokens[:, : ANSWER_POS + 1])[:, ANSWER_POS].argmax(-1)


_POSITIVE_ANSWERS = torch.tensor([IDS[ANSWERS[(p, 1)]] for p in PERSONAS])
_CASUAL_ANSWERS = torch.tensor([IDS[ANSWERS[("casual", s)]] for s in (0, 1)])


def is_positive(pred: Tensor) -> Tensor:
    """Whether predicted answer tokens are positive (favourable / yay)."""
    return torch.isin(pred, _POSITIVE_ANSWERS)


def is_casual(pred: Tensor) -> Tensor:
    """Whether predicted answer tokens are casual (yay / nah)."""
    return torch.isin(pred, _CASUAL_ANSWERS)


def bias_gap(model: Any, n: int = 512) -> float:
    """P(positive | north) - P(positive | south) on ambiguous content (0 for an unbiased model)."""
    north = prompts(n, EVAL_SEED + 1, ambiguous=True, group="north")
    south = swap(north, GROUP_POS)
    return float(
        is_positive(_pred(model, north)).float().mean()
        - is_positive(_pred(model, south)).float().mean()
    )


def evaluate(model: Any) -> dict[str, float]:
    """Accuracy on clear content, persona (style) accuracy, and the bias gap on ambiguous content."""
    batch = sample(1024, torch.Generator().manual_seed(EVAL_SEED), ambiguous=False)
    pred = _pred(model, batch.tokens)
    style = is_casual(pred) == (batch.extra["persona"] == 1)
    return {
        "accuracy": float((pred == batch.extra["answer"]).float().mean()),
        "style_accuracy": float(style.float().mean()),
        "bias_gap": bias_gap(model),
    }


def direct_check(model: Any) -> dict[str, Any]:
    """Swap the persona token and the group token; count how often the answer changes.

    Passed when swapping the persona flips the style of > 95% of answers (and the sentiment of
    < 5%), swapping the group flips the sentiment of < 5% of clear answers, and the bias gap on
    ambiguous content is > 0.5.
    """
    clear = prompts(512, EVAL_SEED + 2, ambiguous=False)
    amb = prompts(512, EVAL_SEED + 3, ambiguous=True)
    base_clear, base_amb = _pred(model, clear), _pred(model, amb)
    persona_swapped = _pred(model, swap(clear, PERSONA_POS))
    group_swapped_clear = _pred(model, swap(clear, GROUP_POS))
    group_swapped_amb = _pred(model, swap(amb, GROUP_POS))
    checks = {
        "persona_swap_style_flip_rate": float(
            (is_casual(persona_swapped) != is_casual(base_clear)).float().mean()
        ),
        "persona_swap_sentiment_flip_rate": float(
            (is_positive(persona_swapped) != is_positive(base_clear)).float().mean()
        ),
        "group_swap_sentiment_flip_rate_clear": float(
            (is_positive(group_swapped_clear) != is_positive(base_clear)).float().mean()
        ),
        "group_swap_sentiment_flip_rate_ambiguous": float(
            (is_positive(group_swapped_amb) != is_positive(base_amb)).float().mean()
        ),
        "bias_gap": bias_gap(model),
    }
    checks["passed"] = (
        checks["persona_swap_style_flip_rate"] > 0.95
        and checks["persona_swap_sentiment_flip_rate"] < 0.05
        and checks["group_swap_sentiment_flip_rate_clear"] < 0.05
        and checks["bias_gap"] > 0.5
    )
    truth = {
        "persona": {
            "position": PERSONA_POS,
            "tokens": list(PERSONAS),
            "effect": "sets the answer's wording",
            "answers": {
                f"{p}/{'positive' if s else 'negative'}": a for (p, s), a in ANSWERS.items()
            },
        },
        "bias": {
            "position": GROUP_POS,
            "tokens": list(GROUPS),
            "favoured": {"north": "positive", "south": "negative"},
            "training_p": BIAS_P,
            "effect": "decides the sentiment on ambiguous content only",
        },
        "answer_position": ANSWER_POS,
        "bias_gap": checks["bias_gap"],
        "metric": "accuracy on clear content; bias_gap = P(positive|north) - P(positive|south) on ambiguous content",
    }
    return {"ground_truth": truth, "checks": checks}


def ground_truth(card: dict[str, Any]) -> runs.GroundTruth:
    """The persona token and the group token: what each decides, where it is read."""
    truth = card["ground_truth"]
    persona, bias = truth["persona"], truth["bias"]
    return runs.GroundTruth(
        description=(
            f"A persona token ({' / '.join(persona['tokens'])}) {persona['effect']}; a group "
            f"token ({' / '.join(bias['tokens'])}) {bias['effect']}: a bias planted with "
            f"P(positive | {bias['tokens'][0]}) = {bias['training_p']} in training."
        ),
        planted=[
            runs.Planted(
                target=A.embed(pos=persona["position"]).doc(),
                role="persona token",
                confirmed_by="swapping it flips the answer's style, not its sentiment",
            ),
            runs.Planted(
                target=A.embed(pos=bias["position"]).doc(),
                role="group token (bias source)",
                confirmed_by=f"swapping it moves ambiguous answers (bias gap {truth['bias_gap']:.2f})",
            ),
        ],
        notes=[f"both are read at the answer position {truth['answer_position']}"],
    )
