"""Circuit discovery: which edges between components carry the behaviour?

The model is read as a graph. Writers put vectors into the residual stream: the embedding,
every attention head (its z W_O), every MLP. Readers take their input from it: every head's
query, key and value input (separately, so K-composition is its own edge), every MLP and the
unembedding. Because the stream is a sum, a reader's input is the sum of its writers' outputs,
and the edge u -> v can be cut on its own: v's input gets u's corrupted output instead of its
clean one, every other reader keeps the clean one. Edge attribution patching (EAP) scores all
edges from one forward and one backward pass, (a_u^corrupted - a_u^clean) . d metric / d x_v.
The ACDC-style pruning walks the readers from the output back to the input and removes every
edge whose cutting changes the output (KL divergence to the full model, or the task's own
metric) by less than a threshold; all incoming edges of one reader are tried side by side in
one batched forward (`_batched_patch.run_copies`), each copy cutting one more edge of the
current circuit. Where the bridge cannot split per-head inputs, `_per_head` computes them.

References:
- Conmy et al. 2023, "Towards Automated Circuit Discovery for Mechanistic Interpretability"
  (ACDC): edge pruning against a KL threshold, readers in reverse topological order.
- Syed, Rager & Conmy 2023, "Attribution Patching Outperforms Automated Circuit Discovery"
  (EAP).
- Wang et al. 2023, "Interpretability in the Wild" (IOI): path patching.
- Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits": the residual stream
  as a sum of writers, Q/K/V composition.

Deviation from ACDC: within one reader ACDC removes edges one at a time, each tested against
the circuit left by the removals before it (one forward per edge). Here all of a reader's
edges are tested at once against the same circuit, and then the weakest k are removed together
for the largest k whose joint KL increase stays below the threshold: a per-reader budget on
the cumulative damage instead of on each marginal step. Readers are still processed one after
another, each against the circuit left by the ones before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mi_atlas import runs
from reference_impls import addressing as A
from reference_impls.locate import _zoo_runs as _zoo
from reference_impls.locate._batched_patch import (
    DEFAULT_CHUNK,
    Metric,
    copies_per_forward,
    hook_layer,
    progress_bar,
    run_copies,
)
from reference_impls.locate._per_head import PerHead, per_head_hooks
from reference_impls.locate.metrics import CenteredLogit
from reference_impls.locate.scores import Scores, locate_result_over_seeds
from reference_impls.registry import Outcome, register_method


@dataclass(frozen=True)
class Edge:
    """u -> v: writer `upstream` (embed, head output, mlp_out) into reader `downstream`.

    Readers are head q/k/v sites (k/v number key/value heads), `mlp_out(l)` for MLP l's input
    and `resid(n_layers - 1, where="post")` for the unembedding.
    """

    upstream: A.Site
    downstream: A.Site

    def to_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream.to_dict(),
            "downstream": self.downstream.to_dict(),
            "label": str(self),
        }

    def doc(self) -> runs.Edge:
        """This edge as the run document names it (`mi_atlas.runs.Edge`)."""
        return runs.Edge(
            upstream=self.upstream.doc(), downstream=self.downstream.doc(), label=str(self)
        )

    def __str__(self) -> str:
        return f"{self.upstream} -> {self.downstream}"


@dataclass(frozen=True)
class Graph:
    """Writers, readers and the edges between them (writer strictly before reader)."""

    writers: tuple[A.Site, ...]
    readers: tuple[A.Site, ...]
    edges: tuple[Edge, ...]

    def incoming(self, reader: A.Site) -> list[Edge]:
        return [e for e in self.edges if e.downstream == reader]


class GraphError(ValueError):
    """A model whose residual stream is not a sum of its writers' outputs (no separable edges)."""


def graph(model: Any) -> Graph:
    """The edge graph of a bridged model, readers in forward order.

    GraphError on post-norm blocks (Gemma 2/3, OLMo 2 normalise each attention and MLP output
    before adding it): the norm mixes the heads, so no edge can be cut on its own.
    """
    if any(hasattr(model.blocks[0], n) for n in ("ln1_post", "ln2_post")):
        raise GraphError(
            "circuit discovery needs a residual stream that is the sum of each head's and MLP's "
            f"output; {_architecture(model)} normalises every attention and MLP output before "
            "adding it (post-norms), which mixes the heads, so its edges cannot be cut one by one"
        )
    d = A.dims(model)
    writers = [A.embed()]
    readers: list[A.Site] = []
    edges: list[Edge] = []
    for layer in range(d.n_layers):
        for part, n in (("q", d.n_heads), ("k", d.n_kv_heads), ("v", d.n_kv_heads)):
            for h in range(n):
                reader = A.head(layer, h, part=part)
                readers.append(reader)
                edges += [Edge(w, reader) for w in writers]
        writers += [A.head(layer, h) for h in range(d.n_heads)]
        readers.append(A.mlp_out(layer))  # the MLP's input
        edges += [Edge(w, readers[-1]) for w in writers]
        writers.append(A.mlp_out(layer))
    readers.append(A.resid(d.n_layers - 1, where="post"))  # the unembedding's input
    edges += [Edge(w, readers[-1]) for w in writers]
    return Graph(tuple(writers), tuple(readers), tuple(edges))


