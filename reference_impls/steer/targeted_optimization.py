"""Targeted optimization: change only the weights of the located component.

Two forms. A rank-one edit (ROME) treats an MLP's output matrix as a linear key-value memory:
the key k* is the MLP's hidden activation at the subject's last token, and the edit adds the
rank-one term that maps k* to a new value v* (found by a few gradient steps on the MLP output
so that the model says the new object) while disturbing other keys as little as possible
under their second moment C = E[k k^T], computed here from the zoo's own training data.
Fine-tuning the located parameters trains only the entries of the located heads or neurons and
leaves every other weight bit-for-bit unchanged. Both return an edit that `undo()` reverts
exactly.

References:
- Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME): the closed-form
  rank-one update W' = W + (v* - W k*) (C^-1 k*)^T / ((C^-1 k*)^T k*).
- Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value Memories".
- Meng et al. 2023, "Mass-Editing Memory in a Transformer" (MEMIT): the same key statistics.
- Wu et al. 2024, "ReFT" and Sun et al. 2024 / Zhang et al. 2024 on fine-tuning only located
  heads or neurons: updating a small located subset of parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mi_atlas import runs
from reference_impls.addressing import Site, SiteError, dims, mlp_out, neuron
from reference_impls.interventions import WeightEdit, edit_weights, hooks, weight
from reference_impls.registry import Outcome, register_method


def mlp_keys(
    model, layer: int, tokens: Int[Tensor, "batch pos"], batch_size: int = 64
) -> Float[Tensor, "n d_mlp"]:
    """The MLP's hidden activations (its keys) at every position of `tokens`, flattened."""
    keys = [
        _all_keys(model, layer, tokens[s : s + batch_size])
        for s in range(0, len(tokens), batch_size)
    ]
    return torch.cat([k.reshape(-1, k.shape[-1]) for k in keys])  # (batch * pos, d_mlp)


def _all_keys(
    model, layer: int, tokens: Int[Tensor, "batch pos"]
) -> Float[Tensor, "batch pos d_mlp"]:
    """Every neuron of MLP `layer` (the input of its output matrix W_out) on `tokens`."""
    store = {}

    def keep(act: Tensor, hook=None) -> None:
        store["keys"] = act.detach().clone()

    with torch.no_grad(), hooks(model, fwd=[(neuron(layer, 0).hook_name, keep)]):
        model(tokens)
    return store["keys"]


def key_second_moment(
    model, layer: int, tokens: Int[Tensor, "batch pos"], batch_size: int = 64
) -> Float[Tensor, "d_mlp d_mlp"]:
    """C = E[k k^T] over every position of `tokens` (ROME uses the uncentred second moment)."""
    keys = mlp_keys(model, layer, tokens, batch_size).double()  # (n, d_mlp)
    return (keys.T @ keys / keys.shape[0]).float()


def _gather_positions(
    x: Float[Tensor, "batch pos d"], positions: Int[Tensor, " batch"]
) -> Float[Tensor, "batch d"]:
    return x[torch.arange(x.shape[0]), positions]


def subject_key(
    model, layer: int, tokens: Int[Tensor, "batch pos"], subject_pos: Int[Tensor, " batch"]
) -> Float[Tensor, " d_mlp"]:
    """k*: the MLP key at the subject's last token, averaged over the prompts that state it."""
    return _gather_positions(_all_keys(model, layer, tokens), subject_pos).mean(0)


