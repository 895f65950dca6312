"""Per-head attention inputs and outputs on any bridge, whether or not it can split them.

Edge methods need each head's own output (z_h W_O^h) and each head's own query, key and value
input, so that one head's input can be changed without touching its neighbours'. The
TransformerLens bridge provides both (`set_use_attn_result`, `set_use_split_qkv_input`) for its
joint-QKV and position-embedding attention bridges; the plain `AttentionBridge` (TL-native
models from `boot_native`, InterpBench- and tracr-style checkpoints) raises NotImplementedError.
There, `PerHead` computes the same quantities from the weights: a head's output is
z_h @ W_O[h], and a head's q/k/v input is a copy of the residual stream entering the block,
projected by the block's own norm and W_Q[h] (W_K, W_V) at the head's `hook_q` (`hook_k`,
`hook_v`). Every recomputed projection is checked against the model's own before it is used,
so an architecture this cannot reproduce (a rotary or a q/k norm before `hook_q`) is an error,
never a wrong number.

Reference: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits" (per-head
outputs and Q/K/V composition as separate paths).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from reference_impls.addressing import SiteError
from reference_impls.interventions import weight

TLHook = tuple[str, Callable]


class PerHeadError(RuntimeError):
    """The model's per-head inputs cannot be computed from its weights."""


def can_split(model: Any) -> bool:
    """Whether the bridge itself splits per-head results and Q/K/V inputs (flags restored)."""
    saved = (bool(model.cfg.use_split_qkv_input), bool(model.cfg.use_attn_result))
    try:
        model.set_use_split_qkv_input(True)
        model.set_use_attn_result(True)
        return True
    except NotImplementedError:
        return False
    finally:
        _restore(model, saved)


def _restore(model: Any, saved: tuple[bool, bool]) -> None:
    for setter, value in zip(
        (model.set_use_split_qkv_input, model.set_use_attn_result), saved, strict=True
    ):
        try:
            setter(value)
        except NotImplementedError:
            pass  # never enabled on this bridge: nothing to restore


@dataclass
class PerHead:
    """Hook names and transforms for per-head outputs and q/k/v inputs on one model.

    `result_hook(layer)` holds the heads' outputs; `result(act, layer)` turns that activation
    into (..., head, d_model). `input_hook(layer, part)` names a head-split q/k/v input, shaped
    (..., pos, head, d_model); `translate(fwd_hooks)` turns hooks on those names into hooks the
    model really has (the identity where the bridge splits them itself).
    """

    model: Any
    split: bool
    _resid: dict[int, Tensor] = field(default_factory=dict)

    def result_hook(self, layer: int) -> str:
        return f"blocks.{layer}.attn.hook_{'result' if self.split else 'z'}"

    def result(self, act: Tensor, layer: int) -> Tensor:
        if self.split:
            return act
        w_o = weight(self.model, f"blocks.{layer}.attn.W_O")  # (head, d_head, d_model)
        return torch.einsum("...hd,hdm->...hm", act, w_o.to(act.dtype))

    @staticmethod
    def input_hook(layer: int, part: str) -> str:
        return f"blocks.{layer}.attn.hook_{part}_input"

    def translate(self, fwd_hooks: Sequence[TLHook]) -> list[TLHook]:
        if self.split:
            return list(fwd_hooks)
        out: list[TLHook] = []
        recorded: set[int] = set()
        for name, fn in fwd_hooks:
            parsed = _parse_input_hook(name)
            if parsed is None:
                out.append((name, fn))
                continue
            layer, part = parsed
            if layer not in recorded:
                recorded.add(layer)
                out.insert(0, (f"blocks.{layer}.hook_resid_pre", self._keep_resid(layer)))
            out.append((f"blocks.{layer}.attn.hook_{part}", self._reproject(layer, part, fn)))
        return out

    def _keep_resid(self, layer: int) -> Callable:
        def keep(act: Tensor, hook: Any) -> None:
            self._resid[layer] = act

        return keep

    def _reproject(self, layer: int, part: str, fn: Callable) -> Callable:
        """A hook on hook_{part} that lets `fn` rewrite each head's input and re-projects it."""

        def hook(act: Tensor, hook: Any) -> Tensor:
            # act: (rows, pos, head, d_head), the model's own projection of its input
            x = self._resid[layer]  # (rows, pos, d_model)
            heads = x.unsqueeze(-2).expand(*x.shape[:-1], act.shape[-2], x.shape[-1])
            new = fn(heads, hook)
            new = heads if new is None else new  # (rows, pos, head, d_model)
            base = self._project(heads, layer, part)
            self._check(base, act, layer, part)
            # the model's value plus the change of the input; gradients reach `new` only
            return act.detach() + self._project(new, layer, part) - base.detach()

        return hook

    def _project(self, heads: Tensor, layer: int, part: str) -> Tensor:
        block = self.model.blocks[layer]
        normed = block.ln1(heads) if hasattr(block, "ln1") else heads
        w = weight(self.model, f"blocks.{layer}.attn.W_{part.upper()}")  # (head, d_model, d_head)
        out = torch.einsum("...hm,hmd->...hd", normed, w.to(normed.dtype))
        try:
            out = out + weight(self.model, f"blocks.{layer}.attn.b_{part.upper()}").to(out.dtype)
        except SiteError:
            pass  # no bias on this projection
        return out

    @staticmethod
    def _check(base: Tensor, act: Tensor, layer: int, part: str) -> None:
        tol = 1e-4 if act.dtype == torch.float32 else 2e-2
        scale = float(act.detach().abs().max()) + 1.0
        error = float((base.detach() - act.detach()).abs().max())
        if error > tol * scale:
            raise PerHeadError(
                f"blocks.{layer}.attn.hook_{part}: the per-head {part} input of this model "
                f"cannot be recomputed from its weights (differs by {error:.3g}); its attention "
                "bridge does not split Q/K/V inputs, so edge methods cannot run on it"
            )


def _parse_input_hook(name: str) -> tuple[int, str] | None:
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blocks" and parts[2] == "attn":
        leaf = parts[3]
        for part in ("q", "k", "v"):
            if leaf == f"hook_{part}_input":
                return int(parts[1]), part
    return None


@contextmanager
def per_head_hooks(model: Any) -> Iterator[PerHead]:
    """Per-head results and q/k/v inputs for the block: the bridge's own where it can split
    them (its flags restored on exit), computed from the weights where it cannot."""
    if not can_split(model):
        yield PerHead(model, split=False)
        return
    saved = (bool(model.cfg.use_split_qkv_input), bool(model.cfg.use_attn_result))
    model.set_use_split_qkv_input(True)
    model.set_use_attn_result(True)
    try:
        yield PerHead(model, split=True)
    finally:
        _restore(model, saved)