def _architecture(model: Any) -> str:
    config = getattr(getattr(model, "original_model", None), "config", None)
    names = getattr(config, "architectures", None) or []
    return names[0] if names else "this model"


# ---- where writers and readers live ----------------------------------------------------------


def _writer_hooks(ph: PerHead, site: A.Site) -> list[str]:
    if site.kind == "embed":
        # learned absolute positions (GPT-2) are part of the input writer; rotary models have none
        return ["hook_embed"] + (["hook_pos_embed"] if hasattr(ph.model, "pos_embed") else [])
    if site.kind == "head_out":
        return [ph.result_hook(site.layer)]
    return [site.hook_name]  # mlp_out


def _reader_hook(model: Any, site: A.Site) -> str:
    if site.kind in ("q", "k", "v"):
        return PerHead.input_hook(site.layer, site.kind)
    if site.kind == "mlp_out":
        # a fork only the MLP reads: its norm's input (pre-norm blocks), else the MLP's own
        # input (OLMo 2 normalises outputs instead, so its MLP reads the stream directly)
        ln2 = f"blocks.{site.layer}.ln2.hook_in"
        return ln2 if ln2 in model.hook_dict else f"blocks.{site.layer}.mlp.hook_in"
    return "ln_final.hook_in"


def _writer_outputs(ph: PerHead, tokens: Tensor, g: Graph) -> dict[A.Site, Tensor]:
    """Each writer's output (batch, pos, d_model) on `tokens`."""
    hooks = sorted({h for w in g.writers for h in _writer_hooks(ph, w)})
    with torch.no_grad():
        _, cache = ph.model.run_with_cache(tokens, names_filter=hooks)
    return {
        w: _select_writer(ph, w, {h: cache[h] for h in _writer_hooks(ph, w)}) for w in g.writers
    }


def _select_writer(ph: PerHead, site: A.Site, acts: dict[str, Tensor]) -> Tensor:
    if site.kind == "head_out":
        return ph.result(next(iter(acts.values())), site.layer)[..., site.head, :]
    return sum(acts.values())


# ---- edge attribution patching ---------------------------------------------------------------


def edge_attribution_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
) -> Scores:
    """EAP: |(a_u^corrupted - a_u^clean) . d metric / d x_v| for every edge, summed over positions
    and averaged over the batch; `meta["signed"]` keeps the sign (the estimated metric change)."""
    return _attribution(
        model, clean_tokens, corrupted_tokens, metric, alphas=None,
        method="edge-attribution-patching",
        meaning="|estimated metric change| from corrupting the edge alone, mean over the batch",
    )  # fmt: skip


def eap_ig(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    steps: int = 5,
) -> Scores:
    """EAP-IG (Hanna et al. 2024): EAP with the gradient averaged over `steps` inputs between
    corrupted and clean.

    The input embeddings are interpolated, corrupted + (k / steps) (clean - corrupted) for
    k = 1..steps (a right Riemann sum of the integrated-gradients path; steps = 1 is EAP), and
    each edge scores |(a_u^corrupted - a_u^clean) . mean_k d metric / d x_v (k)|. Summed over
    the embedding's edges the signed scores tend to metric(corrupted) - metric(clean) as the
    steps grow (the completeness of integrated gradients). `meta["signed"]` keeps the sign.
    """
    if steps < 1:
        raise ValueError(f"eap_ig needs steps >= 1 (interpolation points), got steps={steps}")
    return _attribution(
        model, clean_tokens, corrupted_tokens, metric,
        alphas=[k / steps for k in range(1, steps + 1)],
        method="eap-ig",
        meaning=(
            f"|estimated metric change| from corrupting the edge alone, gradients averaged over "
            f"{steps} inputs from corrupted to clean, mean over the batch"
        ),
        steps=steps,
    )  # fmt: skip