def value_delta(
    model,
    layer: int,
    tokens: Int[Tensor, "batch pos"],
    subject_pos: Int[Tensor, " batch"],
    target: Int[Tensor, " batch"],
    steps: int = 60,
    lr: float = 0.1,
    weight_decay: float = 1e-3,
    kl_tokens: Int[Tensor, "m pos2"] | None = None,
    kl_subject_pos: Int[Tensor, " m"] | None = None,
    kl_weight: float = 0.0,
    clamp_norm: float | None = None,
) -> Float[Tensor, " d_model"]:
    """The change to the MLP output at the subject token that makes the model say `target`.

    ROME's v* = W k* + delta: delta is optimised by Adam on the mean negative log-probability
    of the target at the last position of every prompt in `tokens` (ROME states the fact after
    several random prefixes), with a small L2 penalty that keeps it short. With `kl_weight` > 0,
    ROME's essence-drift term kl_weight * KL(P_edited || P_original) of the next token after
    the `kl_tokens` prompts (ROME's "<subject> is a"), delta added at their subject token too,
    keeps what the model says about the subject otherwise. `clamp_norm` is ROME's norm
    constraint: |delta| at most that many times the mean norm of the MLP's original output at
    the subject.
    """
    delta = torch.zeros(dims(model).d_model, requires_grad=True)
    where: dict[str, Tensor] = {}

    def add_delta(out: Tensor, hook=None) -> Tensor:
        out = out.clone()
        rows = torch.arange(out.shape[0])
        out[rows, where["pos"]] = out[rows, where["pos"]] + delta  # (batch, d_model) at subject
        return out

    def last_logprobs(prompts: Tensor, positions: Tensor) -> Tensor:
        where["pos"] = positions
        return torch.log_softmax(model(prompts)[:, -1], dim=-1)  # (batch, vocab)

    # a delta placed after the end of the KL prompts cannot change them: no term to add
    use_kl = (
        kl_weight > 0
        and kl_tokens is not None
        and bool((kl_subject_pos < kl_tokens.shape[1]).all())
    )
    with torch.no_grad():
        original = _logprobs(model, kl_tokens) if use_kl else None
        limit = (
            clamp_norm * _subject_outputs(model, layer, tokens, subject_pos).norm(dim=-1).mean()
            if clamp_norm is not None
            else None
        )
    rows = torch.arange(tokens.shape[0])
    optimiser = torch.optim.Adam([delta], lr=lr)
    with _frozen(model), hooks(model, fwd=[(mlp_out(layer).hook_name, add_delta)]):
        for _ in range(steps):
            logprobs = last_logprobs(tokens, subject_pos)
            loss = -logprobs[rows, target].mean() + weight_decay * delta.pow(2).sum()
            if use_kl:
                edited = last_logprobs(kl_tokens, kl_subject_pos)
                loss = loss + kl_weight * _kl(edited, original)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if limit is not None and delta.norm() > limit:
                with torch.no_grad():
                    delta.mul_(limit / delta.norm())
    return delta.detach()


def _kl(edited: Float[Tensor, "m vocab"], original: Float[Tensor, "m vocab"]) -> Tensor:
    """KL(P_edited || P_original), mean over prompts (ROME's `kl_div(init, new, log_target)`)."""
    return torch.nn.functional.kl_div(original, edited, log_target=True, reduction="batchmean")


def _logprobs(model, tokens: Int[Tensor, "m pos"]) -> Float[Tensor, "m vocab"]:
    return torch.log_softmax(model(tokens)[:, -1], dim=-1)


def _subject_outputs(
    model, layer: int, tokens: Int[Tensor, "batch pos"], subject_pos: Int[Tensor, " batch"]
) -> Float[Tensor, "batch d_model"]:
    store = {}

    def keep(out: Tensor, hook=None) -> None:
        store["out"] = out.detach().clone()

    with hooks(model, fwd=[(mlp_out(layer).hook_name, keep)]):
        model(tokens)
    return _gather_positions(store["out"], subject_pos)


def essence_drift(model, kl_tokens: Int[Tensor, "m pos"], original: Tensor) -> float:
    """KL(P_now || P_original) of the next token after `kl_tokens`: how far an edit moved it."""
    with torch.no_grad():
        return float(_kl(_logprobs(model, kl_tokens), original))


def rank_one_update(
    key: Float[Tensor, " d_mlp"],
    delta: Float[Tensor, " d_model"],
    second_moment: Float[Tensor, "d_mlp d_mlp"],
    ridge: float = 1e-4,
) -> Float[Tensor, "d_mlp d_model"]:
    """The ROME update in (in, out) layout: out = k @ W, so W' = W + u delta^T / (u . k*).

    u = C^-1 k*; after the update, k* @ W' = k* @ W + delta exactly, and any key k changes its
    output by (u . k) / (u . k*) delta, which is small for keys uncorrelated with k* under C.
    `ridge` (relative to C's mean diagonal) keeps C invertible when some neurons never fire.
    """
    c = second_moment.double()
    c = c + ridge * c.diagonal().mean() * torch.eye(c.shape[0], dtype=c.dtype)
    u = torch.linalg.solve(c, key.double())  # (d_mlp,)
    return (torch.outer(u, delta.double()) / (u @ key.double())).float()


