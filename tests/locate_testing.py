"""Tiny seeded models for the locate tests (importable: pyproject sets pythonpath = tests).

Random GPT-2 and grouped-query Llama checkpoints loaded through `zoo.load` (the user's path), and
a GPT-2 that is affine from every site to the logits, on which first-order methods are exact.
"""

from __future__ import annotations

from pathlib import Path

import torch

from reference_impls import zoo
from reference_impls.zoo import checkpoint

VOCAB = checkpoint.vocabulary([f"w{i}" for i in range(13)])
SIZES = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_mlp": 48, "n_ctx": 16}


def tiny(arch: str, directory: Path, seed: int = 1):
    """A random 2-layer GPT-2 (`arch="gpt2"`) or Llama with 4 query / 2 key-value heads."""
    sizes = dict(SIZES)
    if arch == "llama":
        sizes["n_kv_heads"] = 2  # grouped-query attention
    hf = checkpoint.tiny_model(arch, len(VOCAB), seed=seed, **sizes)
    return zoo.load(checkpoint.save(hf, VOCAB, directory))


def linear(directory: Path):
    """A GPT-2 that is affine from every site to the logits.

    Identity MLP activation; zero query/key weights, so every attention pattern is uniform over
    the causal prefix whatever the input; LayerNorm epsilon 1e12 against a residual variance
    below 1e3, so 1/sqrt(var + eps) is a constant to 1e-9 relative (gains scaled up to match).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=16, n_embd=32, n_layer=2, n_head=4, n_inner=48,
        activation_function="linear", layer_norm_epsilon=1e12,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    hf = GPT2LMHeadModel(config)
    with torch.no_grad():
        for block in hf.transformer.h:
            block.attn.c_attn.weight[:, : 2 * 32] = 0  # W_Q, W_K
            block.attn.c_attn.bias[: 2 * 32] = 0
            block.attn.c_proj.weight *= 30  # heads and MLPs write visibly into the stream
            block.mlp.c_proj.weight *= 30
            block.ln_1.weight *= 1e7
            block.ln_2.weight *= 1e7
        hf.transformer.ln_f.weight *= 1e8
    return zoo.load(checkpoint.save(hf, VOCAB, directory))


def native(attention_dir: str = "bidirectional", normalization: str | None = None, seed: int = 0):
    """A random 2-layer TransformerLens-native bridge (`boot_native`): plain `AttentionBridge`s
    that cannot split Q/K/V inputs or per-head results, `attention_dir` causal or bidirectional
    (an encoder-style model), no normalisation by default (as InterpBench/tracr models ship)."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401 (attaches boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        d_model=32, d_head=8, n_layers=2, n_ctx=16, n_heads=4, d_vocab=len(VOCAB), d_mlp=48,
        act_fn="gelu", normalization_type=normalization, attention_dir=attention_dir, seed=seed,
    )  # fmt: skip
    bridge = TransformerBridge.boot_native(cfg)
    bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge.eval()


def random_tokens(batch: int, pos: int, seed: int) -> torch.Tensor:
    """Token ids drawn from the non-special words."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, len(VOCAB), (batch, pos), generator=g)