def _attribution(
    model: Any,
    clean_tokens: Tensor,
    corrupted_tokens: Tensor,
    metric: Metric,
    alphas: Sequence[float] | None,
    method: str,
    meaning: str,
    **meta: Any,
) -> Scores:
    """(a_u^corrupted - a_u^clean) . g_v per edge, g_v the gradient at reader v on the clean
    input (`alphas` None) or its mean over inputs interpolated at each of `alphas`."""
    g = graph(model)
    reader_hooks = sorted({_reader_hook(model, r) for r in g.readers})
    with per_head_hooks(model) as ph:
        clean = _writer_outputs(ph, clean_tokens, g)
        corrupted = _writer_outputs(ph, corrupted_tokens, g)
        if alphas is None:
            grads = _reader_grads(ph, clean_tokens, metric, reader_hooks, [])
        else:
            embed_hooks = _writer_hooks(ph, A.embed())
            with torch.no_grad():
                _, ends = ph.model.run_with_cache(clean_tokens, names_filter=embed_hooks)
                _, starts = ph.model.run_with_cache(corrupted_tokens, names_filter=embed_hooks)
            total: dict[str, Tensor] = {}
            for alpha in alphas:
                # every input-embedding hook set to corrupted + alpha (clean - corrupted)
                embed = [
                    (name, _setter(starts[name] + alpha * (ends[name] - starts[name])))
                    for name in embed_hooks
                ]
                step = _reader_grads(ph, clean_tokens, metric, reader_hooks, embed)
                total = {h: total.get(h, 0) + step[h] / len(alphas) for h in reader_hooks}
            grads = total
    values = []
    for edge in g.edges:
        grad = grads[_reader_hook(model, edge.downstream)]  # (batch, pos, [head,] d_model)
        if edge.downstream.kind in ("q", "k", "v"):
            grad = grad[:, :, edge.downstream.head]
        delta = corrupted[edge.upstream] - clean[edge.upstream]  # (batch, pos, d_model)
        values.append((delta * grad).sum())
    signed = torch.stack(values)
    return Scores.flat(signed.abs(), g.edges, method=method, meaning=meaning, signed=signed, **meta)


def _reader_grads(
    ph: PerHead,
    tokens: Tensor,
    metric: Metric,
    reader_hooks: list[str],
    extra_hooks: list[tuple[str, Callable]],
) -> dict[str, Tensor]:
    """d mean metric / d input of every reader hook, one forward and one backward pass."""
    inputs: dict[str, Tensor] = {}

    def keeper(name: str) -> Callable:
        def keep(act: Tensor, hook: Any) -> Tensor:
            inputs[name] = act = act.clone()
            return act

        return keep

    with torch.enable_grad():
        logits = ph.model.run_with_hooks(
            tokens, fwd_hooks=ph.translate(extra_hooks + [(h, keeper(h)) for h in reader_hooks])
        )
        grads = torch.autograd.grad(metric(logits).mean(), [inputs[h] for h in reader_hooks])
    return dict(zip(reader_hooks, grads, strict=True))


def _setter(value: Tensor) -> Callable:
    """A hook that replaces the activation by `value`, as a leaf the backward pass reaches."""

    def put(act: Tensor, hook: Any) -> Tensor:
        return value.detach().to(act.dtype).requires_grad_(True)

    return put


# ---- exact edge patching and ACDC -------------------------------------------------------------


def kl_to(reference_logits: Float[Tensor, "batch pos vocab"], pos: int = -1) -> Metric:
    """KL(reference || patched) at position `pos`, per example: ACDC's faithfulness metric."""
    reference = torch.log_softmax(reference_logits[:, pos], dim=-1)  # (batch, vocab)

    def kl(logits: Tensor) -> Tensor:
        patched = torch.log_softmax(logits[..., pos, :], dim=-1)  # (*copies, batch, vocab)
        return (reference.exp() * (reference - patched)).sum(dim=-1)

    return kl


