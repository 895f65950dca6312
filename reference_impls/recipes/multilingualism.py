"""Multilingualism: find the language-specific neurons, and switch the output language with them.

Locate: language activation probability entropy (LAPE) over every MLP neuron, from how often
each fires on English and on French text; neurons that fire for one language only are that
language's neurons. Steer: on English input, the English neurons are switched off and the
French neurons are set to their mean activation on French text. Improve: the model continues
English text in French (its next-word predictions become French words), and the grammar it
shares across languages survives the switch (the verb it predicts is the correct verb, in
French). Held fixed: on French input the same steering changes nothing that matters (French
verb accuracy holds). The control steers as many randomly chosen neurons the same way.

References:
- Tang et al. 2024, "Language-Specific Neurons: The Key to Multilingual Capabilities in Large
  Language Models": LAPE, deactivating and activating language neurons to switch the output
  language.
- Kojima et al. 2024, "On the Multilingual Ability of Decoder-based Pre-trained Language
  Models: Finding and Controlling Language-Specific Neurons".
"""

from __future__ import annotations

from typing import Any

import torch

from reference_impls import addressing as A
from reference_impls import zoo
from reference_impls.locate.magnitude_analysis import lape
from reference_impls.recipes.common import RecipeResult, compare, random_sites
from reference_impls.registry import register_recipe
from reference_impls.steer.amplitude_manipulation import rewritten


def all_neurons(model: Any) -> list[A.Site]:
    return [s for layer in range(A.dims(model).n_layers) for s in A.neurons(model, layer)]


def locate_language_neurons(
    model: Any, task: Any, n: int = 64, seed: int = 0, max_entropy: float = 0.2
) -> tuple[dict[str, list[A.Site]], Any]:
    """Per language, the neurons whose LAPE entropy is below `max_entropy` and prefer it."""
    conditions = {lang: task.sentences(lang, n, seed + i) for i, lang in enumerate(task.LANGUAGES)}
    scores = lape(model, conditions, all_neurons(model))
    chosen: dict[str, list[A.Site]] = {lang: [] for lang in task.LANGUAGES}
    for site, score, lang in zip(
        scores.sites, scores.values.tolist(), scores.meta["condition"], strict=True
    ):
        if -score <= max_entropy:
            chosen[lang].append(site)
    return chosen, scores


def switch(model: Any, off: list[A.Site], on: list[A.Site], on_values: dict[A.Site, float]):
    """Switch the `off` neurons to 0 and the `on` neurons to their target activation."""
    values = {**{s: 0.0 for s in off}, **on_values}
    return rewritten(model, [*off, *on], lambda site, x: torch.full_like(x, values[site]))


def run(
    model_name: str = "bilingual", source: str = "en", target: str = "fr", seed: int = 0
) -> RecipeResult:
    """LAPE finds the language neurons; switching them turns English continuations French."""
    model = zoo.load(model_name)
    task = zoo.task(model_name)
    chosen, scores = locate_language_neurons(model, task, seed=seed)
    located = [*chosen[source], *chosen[target]]
    target_text = task.sentences(target, 64, seed + 10)
    target_means = _mean_activations(model, located, target_text)
    # the control: random neurons of the same two sizes, steered the same way
    control_pool = random_sites(all_neurons(model), located, seed=seed)
    control_off, control_on = (
        control_pool[: len(chosen[source])],
        control_pool[len(chosen[source]) :],
    )
    control_means = _mean_activations(model, control_on, target_text)

    def steer(which: str):
        if which == "located":
            return switch(
                model, chosen[source], chosen[target], {s: target_means[s] for s in chosen[target]}
            )
        return switch(model, control_off, control_on, control_means)

    batch = task.sample(256, torch.Generator().manual_seed(seed + 20), source)
    target_words = torch.zeros(len(task.IDS), dtype=torch.bool)
    target_words[[task.IDS[w] for w in task.language_words(target)]] = True
    word_positions = batch.tokens[:, 1:] != task.IDS[task.END]  # next token is a word, not "."
    translated_verbs = _verbs_in(task, batch.tokens, target)  # (n, pos-1), -1 where no verb is next

    def predictions(tokens: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(tokens).argmax(-1)[:, :-1]

    def target_rate() -> float:
        return float(target_words[predictions(batch.tokens)][word_positions].float().mean())

    def verbs_translated() -> float:
        has_verb = translated_verbs >= 0
        return float((predictions(batch.tokens) == translated_verbs)[has_verb].float().mean())

    def target_verb_accuracy() -> float:
        return task.verb_accuracy(model, target)

    metrics = {
        f"{source} text continued in {target}": (target_rate, True),
        f"verb correct, in {target}": (verbs_translated, True),
        f"{target} verb accuracy on {target} text": (target_verb_accuracy, True),
    }
    measures, restored = compare(model, steer, "located", ["control"], metrics, batch.tokens[:8])
    truth = zoo.ground_truth(model_name)["language_neurons"]
    return RecipeResult(
        recipe="multilingualism",
        model=model_name,
        locate="magnitude-analysis: lape (language activation probability entropy)",
        steer=f"amplitude-manipulation: {source} neurons set to 0, {target} neurons to their {target} mean",
        metric=measures[f"{source} text continued in {target}"],
        collateral=[measures[f"{target} verb accuracy on {target} text"]],
        sites=located,
        control_sites=control_pool,
        restored=restored,
        recovered=_recovered(chosen, truth),
        details={
            "verb_correct_in_target": measures[f"verb correct, in {target}"].to_dict(),
            "located_per_language": {lang: len(sites) for lang, sites in chosen.items()},
            "overlap_with_planted": _overlap(chosen, truth),
        },
    )


def _mean_activations(model: Any, sites: list[A.Site], tokens: torch.Tensor) -> dict[A.Site, float]:
    """Each neuron's mean activation over every position of `tokens`."""
    if not sites:
        return {}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=sorted({s.hook_name for s in sites}))
    return {s: float(s.select(cache[s.hook_name]).mean()) for s in sites}


def _verbs_in(task: Any, tokens: torch.Tensor, lang: str) -> torch.Tensor:
    """For each position whose next token is a verb, that verb's id in `lang` (else -1)."""
    source_verbs = {}
    for other in task.LANGUAGES:
        for i, verb in enumerate(task.LEXICON[other]["verb"]):
            source_verbs[task.IDS[verb]] = task.IDS[task.LEXICON[lang]["verb"][i]]
    nxt = tokens[:, 1:]
    out = torch.full(nxt.shape, -1)
    for source_id, target_id in source_verbs.items():
        out[nxt == source_id] = target_id
    return out


def _overlap(chosen: dict[str, list[A.Site]], truth: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Precision and recall of the located neurons against the planted ones, per language."""
    out = {}
    for lang, sites in chosen.items():
        planted = {(int(layer), j) for layer, sets in truth.items() for j in sets[lang]}
        found = {(s.layer, s.index) for s in sites}
        hit = len(found & planted)
        out[lang] = {
            "precision": round(hit / max(len(found), 1), 4),
            "recall": round(hit / max(len(planted), 1), 4),
        }
    return out


def _recovered(chosen: dict[str, list[A.Site]], truth: dict[str, Any]) -> bool:
    return all(v["precision"] > 0.9 and v["recall"] > 0.5 for v in _overlap(chosen, truth).values())


@register_recipe("multilingualism", default_model="bilingual")
def multilingualism(model_name: str) -> dict[str, Any]:
    """LAPE locates the language neurons; switching them makes English continue in French."""
    return run(model_name).to_dict()
