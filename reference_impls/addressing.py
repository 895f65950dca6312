"""Sites: one small vocabulary for the survey's interpretable objects, mapped to hook names.

A `Site` names one object of a bridged model (token embedding, residual stream at a layer, a
head's output / q / k / v / pattern, an attention or MLP block's output, a neuron, an SAE
feature), optionally at one token position, and knows the TransformerLens hook that carries it
(`site.hook_name`) and which slice of that hook's activation it is (`site.slices()`,
`site.select(act)`, `site.write(act, value)`). Every locate and steer method speaks in sites, so
a score tensor can always say what it is a score *of* (`SiteScores`).

Hook names are TransformerLens' compatibility names (`TransformerBridge.enable_compatibility_mode`),
the same names HookedTransformer used, so that methods port from the papers' code unchanged.
Activation layouts (batch first; `pos` is the query position):

    embed, resid_pre/mid/post, attn_out, mlp_out   [batch, pos, d_model]
    head_out (hook_z), q, k, v                     [batch, pos, head, d_head]
    pattern                                        [batch, head, pos, key_pos]
    neuron (mlp.hook_post)                         [batch, pos, d_mlp]
    sae_feature (an SAE's latent activations)      [batch, pos, n_features]

On grouped-query-attention models `k` and `v` have `n_key_value_heads` heads, not `n_heads`:
`heads(model, "k")` enumerates the right number.

Example:
    >>> s = head(1, 3, pos=4)                  # head L1H3's output at position 4
    >>> s.hook_name
    'blocks.1.attn.hook_z'
    >>> s.slices()
    (slice(None, None, None), 4, 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from mi_atlas import runs

# kind -> (hook name template, axis names of the hooked activation after `batch`)
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "embed": ("hook_embed", ("pos", "d_model")),
    "resid_pre": ("blocks.{layer}.hook_resid_pre", ("pos", "d_model")),
    "resid_mid": ("blocks.{layer}.hook_resid_mid", ("pos", "d_model")),
    "resid_post": ("blocks.{layer}.hook_resid_post", ("pos", "d_model")),
    "attn_out": ("blocks.{layer}.hook_attn_out", ("pos", "d_model")),
    "mlp_out": ("blocks.{layer}.hook_mlp_out", ("pos", "d_model")),
    "head_out": ("blocks.{layer}.attn.hook_z", ("pos", "head", "d_head")),
    "q": ("blocks.{layer}.attn.hook_q", ("pos", "head", "d_head")),
    "k": ("blocks.{layer}.attn.hook_k", ("pos", "head", "d_head")),
    "v": ("blocks.{layer}.attn.hook_v", ("pos", "head", "d_head")),
    "pattern": ("blocks.{layer}.attn.hook_pattern", ("head", "pos", "key_pos")),
    "neuron": ("blocks.{layer}.mlp.hook_post", ("pos", "index")),
    "sae_feature": ("{hook}", ("pos", "index")),
}

KINDS: tuple[str, ...] = tuple(_KINDS)

# kind -> taxonomy object id (taxonomy/objects), so results can link to the survey's nodes
OBJECT_OF_KIND: dict[str, str] = {
    "embed": "token-embedding",
    "resid_pre": "residual-stream",
    "resid_mid": "residual-stream",
    "resid_post": "residual-stream",
    "attn_out": "attention-head",
    "mlp_out": "ffn",
    "head_out": "attention-head",
    "q": "attention-head",
    "k": "attention-head",
    "v": "attention-head",
    "pattern": "attention-head",
    "neuron": "neuron",
    "sae_feature": "sae-feature",
}

_HEAD_KINDS = ("head_out", "q", "k", "v", "pattern")


class SiteError(ValueError):
    """A site that does not exist, or does not exist on this model."""


@dataclass(frozen=True)
class Site:
    """One interpretable object of a model, optionally at one token position.

    Fields left as None mean "all": `pos=None` addresses every position. `layer` is needed by
    every kind except `embed`; `head` by the head kinds; `index` (neuron or feature number) by
    `neuron` and `sae_feature`; `hook` (the hook an SAE reads and writes) by `sae_feature`.
    Build sites with the helpers below (`resid`, `head`, `neuron`, ...) rather than by hand.
    """

    kind: str
    layer: int | None = None
    pos: int | None = None
    head: int | None = None
    index: int | None = None
    hook: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise SiteError(f"site kind {self.kind!r} is unknown; valid kinds: {', '.join(KINDS)}")
        axes = _KINDS[self.kind][1]
        needs_layer = self.kind not in ("embed", "sae_feature")
        if needs_layer and self.layer is None:
            raise SiteError(f"a {self.kind} site needs a layer")
        if self.kind in _HEAD_KINDS and self.head is None:
            raise SiteError(f"a {self.kind} site needs a head")
        if "index" in axes and self.index is None:
            raise SiteError(f"a {self.kind} site needs an index (neuron or feature number)")
        if self.kind == "sae_feature" and not self.hook:
            raise SiteError("an sae_feature site needs the hook name its SAE reads")
        if "head" not in axes and self.head is not None:
            raise SiteError(f"a {self.kind} site has no head")
        if "index" not in axes and self.index is not None:
            raise SiteError(f"a {self.kind} site has no index")

    @property
    def hook_name(self) -> str:
        """The TransformerLens (compatibility-mode) hook whose activation holds this site."""
        return _KINDS[self.kind][0].format(layer=self.layer, hook=self.hook)

    @property
    def object(self) -> str:
        """The taxonomy object id of this site (e.g. `attention-head`, `neuron`)."""
        return OBJECT_OF_KIND[self.kind]

    def slices(self, batch: int | slice | Tensor = slice(None)) -> tuple[Any, ...]:
        """The indexing tuple of this site into its hook's activation (batch axis first).

        `batch` selects the batch rows: all by default, or one row / an index tensor, which is
        how batched methods patch a different site in each row of one forward pass.
        """
        idx: list[Any] = [batch]
        for axis in _KINDS[self.kind][1]:
            value = {"pos": self.pos, "head": self.head, "index": self.index}.get(axis)
            idx.append(slice(None) if value is None else value)
        # trailing full slices say nothing; drop them so the tuple reads as the site
        while len(idx) > 1 and isinstance(idx[-1], slice) and idx[-1] == slice(None):
            idx.pop()
        return tuple(idx)

    def select(self, act: Tensor, batch: int | slice | Tensor = slice(None)) -> Tensor:
        """This site's slice of `act`, the activation at `self.hook_name` (a view, no copy)."""
        return act[self.slices(batch)]

    def write(
        self, act: Tensor, value: Tensor | float, batch: int | slice | Tensor = slice(None)
    ) -> Tensor:
        """A copy of `act` whose slice at this site is `value` (broadcast); `act` is unchanged."""
        out = act.clone()
        out[self.slices(batch)] = value
        return out

    def at(self, pos: int | None) -> Site:
        """The same object at another position (None: all positions)."""
        return dataclasses.replace(self, pos=pos)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the fields that are set, plus `hook_name`, `object` and `label`."""
        d: dict[str, Any] = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        d.update(hook_name=self.hook_name, object=self.object, label=str(self))
        return d

    def doc(self) -> runs.Site:
        """This site as the run document names it (`mi_atlas.runs.Site`): hook, object, label."""
        return runs.Site(
            kind=self.kind,
            hook=self.hook_name,
            object=self.object,
            label=str(self),
            layer=self.layer,
            head=self.head,
            index=self.index,
            pos=self.pos,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Site:
        """Inverse of `to_dict` (extra keys such as `hook_name` are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    def __str__(self) -> str:
        parts = [self.kind]
        if self.layer is not None:
            parts.append(f"L{self.layer}")
        if self.head is not None:
            parts.append(f"H{self.head}")
        if self.index is not None:
            parts.append(f"#{self.index}")
        if self.hook is not None:
            parts.append(f"on {self.hook}")
        if self.pos is not None:
            parts.append(f"@{self.pos}")
        return " ".join(parts)


# ---- constructors: the vocabulary methods use -------------------------------------------------


def embed(pos: int | None = None) -> Site:
    """The token embedding W_E[token] at `pos` (hook_embed)."""
    return Site("embed", pos=pos)


def resid(layer: int, pos: int | None = None, where: str = "pre") -> Site:
    """The residual stream x^layer before (`pre`), between (`mid`) or after (`post`) block `layer`."""
    if where not in ("pre", "mid", "post"):
        raise SiteError(f"where={where!r} is not one of 'pre', 'mid', 'post'")
    return Site(f"resid_{where}", layer=layer, pos=pos)


def head(layer: int, head: int, pos: int | None = None, part: str = "out") -> Site:
    """Attention head (layer, head): its output z (`out`), `q`, `k`, `v` or `pattern` row at `pos`.

    For `k`/`v` on a grouped-query model, `head` numbers the key/value heads.
    """
    kind = {"out": "head_out", "q": "q", "k": "k", "v": "v", "pattern": "pattern"}.get(part)
    if kind is None:
        raise SiteError(f"part={part!r} is not one of 'out', 'q', 'k', 'v', 'pattern'")
    return Site(kind, layer=layer, pos=pos, head=head)


def attn_out(layer: int, pos: int | None = None) -> Site:
    """The attention block's output (all heads, after W_O) at `pos`."""
    return Site("attn_out", layer=layer, pos=pos)


def mlp_out(layer: int, pos: int | None = None) -> Site:
    """The MLP (FFN) block's output at `pos`."""
    return Site("mlp_out", layer=layer, pos=pos)


def neuron(layer: int, index: int, pos: int | None = None) -> Site:
    """MLP neuron `index` of `layer` (its activation s_j, after the nonlinearity) at `pos`."""
    return Site("neuron", layer=layer, pos=pos, index=index)


def sae_feature(hook: str, index: int, pos: int | None = None) -> Site:
    """Feature `index` of an SAE that reads `hook`; it addresses the SAE's latent tensor."""
    return Site("sae_feature", pos=pos, index=index, hook=hook)


# ---- model dimensions and enumeration -------------------------------------------------------


@dataclass(frozen=True)
class Dims:
    """The sizes of a bridged model that sites range over."""

    n_layers: int
    n_heads: int
    n_kv_heads: int  # == n_heads unless the model uses grouped-query attention
    d_model: int
    d_head: int
    d_mlp: int


def dims(model: Any) -> Dims:
    """The `Dims` of a TransformerBridge (read from `model.cfg`)."""
    cfg = model.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    return Dims(cfg.n_layers, cfg.n_heads, n_kv, cfg.d_model, cfg.d_head, cfg.d_mlp)


def _positions(positions: int | Iterable[int] | None) -> list[int | None]:
    if positions is None:
        return [None]
    if isinstance(positions, int):
        return list(range(positions))
    return list(positions)


def heads(
    model: Any,
    part: str = "out",
    positions: int | Iterable[int] | None = None,
    layers: Iterable[int] | None = None,
) -> list[Site]:
    """Every head site of `model`, ordered layer, head, position (row-major).

    `positions`: None for all positions at once, an int n for each of 0..n-1, or an iterable.
    For `k`/`v` the heads are the key/value heads (fewer on grouped-query models).
    """
    d = dims(model)
    n = d.n_kv_heads if part in ("k", "v") else d.n_heads
    layer_list = range(d.n_layers) if layers is None else layers
    return [
        head(layer, h, pos=p, part=part)
        for layer in layer_list
        for h in range(n)
        for p in _positions(positions)
    ]


def layers(
    model: Any, kind: str = "resid_pre", positions: int | Iterable[int] | None = None
) -> list[Site]:
    """One site of `kind` (resid_pre/mid/post, attn_out, mlp_out) per layer (and position)."""
    if kind not in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"):
        raise SiteError(f"kind={kind!r} is not a per-layer kind")
    return [
        Site(kind, layer=layer, pos=p)
        for layer in range(dims(model).n_layers)
        for p in _positions(positions)
    ]


def neurons(model: Any, layer: int, positions: int | Iterable[int] | None = None) -> list[Site]:
    """Every neuron of MLP `layer`, ordered neuron, position."""
    return [
        neuron(layer, j, pos=p) for j in range(dims(model).d_mlp) for p in _positions(positions)
    ]


def check(model: Any, site: Site) -> Site:
    """Return `site` if it exists on `model`, else raise SiteError naming the valid range."""
    d = dims(model)
    if site.layer is not None and not 0 <= site.layer < d.n_layers:
        raise SiteError(f"{site}: layer must be in 0..{d.n_layers - 1}")
    if site.head is not None:
        n = d.n_kv_heads if site.kind in ("k", "v") else d.n_heads
        if not 0 <= site.head < n:
            raise SiteError(f"{site}: head must be in 0..{n - 1} for {site.kind}")
    if site.kind == "neuron" and not 0 <= site.index < d.d_mlp:  # type: ignore[operator]
        raise SiteError(f"{site}: neuron index must be in 0..{d.d_mlp - 1}")
    return site


# ---- scores over sites ----------------------------------------------------------------------


@dataclass(frozen=True)
class SiteScores:
    """What a locate method returns: a score tensor and the sites it is indexed by.

    `values` has shape `shape`; `sites` lists the sites in row-major order of `values`
    (so `values.reshape(-1)[i]` is the score of `sites[i]`); `dims` names the axes,
    e.g. ("layer", "head", "pos").
    """

    values: Float[Tensor, "..."]
    sites: tuple[Site, ...]
    dims: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.numel() != len(self.sites):
            raise SiteError(f"{self.values.numel()} scores for {len(self.sites)} sites")
        if self.values.dim() != len(self.dims):
            raise SiteError(f"values has {self.values.dim()} axes but dims names {len(self.dims)}")

    @classmethod
    def from_grid(cls, values: Tensor, sites: Sequence[Site], dims: Sequence[str]) -> SiteScores:
        """Build from a score grid and its sites in row-major order (detached, on CPU)."""
        return cls(values.detach().cpu(), tuple(sites), tuple(dims))

    def top(self, k: int = 1, largest: bool = True) -> list[tuple[Site, float]]:
        """The k highest (or lowest) scoring sites with their scores."""
        flat = self.values.reshape(-1)
        k = min(k, flat.numel())
        vals, idx = torch.topk(flat, k, largest=largest)
        return [(self.sites[i], float(v)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)]

    def score(self, site: Site) -> float:
        """The score of one site (SiteError if it was not scored)."""
        try:
            i = self.sites.index(site)
        except ValueError:
            raise SiteError(f"{site} was not scored") from None
        return float(self.values.reshape(-1)[i])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: dims, shape, row-major scores and the sites they index."""
        return {
            "dims": list(self.dims),
            "shape": list(self.values.shape),
            "scores": [float(v) for v in self.values.reshape(-1).tolist()],
            "sites": [s.to_dict() for s in self.sites],
        }