def edge_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    cut_sets: Sequence[Sequence[Edge]],
    metric: Metric,
    removed: Sequence[Edge] = (),
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[Float[Tensor, "n_sets batch"], Float[Tensor, " batch"]]:
    """The metric on the clean input with the edges of each set cut (plus `removed` in all).

    Cutting u -> v gives v's input a_u^corrupted in place of the current run's a_u. Copy k
    joins the batch at the block of its earliest cut reader; `chunk_size` copies per forward.
    Returns the per-example metric of every set and of the run with only `removed` cut.
    """
    # every group keeps each writer's output (batch, pos, d_model): count it in the budget
    n_writers = 1 + model.cfg.n_layers * (model.cfg.n_heads + 1)
    chunk_size = copies_per_forward(
        model, *clean_tokens.shape, chunk_size, extra=n_writers * model.cfg.d_model
    )
    if len(cut_sets) > chunk_size:
        parts = []
        with progress_bar(len(cut_sets), "edge patching") as bar:
            for i in range(0, len(cut_sets), chunk_size):
                part = cut_sets[i : i + chunk_size]
                parts.append(
                    edge_patching(
                        model, clean_tokens, corrupted_tokens, part, metric, removed, chunk_size
                    )
                )
                bar.update(len(part))
        return torch.cat([values for values, _ in parts]), parts[0][1]
    g = graph(model)
    writers, readers = list(g.writers), list(g.readers)
    w_index = {w: i for i, w in enumerate(writers)}
    joins = [
        min((_reader_layer(model, e.downstream) for e in cut), default=model.cfg.n_layers)
        for cut in cut_sets
    ]
    order = sorted(range(len(cut_sets)), key=joins.__getitem__)
    n_groups = 1 + len(cut_sets)
    # cut[group, reader, writer]: group 0 = the current circuit (only `removed` cut)
    cut = torch.zeros(n_groups, len(readers), len(writers), dtype=torch.bool)
    r_index = {r: i for i, r in enumerate(readers)}
    for edge in removed:
        cut[:, r_index[edge.downstream], w_index[edge.upstream]] = True
    for group, k in enumerate(order, start=1):
        for edge in cut_sets[k]:
            cut[group, r_index[edge.downstream], w_index[edge.upstream]] = True

    with per_head_hooks(model) as ph:
        corrupted = _writer_outputs(ph, corrupted_tokens, g)
        current: dict[A.Site, Tensor] = {}  # writer -> (groups so far, batch, pos, d_model)
        group_hooks: dict[str, Callable] = {}
        for writer in writers:
            for name in _writer_hooks(ph, writer):
                group_hooks.setdefault(name, _recorder(name, writers, current, ph))
        for name in {_reader_hook(model, r) for r in readers}:
            idx = [i for i, r in enumerate(readers) if _reader_hook(model, r) == name]
            group_hooks[name] = _cutter(idx, readers, writers, cut, current, corrupted)
        with torch.no_grad():
            logits = run_copies(
                model, clean_tokens, [joins[k] for k in order], group_hooks, hook_map=ph.translate
            )
            values = metric(logits).float()  # (groups, batch)
    out = torch.empty(len(cut_sets), clean_tokens.shape[0])
    out[order] = values[1:]
    return out, values[0]


def acdc(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    threshold: float,
    pos: int = -1,
    metric: Metric | None = None,
) -> Scores:
    """ACDC-style pruning: the edges that survive, scored by the damage of cutting each.

    The damage of a circuit is KL(full || circuit) at `pos` (ACDC's default), or, given the
    task's `metric`, |mean metric(circuit) - mean metric(full)| (ACDC's task-metric variant,
    e.g. a logit difference: KL says nothing on a model whose output has one entry).
    Readers go from the unembedding back to layer 0. For each, every edge still in the circuit
    is first cut on its own (one batched forward: its damage increase is its score); then the
    weakest k edges are cut together for every k (a second batched forward), and the most that
    together raise the damage by less than `threshold` are removed. `meta`: `kept` marks the
    circuit's edges, `damage` is the final circuit's damage (`kl` too, for the KL default).
    """
    g = graph(model)
    with torch.no_grad():
        full = model(clean_tokens)
    measure = kl_to(full, pos) if metric is None else metric
    target = 0.0 if metric is None else float(metric(full).float().mean())

    def damage(values: Tensor) -> Tensor:
        # values: (..., batch) metric per example -> (...,) distance of the mean from the full
        return (values.mean(dim=-1) - target).abs()

    removed: list[Edge] = []
    tested: dict[Edge, float] = {}
    bar = progress_bar(len(g.readers), "acdc readers")
    for reader in reversed(g.readers):
        bar.update(1)
        candidates = [e for e in g.incoming(reader) if e not in removed]
        if not candidates:
            continue
        # 1. every incoming edge cut on its own, side by side: its damage increase is its score
        values, current = edge_patching(
            model, clean_tokens, corrupted_tokens, [[e] for e in candidates], measure, removed
        )
        alone = (damage(values) - damage(current)).tolist()
        tested.update(zip(candidates, alone, strict=True))
        # 2. the weakest k edges cut together, for every k, side by side: remove the most
        # that together raise the damage by less than the threshold
        weakest = [candidates[i] for i in sorted(range(len(candidates)), key=alone.__getitem__)]
        prefixes = [weakest[: k + 1] for k in range(len(weakest))]
        values, current = edge_patching(
            model, clean_tokens, corrupted_tokens, prefixes, measure, removed
        )
        together = (damage(values) - damage(current)).tolist()
        below = [k + 1 for k, delta in enumerate(together) if delta < threshold]
        removed += weakest[: max(below, default=0)]
    bar.close()
    _, final = edge_patching(model, clean_tokens, corrupted_tokens, [], measure, removed)
    kept = [e not in removed for e in g.edges]
    what = "KL(full || circuit)" if metric is None else "|metric(circuit) - metric(full)|"
    return Scores.flat(
        torch.tensor([tested[e] for e in g.edges]),
        g.edges,
        method="acdc",
        meaning=f"increase of {what} when the edge was cut from the circuit",
        kept=kept,
        circuit=[str(e) for e, k in zip(g.edges, kept, strict=True) if k],
        threshold=threshold,
        damage=float(damage(final)),
        **({"kl": float(final.mean())} if metric is None else {}),
    )


