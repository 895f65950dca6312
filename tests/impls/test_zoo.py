"""The zoo: every model loads offline, reaches its card's accuracy, and its planted mechanism is there.

The ground truth of each card is re-measured here by the task's direct check (attention scores,
ablations, token swaps), which is independent of the locate/steer methods tested elsewhere.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference_impls import zoo

pytestmark = pytest.mark.impls

REPO = Path(__file__).resolve().parents[2]
NAMES = zoo.names()


@functools.cache
def _loaded(name):
    """(name, bridged model, card, task module, direct check result), computed once per model."""
    model = zoo.load(name)
    task = zoo.task(name)
    return name, model, zoo.card(name), task, task.direct_check(model)


@pytest.fixture(scope="module", params=NAMES)
def loaded(request):
    return _loaded(request.param)


@pytest.fixture
def offline(monkeypatch):
    """No Hub access: what a laptop without network sees, without waiting for timeouts."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_the_zoo_has_the_planned_models_and_one_uses_grouped_query_attention():
    assert {"induction", "facts", "bilingual", "refusal", "persona-bias", "sparse-features"} <= set(
        NAMES
    )
    configs = {n: json.loads((zoo.path(n) / "config.json").read_text()) for n in NAMES}
    assert {c["architectures"][0] for c in configs.values()} <= {
        "GPT2LMHeadModel",
        "LlamaForCausalLM",
    }
    # only Llama configs name key/value heads; GPT-2 always has as many as query heads
    gqa = [
        n
        for n, c in configs.items()
        if c.get("num_key_value_heads", 0) < c.get("num_attention_heads", 0)
    ]
    assert gqa == ["induction"]


def test_the_whole_zoo_is_small():
    total = sum(f.stat().st_size for f in zoo.MODELS_DIR.rglob("*") if f.is_file())
    assert total < 20 * 2**20


@pytest.mark.parametrize("name", NAMES)
def test_every_model_loads_offline_and_matches_hugging_face(name, offline):
    from transformers import AutoModelForCausalLM

    model = zoo.load(name)
    hf = AutoModelForCausalLM.from_pretrained(
        zoo.path(name), local_files_only=True, attn_implementation="eager"
    )
    tokens = zoo.task(name).training_batch(torch.Generator().manual_seed(0), 4).tokens
    with torch.no_grad():
        ours = model(tokens).log_softmax(-1)
        theirs = hf(tokens).logits.log_softmax(-1)
    # compatibility mode folds layer norms and centres the unembedding: log-probs are unchanged
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def test_a_hub_model_goes_through_the_same_path_and_fails_in_one_sentence_offline(offline):
    with pytest.raises(zoo.HubUnavailableError) as info:
        zoo.load("gpt2")
    message = str(info.value)
    assert message.startswith("could not load 'gpt2' from the Hugging Face Hub")
    assert "\n" not in message and "induction" in message


def test_an_unknown_zoo_name_lists_the_zoo():
    with pytest.raises(zoo.UnknownModelError, match="did you mean 'induction'"):
        zoo.path("inductoin")


def test_each_model_reaches_its_cards_accuracy(loaded):
    name, model, card, task, _ = loaded
    metrics = task.evaluate(model)
    assert metrics["accuracy"] >= card["metrics"]["accuracy"] - card["tolerance"]
    assert card["metrics"]["accuracy"] >= 0.95, f"{name} card accuracy too low to be useful"


def test_each_models_ground_truth_passes_its_direct_check(loaded):
    name, _, card, _, check = loaded
    assert check["checks"]["passed"], (name, check["checks"])
    assert card["checks"]["passed"]
    assert _close(check["ground_truth"], card["ground_truth"]), name


def _close(a, b, tol=1e-3):
    """Equal JSON trees, floats within tol (re-measured on another machine may differ slightly)."""
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def test_each_card_documents_task_example_recipe_and_ground_truth():
    for name in NAMES:
        card = zoo.card(name)
        assert card["name"] == name
        assert card["task"] and card["example"]["prompt"] and card["example"]["completion"]
        assert card["training"]["script"] == f"scripts/train_zoo.py {name}"
        assert {"seed", "steps", "lr", "batch_size"} <= card["training"].keys()
        assert card["ground_truth"] and "accuracy" in card["metrics"]
        assert card["size_bytes"] == (zoo.path(name) / "model.safetensors").stat().st_size
        assert {
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "card.json",
        } <= {f.name for f in zoo.path(name).iterdir()}


# ---- planted mechanisms, checked through their ground truth ---------------------------------


def test_induction_heads_are_in_layer_1_and_previous_token_heads_in_layer_0():
    _, model, card, _, _ = _loaded("induction")
    truth = card["ground_truth"]
    assert all(layer == 0 for layer, _ in truth["previous_token_heads"])
    assert all(layer == 1 for layer, _ in truth["induction_heads"])
    # grouped-query: 4 query heads read 2 key/value heads
    assert model.cfg.n_key_value_heads == 2 and model.cfg.n_heads == 4


def test_the_facts_live_in_one_mlp_at_the_last_subject_token():
    _, _, card, task, check = _loaded("facts")
    grid = torch.tensor(check["checks"]["mlp_mean_ablation_accuracy"])
    layer, pos = card["ground_truth"]["mlp_layer"], card["ground_truth"]["position"]
    assert pos == task.LAST_SUBJECT_POSITION and grid[layer, pos] < 0.3
    others = grid.clone()
    others[layer, pos] = 1.0
    assert others.min() > 0.9


