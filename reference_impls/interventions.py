"""Interventions that always undo themselves: hook contexts and reversible weight edits.

Steering a model must never leave it changed by accident, nor leave it unchanged by accident.
Activation interventions are context managers over the bridge's own hook API
(`TransformerBridge.hooks`): every hook they add is removed when the `with` block ends, also
when the body raises; and when the block ends normally, every hook must have fired and every
hook that writes must have changed what was there at least once (unless the caller declares
the identity deliberate, `identity_ok=True`), or `SilentInterventionError` names the hook. A
patch written to a hook the forward never reaches, or an ablation of what is already zero, is
then an error instead of a result that silently measures the unpatched model. Weight edits return a
`WeightEdit` that remembers the original values and `undo()`es them bit for bit (it is also a
context manager). Weights are addressed in TransformerLens' orientation (`W_in: [d_model, d_mlp]`,
`W_O: [n_heads, d_head, d_model]`, ...) through `weight(model, name)`, which returns a *live view*
of the parameter the forward pass really uses: TransformerBridge's own `W_out`-style properties
are copies for some architectures (GPT-2), so editing them would silently do nothing.

Example:
    >>> with ablate(model, head(1, 0)):                      # zero head L1H0's output
    ...     logits = model(tokens)
    >>> with edit_weights(model, {"blocks.0.mlp.W_out": new}) as edit:
    ...     logits = model(tokens)                           # edited; restored on exit
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from reference_impls.addressing import Site, SiteError

HookFn = Callable[
    [Tensor, Any], Tensor | None
]  # TransformerLens: fn(activation, hook) -> new or None


class HookNameError(KeyError):
    """A hook name the model does not have."""

    def __str__(self) -> str:  # KeyError would print the repr of its message
        return str(self.args[0])


class SilentInterventionError(RuntimeError):
    """An intervention that did nothing: a hook never fired, or wrote back what was there."""


class _Watched:
    """A hook function that counts its calls and whether it ever changed its activation."""

    def __init__(self, name: str, fn: HookFn) -> None:
        self.name, self.fn = name, fn
        self.fired = self.writes = 0
        self.changed = False

    def __call__(self, act: Tensor, hook: Any) -> Tensor | None:
        self.fired += 1
        # a copy only until the first change: the hook may rewrite `act` in place
        before = None if self.changed else act.detach().clone()
        out = self.fn(act, hook)
        if out is not None or (before is not None and not torch.equal(before, act)):
            self.writes += 1
        if before is not None:
            new = act if out is None else out
            self.changed = new.shape != before.shape or not torch.equal(new.detach(), before)
        return out

    def verify(self, identity_ok: bool) -> None:
        if not self.fired:
            raise SilentInterventionError(
                f"hook {self.name!r} never fired: no forward pass in the block reached it, so "
                "the intervention did nothing"
            )
        if self.writes and not self.changed and not identity_ok:
            raise SilentInterventionError(
                f"hook {self.name!r} fired {self.fired} time(s) but wrote back exactly what was "
                "there: the intervention changed nothing (pass identity_ok=True if that is "
                "deliberate)"
            )


def _check_hook_names(model: Any, names: Iterable[str]) -> None:
    valid = model.hook_dict
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, list(valid), n=1)
            hint = f"; closest: {close[0]}" if close else ""
            raise HookNameError(f"model has no hook {name!r}{hint}")


@contextlib.contextmanager
def hooks(
    model: Any,
    fwd: Sequence[tuple[str, HookFn]] = (),
    bwd: Sequence[tuple[str, HookFn]] = (),
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Attach forward (`fwd`) and backward (`bwd`) hooks for the duration of the block.

    Each hook is `(hook_name, fn)` with `fn(activation, hook) -> activation or None`. Names are
    checked before anything is attached; every hook added here is removed on exit, even when the
    body raises, and hooks attached by others are left alone. When the block ends normally,
    each hook must have fired, and each that wrote (returned a tensor or changed its input in
    place) must have changed its activation at least once, unless `identity_ok`; otherwise
    `SilentInterventionError` names the hook. Observers (returning None) need only fire.
    """
    _check_hook_names(model, [name for name, _ in (*fwd, *bwd)])
    fwd_w = [_Watched(name, fn) for name, fn in fwd]
    bwd_w = [_Watched(name, fn) for name, fn in bwd]
    with model.hooks(
        fwd_hooks=[(w.name, w) for w in fwd_w], bwd_hooks=[(w.name, w) for w in bwd_w]
    ):
        yield model
    for watched in (*fwd_w, *bwd_w):
        watched.verify(identity_ok)


def _as_sites(sites: Site | Iterable[Site]) -> list[Site]:
    return [sites] if isinstance(sites, Site) else list(sites)


def _site_hooks(sites: list[Site], make: Callable[[Site], HookFn]) -> list[tuple[str, HookFn]]:
    for s in sites:
        if s.kind == "sae_feature":
            # the model has no hook for an SAE's latents; SAE methods splice the SAE in themselves
            raise SiteError(
                f"{s}: an sae_feature site is not a model hook; intervene through its SAE"
            )
    return [(s.hook_name, make(s)) for s in sites]