# ---- faithfulness of circuits (MIB) ---------------------------------------------------------


def circuit_faithfulness(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    circuits: Sequence[Sequence[Edge]],
    metric: Metric,
) -> Float[Tensor, " n_circuits"]:
    """(m(circuit) - m(empty)) / (m(full) - m(empty)) for each edge set (MIB's faithfulness).

    m is the batch mean of `metric`. A circuit keeps its edges clean and cuts every other edge
    (`edge_patching`); m(full) and m(empty) are the clean and the corrupted run, run plainly, so
    that the full circuit scores 1 and the empty one 0 only if edge patching is right.
    """
    g = graph(model)
    kept = [set(c) for c in circuits]
    values, _ = edge_patching(
        model, clean_tokens, corrupted_tokens, [[e for e in g.edges if e not in k] for k in kept],
        metric,
    )  # fmt: skip
    with torch.no_grad():
        full = metric(model(clean_tokens)).float().mean()
        empty = metric(model(corrupted_tokens)).float().mean()
    return (values.mean(dim=1) - empty) / (full - empty)


def circuit_sizes(n_edges: int) -> list[int]:
    """0, 1, 2, 4, ... and every edge: the circuit sizes of a faithfulness curve."""
    sizes = [0] + [2**i for i in range(n_edges.bit_length()) if 2**i < n_edges]
    return sizes + [n_edges]


def faithfulness_by_size(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    scores: Scores,
    metric: Metric,
    sizes: Sequence[int] | None = None,
) -> tuple[list[int], list[float]]:
    """Faithfulness of the top-n edges of `scores` for every n in `sizes` (`circuit_sizes`)."""
    ranking = scores.ranking()
    sizes = list(sizes) if sizes is not None else circuit_sizes(len(ranking))
    values = circuit_faithfulness(
        model, clean_tokens, corrupted_tokens, [ranking[:n] for n in sizes], metric
    )
    return sizes, values.tolist()


def _reader_layer(model: Any, reader: A.Site) -> int:
    return hook_layer(model, _reader_hook(model, reader))


def _recorder(name: str, writers: list[A.Site], current: dict, ph: PerHead) -> Callable:
    """Keep each writer's output in the current run (all groups) as it is produced."""
    mine = [w for w in writers if name in _writer_hooks(ph, w)]

    def hook(act: Tensor) -> Tensor:
        # act: (groups, batch, pos, [head,] d_model | d_head)
        for w in mine:
            part = ph.result(act, w.layer)[..., w.head, :] if w.kind == "head_out" else act
            # the embedding writer is the sum of its hooks; keep a running sum per forward
            current[w] = part if w.kind != "embed" or name == "hook_embed" else current[w] + part
        return act

    return hook


def _cutter(
    reader_idx: list[int],
    readers: list[A.Site],
    writers: list[A.Site],
    cut: Tensor,
    current: dict,
    corrupted: dict,
) -> Callable:
    """Swap a_u for a_u^corrupted in the input of readers `reader_idx`, per group's cut edges."""

    def hook(act: Tensor) -> Tensor:
        groups = act.shape[0]
        # delta[writer, group, batch, pos, d]: corrupted minus current output of each writer
        available = [i for i, w in enumerate(writers) if w in current]
        delta = torch.stack([_pad(current[writers[i]], groups) for i in available])
        delta = torch.stack([corrupted[writers[i]] for i in available])[:, None] - delta
        mask = cut[:groups][:, reader_idx][:, :, available].to(act.dtype)  # (group, reader, writer)
        change = torch.einsum("grw,wgbpd->gbprd", mask, delta)  # (group, batch, pos, reader, d)
        if act.ndim == 5:  # per-head q/k/v inputs: (group, batch, pos, head, d)
            heads = [readers[i].head for i in reader_idx]
            out = act.clone()
            out[:, :, :, heads] = act[:, :, :, heads] + change
            return out
        return act + change[:, :, :, 0]

    return hook