def test_bilingual_deep_language_neurons_are_switched_on_and_off_and_each_set_is_needed():
    _, model, card, _, check = _loaded("bilingual-deep")
    c = check["checks"]
    assert model.cfg.n_layers == 4 and model.cfg.d_mlp == 192
    assert card["training"]["n_layers"] == 4
    firing = c["firing_rate"]  # share of tokens after <bos> with pre-activation > 0
    for layer in range(4):
        for lang, other in (("en", "fr"), ("fr", "en")):
            # on for their language (measured 1.00), off for the other (0.00), in every layer
            assert firing[f"L{layer} {lang} neurons on {lang}"] > 0.9
            assert firing[f"L{layer} {lang} neurons on {other}"] < 0.01
            # the decoys fire in both languages, neither always nor never (measured 0.09 to 0.48)
            for decoy in ("shared", "ordinary"):
                assert 0.05 < firing[f"L{layer} {decoy} neurons on {lang}"] < 0.8
    base = c["verb_accuracy"]
    assert min(base.values()) > 0.95
    for lang, other in (("en", "fr"), ("fr", "en")):
        ablated = c[f"ablate_{lang}_neurons"]
        # zeroing a language's neurons breaks its verbs (measured 0.44, 0.27; chance 0.25) and
        # does not lower the other's (English unchanged; French *rises* 0.98 -> 1.00: the
        # English neurons fire at <bos>, which both languages share)
        assert ablated[lang] < base[lang] - 0.4 and ablated[other] >= base[other]
    # the shared neurons alone: not needed (measured: unchanged)
    assert c["ablate_shared_neurons"] == pytest.approx(base, abs=0.01)
    # the 2-layer bilingual's silenced neurons fire on the other language about as often as on
    # their own (0.48 to 0.49 against 0.41 to 0.51): the difference bilingual-deep was built for
    two = _loaded("bilingual")[4]["checks"]["firing_rate"]
    for layer in range(2):
        for lang, other in (("en", "fr"), ("fr", "en")):
            assert two[f"L{layer} {lang} neurons on {other}"] > 0.4


def test_task_data_is_deterministic_and_documented_helpers_have_their_shapes():
    from reference_impls.zoo.tasks import (
        bilingual,
        facts,
        induction,
        persona_bias,
        refusal,
        sparse_features,
    )

    for task in (induction, facts, bilingual, refusal, persona_bias, sparse_features):
        a = task.training_batch(torch.Generator().manual_seed(3), 8)
        b = task.training_batch(torch.Generator().manual_seed(3), 8)
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.loss_mask, b.loss_mask)
        assert (a.tokens[:, 0] == 1).all()  # <bos>
    clean, corrupted, answer = induction.patching_pair(5, length=6)
    assert clean.shape == corrupted.shape == (5, 12) and answer.shape == (5,)
    assert torch.equal(clean[:, 7:], corrupted[:, 7:]) and not torch.equal(
        clean[:, 1:7], corrupted[:, 1:7]
    )
    assert facts.query_tokens().shape == (80, 4) and len(facts.facts()) == 80
    assert refusal.prompts(True, 4).shape == (4, 7)
    assert bilingual.sentences("fr", 3).shape == (3, 16)
    swapped = persona_bias.swap(persona_bias.prompts(4), persona_bias.GROUP_POS)
    assert (
        swapped[:, persona_bias.GROUP_POS] != persona_bias.prompts(4)[:, persona_bias.GROUP_POS]
    ).all()
    batch = sparse_features.sample_with_latents(6, torch.Generator().manual_seed(0))
    assert batch.extra["latents"].shape == (6, sparse_features.N_LATENTS)
    assert batch.extra["seen"].shape == (6, sparse_features.SEQ_LEN, sparse_features.N_LATENTS)
    assert (batch.extra["seen"][:, -1] <= batch.extra["latents"]).all()


@pytest.mark.slow
def test_retraining_the_fastest_model_reproduces_its_card(tmp_path):
    name = min(NAMES, key=lambda n: zoo.card(n)["training"]["seconds"])
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_zoo.py"), name, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    retrained = json.loads((tmp_path / name / "card.json").read_text())
    card = zoo.card(name)
    assert retrained["metrics"]["accuracy"] >= card["metrics"]["accuracy"] - card["tolerance"]
    assert retrained["checks"]["passed"]
    model = zoo.load(tmp_path / name)
    assert (
        zoo.task(name).evaluate(model)["accuracy"]
        >= card["metrics"]["accuracy"] - card["tolerance"]
    )


@pytest.mark.parametrize("name", zoo.names())
def test_each_task_states_what_it_plants_with_roles(name):
    truth = zoo.truth(name)  # the task module's ground_truth(card), typed
    assert truth.description and truth.planted
    labels = [p.target.label for p in truth.planted]
    assert len(labels) == len(set(labels)), "two planted components share a label"
    assert all(p.role and p.confirmed_by for p in truth.planted)
    for p in truth.planted:
        assert truth.role_for(p.target) == p.role
