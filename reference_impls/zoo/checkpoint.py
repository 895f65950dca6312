"""Writing zoo checkpoints: a word-level tokenizer and a Hugging Face model in one directory.

A zoo checkpoint is what `save_pretrained` writes (`config.json`, `model.safetensors`) plus a
`tokenizer.json` from a `tokenizers` WordLevel model (one token per whitespace-separated word)
and its `tokenizer_config.json`, so `TransformerBridge.boot_transformers(dir)` can load it the
way it loads any hub model. `tiny_model` builds small seeded GPT-2 or Llama models for tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL = ("<pad>", "<bos>", "<unk>")  # ids 0, 1, 2 in every zoo vocabulary


def vocabulary(words: list[str]) -> list[str]:
    """The zoo vocabulary: the special tokens, then `words` (no duplicates)."""
    if len(set(words)) != len(words) or set(words) & set(SPECIAL):
        raise ValueError("vocabulary words must be unique and not special tokens")
    return [*SPECIAL, *words]


def make_tokenizer(vocab: list[str], directory: str | Path) -> Any:
    """Write a WordLevel tokenizer over `vocab` into `directory` and load it back from disk."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(directory / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(directory / "tokenizer.json"),
        bos_token="<bos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.save_pretrained(str(directory))
    return PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)


def save(
    model: Any, vocab: list[str], directory: str | Path, card: dict[str, Any] | None = None
) -> Path:
    """Save `model` (float32, safetensors), its tokenizer and, if given, its card into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    (directory / "generation_config.json").unlink(missing_ok=True)  # not needed; keeps dirs small
    make_tokenizer(vocab, directory)
    if card is not None:
        (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return directory


def tiny_model(arch: str, vocab_size: int, seed: int = 0, **sizes: int) -> Any:
    """A seeded, untrained GPT-2 (`arch="gpt2"`) or Llama (`"llama"`) causal LM.

    `sizes`: n_layers, d_model, n_heads, n_kv_heads (Llama only), d_mlp, n_ctx.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    n_layers = sizes.get("n_layers", 2)
    d_model = sizes.get("d_model", 32)
    n_heads = sizes.get("n_heads", 4)
    d_mlp = sizes.get("d_mlp", 4 * d_model)
    n_ctx = sizes.get("n_ctx", 32)
    torch.manual_seed(seed)
    if arch == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size,
            n_positions=n_ctx,
            n_embd=d_model,
            n_layer=n_layers,
            n_head=n_heads,
            n_inner=d_mlp,
            bos_token_id=1,
            eos_token_id=1,
            pad_token_id=0,
            # no dropout: training is tiny and deterministic, and eval == train behaviour
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            tie_word_embeddings=False,
        )
        return GPT2LMHeadModel(cfg)
    if arch == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=d_model,
            intermediate_size=d_mlp,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=sizes.get("n_kv_heads", n_heads),
            max_position_embeddings=n_ctx,
            bos_token_id=1,
            eos_token_id=1,
            pad_token_id=0,
            tie_word_embeddings=False,
        )
        return LlamaForCausalLM(cfg)
    raise ValueError(f"arch={arch!r} is not 'gpt2' or 'llama'")