def _pad(x: Tensor, groups: int) -> Tensor:
    """Groups that joined after a writer ran are copies of group 0 there."""
    if x.shape[0] == groups:
        return x
    return torch.cat([x, x[:1].expand(groups - x.shape[0], *x.shape[1:])])


# ---- `mi-atlas run circuit-discovery` ---------------------------------------------------------


SEEDS = _zoo.SEEDS  # data seeds of the demo (every locate demo's): each draws its own prompt pairs
PAIRS = _zoo.BATCH  # prompt pairs per seed (16, as every locate demo)
IG_STEPS = 5  # interpolation steps of the demo's EAP-IG
RANDOM_DRAWS = 20  # same-size random edge sets per seed, the planted circuit's control
THRESHOLD = 0.01  # ACDC's KL threshold


@register_method("circuit-discovery", default_model="induction-deep")
def demo(model_name: str) -> Outcome:
    """EAP-IG (headline), EAP and ACDC-style pruning on an induction model, over 5 data seeds.

    Each is scored on how it ranks the planted edges (AUROC, precision at the planted count),
    how it ranks the planted heads when a head scores the sum of its outgoing edges (node
    AUROC, the card's look-alike decoys' ranks) and how faithful its top-n edges are (CPR,
    CMD); the whole planted circuit is compared with same-size random edge sets.
    """
    run = _zoo.induction(model_name, "circuit-discovery", n=PAIRS)
    g = graph(run.model)
    planted = planted_edges(run.model, run.truth, g.edges)
    circuit = planted_circuit(run.model, run.truth)
    heads = A.heads(run.model, "out")
    planted_heads = run.induction_heads() + run.previous_token_heads()
    decoys = run.decoys()
    look_alikes = [  # the card's look-alike induction heads: their edges are the edge decoys
        A.head(*_zoo.parse_head(label))
        for label, kind in run.truth.get("decoys", {}).items()
        if kind == "induction"
    ]
    decoy_edges = planted_edges(run.model, _as_planted(run.truth, look_alikes), g.edges)
    per_method: dict[str, list[Scores]] = {"eap-ig": [], "eap": [], "acdc": []}
    curves: dict[str, list[list[float]]] = {name: [] for name in per_method}
    checks: list[dict[str, bool]] = []
    numbers: dict[str, list[float]] = {}
    sizes = circuit_sizes(len(g.edges))
    for seed in SEEDS:
        clean, corrupted, answer = _zoo.induction_pair(model_name, n=PAIRS, seed=seed)
        metric = CenteredLogit(answer)
        scores = {
            "eap-ig": eap_ig(run.model, clean, corrupted, metric, steps=IG_STEPS),
            "eap": edge_attribution_patching(run.model, clean, corrupted, metric),
            "acdc": acdc(run.model, clean, corrupted, THRESHOLD),
        }
        for name, s in scores.items():
            per_method[name].append(s)
            curves[name].append(
                faithfulness_by_size(run.model, clean, corrupted, s, metric, sizes)[1]
            )
        acdc_kept = [e for e, k in zip(g.edges, scores["acdc"].meta["kept"], strict=True) if k]
        checks.append(induction_circuit_check(run.model, run.truth, acdc_kept))
        # the planted circuit against same-size random edge sets (mean over the draws)
        generator = torch.Generator().manual_seed(seed)
        draws = [
            [g.edges[i] for i in torch.randperm(len(g.edges), generator=generator)[: len(circuit)]]
            for _ in range(RANDOM_DRAWS)
        ]
        faithful = circuit_faithfulness(run.model, clean, corrupted, [circuit, *draws], metric)
        for key, value in {
            "planted_circuit_faithfulness": faithful[0].item(),
            "random_circuit_faithfulness": faithful[1:].mean().item(),
            "acdc_kl_to_full_model": scores["acdc"].meta["kl"],
            "acdc_edges_kept": float(len(acdc_kept)),
        }.items():
            numbers.setdefault(key, []).append(value)

    def result(name: str, variant: str, setting: str, metric: str, **fields: Any):
        nodes = [head_scores(s, heads) for s in per_method[name]]
        fields["numbers"] = {
            **_zoo.decoy_ranks(per_method[name], decoy_edges),
            **node_recovery(nodes, planted_heads, decoys),
            **fields.get("numbers", {}),
        }
        return locate_result_over_seeds(
            per_method[name], setting=setting, metric=metric, planted=planted, variant=variant,
            faithfulness=runs.faithfulness_curve(sizes, curves[name], len(g.edges)), **fields,
        )  # fmt: skip

    logit = "answer logit minus mean logit at the last position"
    passed = {name: all(c[name] for c in checks) for name in checks[0]}
    acdc_result = result(
        "acdc", "ACDC",
        f"ACDC-style pruning at KL threshold {THRESHOLD}; its edges ranked by the KL increase "
        "of cutting each",
        "KL(full model || circuit) at the last position",
        numbers={
            "kl_to_full_model": numbers["acdc_kl_to_full_model"],
            "edges_kept": numbers["acdc_edges_kept"],
        },
        checks=[
            runs.Check(
                name=name, passed=passed[name], value=sum(c[name] for c in checks) / len(checks),
                detail=f"holds in {sum(c[name] for c in checks)} of {len(checks)} seeds",
            )
            for name in passed
        ],
        notes=[
            "a check passes only if it holds in every seed (value: the share of seeds); "
            "circuit kept in seed 0: "
            + ", ".join(per_method["acdc"][0].meta["circuit"])
        ],
    )  # fmt: skip
    headline = result(
        "eap-ig", "",
        f"EAP-IG: input embeddings interpolated from corrupted to clean, {IG_STEPS} steps; "
        f"{len(SEEDS)} data seeds of {PAIRS} prompt pairs",
        logit,
        numbers={
            "edges_total": float(len(g.edges)),
            "planted_circuit_edges": float(len(circuit)),
            "planted_circuit_faithfulness": numbers["planted_circuit_faithfulness"],
            "random_circuit_faithfulness": numbers["random_circuit_faithfulness"],
        },
        variants=[
            result(
                "eap", "EAP",
                "edge attribution patching: gradients at every reader on the clean input",
                logit,
            ),
            acdc_result,
        ],
        notes=[
            "faithfulness of the top-n edges: (m(circuit) - m(empty)) / (m(full) - m(empty)) on "
            "the centred answer logit, every other edge patched with its corrupted activation",
            f"node scores: each of the {len(heads)} heads scores the sum of its outgoing edges' "
            "scores, ranked against the planted heads (node AUROC, node precision at k); decoys "
            "are the card's look-alike heads; an edge decoy is a planted edge's counterpart at a "
            "look-alike induction head (the previous-token head into its key, it into the "
            "unembedding)",
            f"planted_circuit_faithfulness: the {len(circuit)} edges of the planted circuit (the "
            "planted edges, the embedding into the planted heads' values, the induction heads "
            "into their layer's MLP and that MLP into the unembedding); "
            f"random_circuit_faithfulness: {RANDOM_DRAWS} random edge sets of its size per seed",
            "recovered: ACDC's kept circuit passes the structural checks in every seed",
        ],
    )  # fmt: skip
    return Outcome(headline, recovered=all(passed.values()), seeds=SEEDS)


