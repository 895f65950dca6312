"""Two languages, one grammar, 4 layers: language neurons on for their language, off for the other.

The data, the planted neuron sets and the direct check are `bilingual`'s (imported, not
copied); two things differ. The model has 4 layers and 192 MLP neurons per layer: in each, 48
English, 48 French and 32 shared neurons are planted as in `bilingual`, and the other 64 are
ordinary neurons (trained like the shared ones, dropped on half of the rows; neither is
constrained to a language, so both are decoys). And the planting penalty acts on the
pre-activation, `bilingual.loss(..., silence="switch")`: a hinge pushes a language's neurons'
pre-activation above +MARGIN on their own language (after <bos>) and below -MARGIN on the
other, so they are switched on and off, not merely silenced. That is how Tang et al. 2024
("Language-Specific Neurons") observed language neurons in real LLMs: active (pre-activation
> 0) on their language, inactive on the others. The 2-layer `bilingual` penalises the
post-activation instead, which leaves the pre-activation near 0 and the silenced neurons firing
about half of the time.

Tried first (`silence="pre"`, the hinge on the other language only): the neurons went off on
both languages (firing on 0 to 7% of their own language's tokens, computing in GELU's negative
tail), so they were not "active on their language"; the check now requires both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reference_impls.zoo.tasks import Batch
from reference_impls.zoo.tasks import bilingual as _bilingual
from reference_impls.zoo.tasks.bilingual import (  # same data and evaluation as the 2-layer model
    EXAMPLE,
    LANGUAGES,
    LEXICON,
    MARGIN,
    WORDS,
    evaluate,
    ground_truth,
    language_fidelity,
    neuron_sets,
    sentences,
    training_batch,
    verb_accuracy,
)

__all__ = [
    "EXAMPLE",
    "LANGUAGES",
    "LEXICON",
    "MARGIN",
    "WORDS",
    "direct_check",
    "evaluate",
    "ground_truth",
    "language_fidelity",
    "loss",
    "neuron_sets",
    "sentences",
    "training_batch",
    "verb_accuracy",
]


def loss(model: Any, batch: Batch, gen: torch.Generator) -> Tensor:
    """`bilingual.loss` with both hinges on the pre-activation (silence="switch")."""
    return _bilingual.loss(model, batch, gen, silence="switch")


def direct_check(model: Any) -> dict[str, Any]:
    """`bilingual.direct_check`, which here also requires the language neurons switched.

    Passed when verbs are known (> 0.95), ablating one language's neurons drops its verb accuracy
    by >= 0.25 and lowers the other's by < 0.02, and in every layer each language's neurons fire
    (pre-activation > 0) on over half of their language's tokens and under 5% of the other's.
    """
    return _bilingual.direct_check(model, silence="switch")