@contextlib.contextmanager
def patch(
    model: Any,
    sites: Site | Iterable[Site],
    values: Tensor | float | Sequence[Tensor],
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Replace each site's slice with a value (one value for all sites, or one per site).

    Values broadcast against the slice, e.g. a clean run's `site.select(clean_act)` patched
    into a corrupted run. A patch that never fires or never changes anything is an error
    (`hooks`), unless `identity_ok` (e.g. clean patched into clean as a sanity check).
    """
    sites = _as_sites(sites)
    per_site = list(values) if isinstance(values, list | tuple) else [values] * len(sites)
    if len(per_site) != len(sites):
        raise ValueError(f"{len(per_site)} values for {len(sites)} sites")
    by_site = dict(zip(sites, per_site, strict=True))

    def make(s: Site) -> HookFn:
        return lambda act, hook: s.write(act, by_site[s])

    with hooks(model, fwd=_site_hooks(sites, make), identity_ok=identity_ok):
        yield model


@contextlib.contextmanager
def ablate(
    model: Any,
    sites: Site | Iterable[Site],
    mean: Mapping[Site, Tensor] | None = None,
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Zero-ablate each site, or mean-ablate it when `mean[site]` (its mean slice) is given."""
    sites = _as_sites(sites)
    values = [0.0 if mean is None else mean[s] for s in sites]
    with patch(model, sites, values, identity_ok=identity_ok):
        yield model


@contextlib.contextmanager
def add(
    model: Any,
    sites: Site | Iterable[Site],
    vector: Float[Tensor, " d_site"],
    scale: float = 1.0,
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Add `scale * vector` to each site's slice (activation steering / vector arithmetic).

    `identity_ok` declares a zero step (scale 0, a zero vector) deliberate."""
    sites = _as_sites(sites)

    def make(s: Site) -> HookFn:
        def fn(act: Tensor, hook: Any) -> Tensor:
            return s.write(act, s.select(act) + scale * vector.to(act.dtype))

        return fn

    with hooks(model, fwd=_site_hooks(sites, make), identity_ok=identity_ok):
        yield model


@contextlib.contextmanager
def project_out(
    model: Any,
    sites: Site | Iterable[Site],
    direction: Float[Tensor, " d_site"],
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Remove the component along `direction` from each site's slice (directional ablation)."""
    sites = _as_sites(sites)
    unit = direction / direction.norm()

    def make(s: Site) -> HookFn:
        def fn(act: Tensor, hook: Any) -> Tensor:
            x = s.select(act)  # [..., d]
            u = unit.to(act.dtype)
            return s.write(act, x - (x @ u)[..., None] * u)

        return fn

    with hooks(model, fwd=_site_hooks(sites, make), identity_ok=identity_ok):
        yield model


@contextlib.contextmanager
def record(
    model: Any, sites: Site | Iterable[Site], detach: bool = True
) -> Iterator[dict[Site, Tensor]]:
    """Collect each site's slice during the forward passes in the block into a dict.

    With `detach=False` the recorded tensors keep their graph (for gradient methods).
    The dict is filled by the passes run inside the block; a later pass overwrites it.
    """
    sites = _as_sites(sites)
    store: dict[Site, Tensor] = {}

    def make(s: Site) -> HookFn:
        def fn(act: Tensor, hook: Any) -> None:
            x = s.select(act)
            store[s] = x.detach().clone() if detach else x

        return fn

    with hooks(model, fwd=_site_hooks(sites, make)):
        yield store


# ---- weights --------------------------------------------------------------------------------


def _in_out(module: Any) -> Tensor:
    """The weight of a bridged linear layer as [in_features, out_features] (a view)."""
    inner = getattr(module, "_original_component", module)
    w = inner.weight
    # HF Conv1D (GPT-2) stores [in, out]; torch.nn.Linear stores [out, in]
    return w if type(inner).__name__ == "Conv1D" else w.T


def _bias(module: Any) -> Tensor:
    inner = getattr(module, "_original_component", module)
    if getattr(inner, "bias", None) is None:
        raise SiteError(f"{type(inner).__name__} has no bias")
    return inner.bias


WEIGHT_NAMES = (
    "W_E [d_vocab, d_model]",
    "W_pos [n_ctx, d_model]",
    "W_U [d_model, d_vocab]",
    "blocks.{l}.attn.W_Q / W_K / W_V [n_heads, d_model, d_head]",
    "blocks.{l}.attn.W_O [n_heads, d_head, d_model]",
    "blocks.{l}.attn.b_Q / b_K / b_V [n_heads, d_head], b_O [d_model]",
    "blocks.{l}.mlp.W_in / W_gate [d_model, d_mlp], W_out [d_mlp, d_model], b_in [d_mlp], b_out [d_model]",
    "any name from model.named_parameters()",
)


def weight(model: Any, name: str) -> Tensor:
    """A live view, in TransformerLens orientation, of the weight `name` (see WEIGHT_NAMES).

    Writing into the view changes the model. On grouped-query models W_K/W_V/b_K/b_V have
    `n_key_value_heads` heads.
    """
    try:
        found = _resolve(model, name)
    except (AttributeError, IndexError):  # no such module on this architecture / layer
        found = None
    if found is None:
        close = difflib.get_close_matches(name, weight_names(model), n=1)
        hint = f"; closest: {close[0]}" if close else ""
        raise SiteError(f"unknown weight {name!r}{hint}; valid forms: {'; '.join(WEIGHT_NAMES)}")
    return found


def _resolve(model: Any, name: str) -> Tensor | None:
    params = dict(model.named_parameters())
    if name in params:
        return params[name]
    cfg = model.cfg
    if name == "W_E":
        return model.embed._original_component.weight
    if name == "W_pos":
        return model.pos_embed._original_component.weight
    if name == "W_U":
        return _in_out(model.unembed)
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blocks" and parts[1].isdigit():
        block = model.blocks[int(parts[1])]
        group, leaf = parts[2], parts[3]
        n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
        if group == "attn":
            attn = block.attn
            proj = {"Q": attn.q, "K": attn.k, "V": attn.v, "O": attn.o}.get(leaf[-1:])
            n = n_kv if leaf[-1:] in ("K", "V") else cfg.n_heads
            if leaf in ("W_Q", "W_K", "W_V"):
                # [d_model, n*d_head] -> [n, d_model, d_head], still a view
                return _in_out(proj).view(cfg.d_model, n, cfg.d_head).permute(1, 0, 2)
            if leaf == "W_O":
                return _in_out(proj).view(cfg.n_heads, cfg.d_head, cfg.d_model)
            if leaf in ("b_Q", "b_K", "b_V"):
                return _bias(proj).view(n, cfg.d_head)
            if leaf == "b_O":
                return _bias(proj)
        if group == "mlp":
            mlp = block.mlp
            table = {
                "W_in": lambda: _in_out(getattr(mlp, "in")),
                "W_gate": lambda: _in_out(mlp.gate),
                "W_out": lambda: _in_out(mlp.out),
                "b_in": lambda: _bias(getattr(mlp, "in")),
                "b_out": lambda: _bias(mlp.out),
            }
            if leaf in table:
                return table[leaf]()
    return None


def weight_names(model: Any) -> list[str]:
    """The TransformerLens-style weight names `weight()` resolves on this model."""
    out = ["W_E", "W_U"] + (["W_pos"] if hasattr(model, "pos_embed") else [])
    for layer in range(model.cfg.n_layers):
        for leaf in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"):
            out.append(f"blocks.{layer}.attn.{leaf}")
        for leaf in ("W_in", "W_gate", "W_out", "b_in", "b_out"):
            out.append(f"blocks.{layer}.mlp.{leaf}")
    return [n for n in out if _resolves(model, n)]


def _resolves(model: Any, name: str) -> bool:
    try:
        return _resolve(model, name) is not None
    except (SiteError, AttributeError, IndexError):
        return False


class WeightEdit:
    """An applied change to some weights that `undo()` restores bit for bit.

    Made by `edit_weights`. Usable as a context manager (undone on exit, also on exceptions).
    `undo()` is idempotent. Undo overlapping edits in reverse order of application.
    """

    def __init__(self, targets: Mapping[str, Tensor], originals: Mapping[str, Tensor]):
        self._targets = dict(targets)
        self._originals = dict(originals)
        self.undone = False

    @property
    def names(self) -> list[str]:
        """The weights this edit changed."""
        return list(self._targets)

    def original(self, name: str) -> Tensor:
        """A copy of the weight `name` as it was before the edit."""
        return self._originals[name].clone()

    def undo(self) -> None:
        """Write the original values back (exactly the same bits)."""
        if self.undone:
            return
        with torch.no_grad():
            for name, view in self._targets.items():
                view.copy_(self._originals[name])
        self.undone = True

    def __enter__(self) -> WeightEdit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def edit_weights(
    model: Any, changes: Mapping[str, Tensor | Callable[[Tensor], Tensor]]
) -> WeightEdit:
    """Apply `changes` ({weight name: new value, or fn(old) -> new}) and return the WeightEdit.

    Names as in `weight()`. Shapes must match; nothing is changed if any name or shape is wrong.
    """
    targets = {name: weight(model, name) for name in changes}
    news: dict[str, Tensor] = {}
    for name, change in changes.items():
        old = targets[name]
        new = change(old.detach().clone()) if callable(change) else change
        new = torch.as_tensor(new, dtype=old.dtype, device=old.device)
        if new.shape != old.shape:
            raise SiteError(
                f"new value for {name} has shape {tuple(new.shape)}, expected {tuple(old.shape)}"
            )
        news[name] = new
    originals = {name: view.detach().clone() for name, view in targets.items()}
    with torch.no_grad():
        for name, view in targets.items():
            view.copy_(news[name])
    return WeightEdit(targets, originals)