KL_WEIGHT = 0.0625  # ROME's kl_factor (Meng et al. 2022, hparams for GPT-2 XL)
CLAMP_NORM = 4.0  # ROME's clamp_norm_factor


@dataclass
class RomeResult:
    """A ROME edit and what it was computed from (the edit is applied; `edit.undo()` reverts).

    `drift`: KL(P_edited || P_original) after the `kl_tokens` prompts (None without them).
    """

    edit: WeightEdit
    layer: int
    key: Float[Tensor, " d_mlp"]
    delta: Float[Tensor, " d_model"]
    drift: float | None = None


def rome_edit(
    model,
    layer: int,
    tokens: Int[Tensor, "batch pos"],
    subject_pos: Int[Tensor, " batch"],
    target: Int[Tensor, " batch"],
    key_tokens: Int[Tensor, "n pos"],
    kl_tokens: Int[Tensor, "m pos2"] | None = None,
    kl_subject_pos: Int[Tensor, " m"] | None = None,
    kl_weight: float = KL_WEIGHT,
    clamp_norm: float | None = CLAMP_NORM,
    **value_kwargs,
) -> RomeResult:
    """Rewrite one fact: after the edit, `tokens` (prompts stating it) complete to `target`.

    ROME as Meng et al. 2022 state it: `tokens` holds the fact after several random prefixes,
    and both k* (the subject key, averaged over them) and v* (optimised on all of them) come
    from those contexts; the essence-drift KL term on `kl_tokens` and the norm clamp keep the
    edit from rewriting everything the model knows about the subject. `rome_edit_simplified`
    is the variant with one prompt, no KL term and no clamp. `key_tokens` is a sample of the
    model's training data for the key statistics C. W_out of `layer` changes in place.
    """
    second_moment = key_second_moment(model, layer, key_tokens)
    key = subject_key(model, layer, tokens, subject_pos)
    with torch.no_grad():
        original = _logprobs(model, kl_tokens) if kl_tokens is not None else None
    delta = value_delta(
        model,
        layer,
        tokens,
        subject_pos,
        target,
        kl_tokens=kl_tokens,
        kl_subject_pos=kl_subject_pos,
        kl_weight=kl_weight,
        clamp_norm=clamp_norm,
        **value_kwargs,
    )
    update = rank_one_update(key, delta, second_moment)  # (d_mlp, d_model)
    edit = edit_weights(model, {f"blocks.{layer}.mlp.W_out": lambda w: w + update})
    drift = essence_drift(model, kl_tokens, original) if original is not None else None
    return RomeResult(edit, layer, key, delta, drift)


def rome_edit_simplified(
    model,
    layer: int,
    tokens: Int[Tensor, "batch pos"],
    subject_pos: Int[Tensor, " batch"],
    target: Int[Tensor, " batch"],
    key_tokens: Int[Tensor, "n pos"],
    kl_tokens: Int[Tensor, "m pos2"] | None = None,
    **value_kwargs,
) -> RomeResult:
    """The simplified closed form: ROME's update without the KL term and the norm clamp.

    Pass the fact's prompt alone (no random prefixes) for the variant this repository first
    shipped. `kl_tokens` only measures the drift; it does not enter the optimisation.
    """
    return rome_edit(
        model,
        layer,
        tokens,
        subject_pos,
        target,
        key_tokens,
        kl_tokens=kl_tokens,
        kl_weight=0.0,
        clamp_norm=None,
        **value_kwargs,
    )


class _frozen:
    """Temporarily turn off gradients for every model parameter (restores the flags on exit)."""

    def __init__(self, model: nn.Module, keep: Iterable[Tensor] = ()) -> None:
        self.model = model
        self.keep = {id(p) for p in keep}

    def __enter__(self) -> None:
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        for p, _ in self.flags:
            p.requires_grad_(id(p) in self.keep)

    def __exit__(self, *exc) -> None:
        for p, flag in self.flags:
            p.requires_grad_(flag)