def _as_planted(truth: dict[str, Any], heads: Sequence[A.Site]) -> dict[str, Any]:
    """The card's truth with `heads` (look-alike induction heads) in place of the induction
    heads: `planted_edges` of it are the edges the look-alikes would have in the circuit."""
    return {**truth, "induction_heads": [[h.layer, h.head] for h in heads]}


def head_scores(scores: Scores, heads: Sequence[A.Site]) -> Scores:
    """Node scores from edge scores: each head scores the sum of its outgoing edges' scores."""
    flat = scores.values.reshape(-1)
    index = {h: i for i, h in enumerate(heads)}
    values = torch.zeros(len(heads))
    for edge, value in zip(scores.sites, flat.tolist(), strict=True):
        if edge.upstream in index:
            values[index[edge.upstream]] += value
    return Scores.flat(
        values, heads, method=scores.method,
        meaning=f"sum over the head's outgoing edges of: {scores.meaning}",
    )  # fmt: skip


def node_recovery(
    per_seed: Sequence[Scores], planted: Sequence[A.Site], decoys: Sequence[A.Site]
) -> dict[str, list[float]]:
    """Node AUROC, node precision at the planted count, and each planted head's and decoy's
    1-based rank, one value per seed (for a run document's `numbers`)."""
    out: dict[str, list[float]] = {"node_auroc": [], "node_precision_at_k": []}
    for s in per_seed:
        rec = s.recovery(planted)
        out["node_auroc"].append(rec.auroc.mean if rec.auroc is not None else float("nan"))
        out["node_precision_at_k"].append(rec.precision_at_k.mean)
    for site in planted:
        out[f"node rank of {site}"] = [float(s.ranking().index(site) + 1) for s in per_seed]
    out.update({f"node {k}": v for k, v in _zoo.decoy_ranks(per_seed, decoys).items()})
    return out