def site_weight_masks(model, sites: Iterable[Site]) -> dict[str, Tensor]:
    """The weight entries that belong to each located site, as boolean masks by weight name.

    A head (`head_out` site) owns its slices of W_Q, W_K, W_V, W_O and of b_Q, b_K, b_V; a
    neuron its column of W_in (and W_gate), its entry of b_in and its row of W_out; an
    `attn_out` or `mlp_out` site the whole block's weights. Names as in `interventions.weight`.
    """
    d = dims(model)
    masks: dict[str, Tensor] = {}

    def mark(name: str, index) -> None:
        try:
            view = weight(model, name)
        except (SiteError, AttributeError):
            return  # a model without biases, or an MLP without a gate
        mask = masks.setdefault(name, torch.zeros(view.shape, dtype=torch.bool))
        mask[index] = True

    for site in sites:
        prefix = f"blocks.{site.layer}"
        if site.kind == "head_out":
            kv = site.head // (d.n_heads // d.n_kv_heads)  # the key/value head it reads
            for leaf, h in (("Q", site.head), ("K", kv), ("V", kv)):
                mark(f"{prefix}.attn.W_{leaf}", h)
                mark(f"{prefix}.attn.b_{leaf}", h)
            mark(f"{prefix}.attn.W_O", site.head)
        elif site.kind == "neuron":
            for name in ("W_in", "W_gate"):
                mark(f"{prefix}.mlp.{name}", (slice(None), site.index))
            mark(f"{prefix}.mlp.b_in", site.index)
            mark(f"{prefix}.mlp.W_out", site.index)
        elif site.kind in ("attn_out", "mlp_out"):
            block = "attn" if site.kind == "attn_out" else "mlp"
            leaves = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")
            if block == "mlp":
                leaves = ("W_in", "W_gate", "W_out", "b_in", "b_out")
            for leaf in leaves:
                mark(f"{prefix}.{block}.{leaf}", ...)
        else:
            raise SiteError(
                f"{site}: fine-tuning takes head_out, neuron, attn_out or mlp_out sites"
            )
    return masks


def _parameter_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> dict[nn.Parameter, Tensor]:
    """Carry masks over weight views (`interventions.weight`) onto the parameters they view."""
    out: dict[nn.Parameter, Tensor] = {}
    params = list(model.parameters())
    for name, mask in masks.items():
        view = weight(model, name)
        param = next(
            p
            for p in params
            if p.untyped_storage().data_ptr() == view.untyped_storage().data_ptr()
            and p.storage_offset() <= view.storage_offset() < p.storage_offset() + p.numel()
        )
        # zeros_like keeps the parameter's strides (HF stores some weights transposed), so the
        # view's strides applied to the mask mark exactly the entries the view covers
        full = out.setdefault(param, torch.zeros_like(param, dtype=torch.bool))
        assert full.stride() == param.stride()
        strided = torch.as_strided(
            full, view.shape, view.stride(), view.storage_offset() - param.storage_offset()
        )
        strided |= mask
    return out


def fine_tune(
    model: nn.Module,
    masks: Mapping[str, Tensor],
    loss: Callable[[int], Tensor],
    steps: int = 100,
    lr: float = 1e-2,
) -> WeightEdit:
    """Fine-tune only the masked entries of the named weights; return the undoable edit.

    `masks` maps weight names (`interventions.weight`) to boolean masks of the entries that may
    change (`site_weight_masks` builds them from located sites; `all_weight_masks` is full
    fine-tuning). `loss(step)` runs the model on that step's data and returns the loss to
    minimise. Gradients outside the masks are zeroed, and Adam without weight decay then leaves
    those entries bit-for-bit unchanged.
    """
    by_param = _parameter_masks(model, masks)
    params = list(by_param)
    edit = WeightEdit(
        {f"param{i}": p for i, p in enumerate(params)},
        {f"param{i}": p.detach().clone() for i, p in enumerate(params)},
    )
    optimiser = torch.optim.Adam(params, lr=lr)
    with _frozen(model, keep=params):
        for step in range(steps):
            value = loss(step)
            optimiser.zero_grad()
            value.backward()
            for p in params:
                if p.grad is not None:  # a parameter the forward pass does not use has none
                    p.grad.mul_(by_param[p])
            optimiser.step()
    return edit