def planted_circuit(model: Any, truth: dict[str, Any]) -> list[Edge]:
    """The whole planted induction circuit: `planted_edges` plus the edges that feed and read it
    (the embedding into the planted heads' values, the induction heads into their layer's MLP
    and that MLP into the unembedding)."""
    d = A.dims(model)
    group = d.n_heads // d.n_kv_heads
    g = graph(model)
    heads = {tuple(h) for h in truth["induction_heads"] + truth["previous_token_heads"]}
    induction = {tuple(h) for h in truth["induction_heads"]}
    layers = {layer for layer, _ in induction}
    values = {(layer, h // group) for layer, h in heads}
    mlps = {A.mlp_out(layer) for layer in layers}

    def feeds(e: Edge) -> bool:
        u, v = e.upstream, e.downstream
        return (
            (u.kind == "embed" and v.kind == "v" and (v.layer, v.head) in values)
            or (u.kind == "head_out" and (u.layer, u.head) in induction and v in mlps)
            or (u in mlps and v.kind == "resid_post")
        )

    return planted_edges(model, truth, g.edges) + [e for e in g.edges if feeds(e)]


def planted_edges(model: Any, truth: dict[str, Any], edges: Sequence[Edge]) -> list[Edge]:
    """The edges the planted induction mechanism implies, among `edges`: a previous-token head
    writing into an induction key/value head's key, and an induction head writing into the
    unembedding's input."""
    n_heads, n_kv = A.dims(model).n_heads, A.dims(model).n_kv_heads
    induction = {tuple(h) for h in truth["induction_heads"]}
    previous = {tuple(h) for h in truth["previous_token_heads"]}
    kv_of = {(layer, h // (n_heads // n_kv)) for layer, h in induction}

    def head(s: A.Site) -> tuple[int | None, int | None]:
        return (s.layer, s.head)

    return [
        e
        for e in edges
        if e.upstream.kind == "head_out"
        and (
            (
                head(e.upstream) in previous
                and e.downstream.kind == "k"
                and head(e.downstream) in kv_of
            )
            or (head(e.upstream) in induction and e.downstream.kind == "resid_post")
        )
    ]


def induction_circuit_check(model: Any, truth: dict[str, Any], kept: list[Edge]) -> dict[str, bool]:
    """The planted induction circuit, edge by edge, against a discovered edge set.

    K-composition: every edge into an induction head's key input comes from a planted
    previous-token head or the embedding, and every induction head's key input has one from a
    previous-token head; some induction head reaches the unembedding (directly or through an
    MLP); and no head outside the planted ones keeps an edge.
    """
    n_heads, n_kv = A.dims(model).n_heads, A.dims(model).n_kv_heads
    induction = {tuple(h) for h in truth["induction_heads"]}
    previous = {tuple(h) for h in truth["previous_token_heads"]}
    kv_of = {(layer, h // (n_heads // n_kv)) for layer, h in induction}  # their key/value heads
    into_keys = [
        e
        for e in kept
        if e.downstream.kind == "k" and (e.downstream.layer, e.downstream.head) in kv_of
    ]
    heads_used = {
        (s.layer, s.head) for e in kept for s in (e.upstream, e.downstream) if s.kind == "head_out"
    }
    reaches_output = any(
        e.upstream.kind == "head_out" and (e.upstream.layer, e.upstream.head) in induction
        and e.downstream.kind in ("resid_post", "mlp_out")
        for e in kept
    )  # fmt: skip
    return {
        "keys_read_previous_token_heads": all(
            e.upstream.kind == "embed" or (e.upstream.layer, e.upstream.head) in previous
            for e in into_keys
        ),
        "every_induction_key_has_a_previous_token_head": all(
            any(
                (e.downstream.layer, e.downstream.head) == kv and e.upstream.kind == "head_out"
                for e in into_keys
            )
            for kv in kv_of
        ),
        "induction_heads_reach_the_output": reaches_output,
        "no_unplanted_head": heads_used <= induction | previous,
    }