def all_weight_masks(model: nn.Module) -> dict[str, Tensor]:
    """Every parameter, every entry: full fine-tuning, the baseline to compare against."""
    return {name: torch.ones(p.shape, dtype=torch.bool) for name, p in model.named_parameters()}


def n_parameters(model: nn.Module) -> int:
    """Entries of the parameters the forward pass uses (those that get a gradient)."""
    with torch.enable_grad():
        flags = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in flags:
            p.requires_grad_(True)
            p.grad = None
        tokens = torch.ones(1, 2, dtype=torch.long)
        model(tokens).sum().backward()
        used = sum(p.numel() for p, _ in flags if p.grad is not None)
        for p, flag in flags:
            p.grad = None
            p.requires_grad_(flag)
    return used


def n_updated(masks: Mapping[str, Tensor]) -> int:
    """How many weight entries a masked fine-tune may change (overlaps counted once per name)."""
    return int(sum(int(mask.sum()) for mask in masks.values()))


@register_method("targeted-optimization", default_model="facts")
def demo(model_name: str) -> Outcome:
    """ROME-edit one fact at the planted MLP: the new city is recalled, other facts are kept."""
    from reference_impls import zoo

    model, task, truth = zoo.load(model_name), zoo.task(model_name), zoo.ground_truth(model_name)
    layer, position = truth["mlp_layer"], truth["position"]
    # the control: the same edit at the planted MLP one position later (the token after the
    # subject), a site as able to reach the answer, where the fact is not read
    other = position + 1
    queries, answers = task.query_tokens(), task.answers()
    subject = 0
    new_city = int(answers[(answers != answers[subject]).nonzero()[0, 0]])
    key_tokens = task.training_batch(torch.Generator().manual_seed(1), 512).tokens
    others = torch.arange(len(answers)) != subject

    def scores() -> dict[str, float]:
        with torch.no_grad():
            recall = model(queries)[:, -1].argmax(-1)
            direct = int(model(queries[subject : subject + 1, : position + 1])[0, -1].argmax())
        return {
            "efficacy": float(recall[subject] == new_city),
            "generalisation": float(direct == new_city),
            "specificity": float((recall[others] == answers[others]).float().mean()),
        }

    def edited(at: int, pos: int) -> tuple[dict[str, float], float]:
        result = rome_edit(
            model,
            at,
            queries[subject : subject + 1],
            torch.tensor([pos]),
            torch.tensor([new_city]),
            key_tokens,
        )
        try:
            return scores(), float(result.delta.norm())
        finally:
            result.edit.undo()

    with torch.no_grad():
        reference = model(queries)
    before = scores()
    after, delta_norm = edited(layer, position)
    control, _ = edited(layer, other)
    with torch.no_grad():
        restored = torch.equal(model(queries), reference)
    fact = task.facts()[subject]
    new_name = next(f["city"] for f in task.facts() if f["city_id"] == new_city)
    result = runs.SteerResult(
        setting=f"ROME: rank-one update of W_out at MLP {layer}, key at the last subject token",
        targets=[mlp_out(layer, position).doc()],
        control=runs.Control(
            kind="other-sites",
            description=f"the same edit at MLP {layer}, one position later (position {other})",
            targets=[mlp_out(layer, other).doc()],
        ),
        measures=[
            runs.Measure(
                name=name,
                before=runs.Estimate.of(before[name]),
                after=runs.Estimate.of(after[name]),
                control=runs.Estimate.of(control[name]),
            )
            for name in ("efficacy", "generalisation", "specificity")
        ],
        restored=restored,
        numbers={"delta_norm": runs.Estimate.of(delta_norm)},
        notes=[f"edited: {fact['subject']} lives in {fact['city']} -> {new_name}"],
    )
    return Outcome(result, recovered=min(after.values()) > 0.9 and restored)
