"""A small sparse autoencoder (SAE): learn an overcomplete dictionary of sparse features.

An SAE rewrites an activation x as a sparse non-negative code f = ReLU(W_enc (x - b_dec) + b_enc)
and reconstructs it as x_hat = W_dec f + b_dec, trained on reconstruction error plus an L1
penalty on f weighted by the decoder norms, so that each feature is one direction a_j * d_j
that the model uses. Here the SAE is trained deterministically in seconds on a zoo model's
residual stream and scored against the latent variables planted in that model's data.

References:
- Bricken et al. 2023, "Towards Monosemanticity: Decomposing Language Models With Dictionary
  Learning" (Anthropic): pre-encoder decoder-bias subtraction, ReLU code, L1 sparsity,
  unit-norm decoder columns.
- Templeton et al. 2024, "Scaling Monosemanticity" (Anthropic): L1 weighted by decoder norm.
- Cunningham et al. 2023, "Sparse Autoencoders Find Highly Interpretable Features in Language
  Models": scoring features against known variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from reference_impls.addressing import Site, SiteError
from reference_impls.interventions import hooks, record


@dataclass(frozen=True)
class SAEConfig:
    """How an SAE is shaped and trained (defaults: seconds on a CPU for a d_model=32 stream)."""

    d_sae: int = 64  # dictionary size; 2x a d_model=32 stream gives room for every latent
    l1_coeff: float = (
        3e-2  # sparsity weight; higher trades reconstruction for fewer active features
    )
    lr: float = 3e-3  # Adam learning rate
    steps: int = 1000  # full-batch-of-minibatch updates
    batch_size: int = 512  # rows per update
    seed: int = 0  # initialisation and minibatch order: the same seed gives the same SAE


class SparseAutoencoder(nn.Module):
    """x -> f = ReLU(W_enc (x - b_dec) + b_enc) -> x_hat = W_dec f + b_dec (Bricken et al. 2023)."""

    def __init__(self, d_in: int, d_sae: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        w_dec = torch.randn(d_sae, d_in, generator=generator)
        w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)  # (d_sae, d_in): row j is feature j's direction
        self.W_enc = nn.Parameter(w_dec.T.clone())  # (d_in, d_sae): tied at initialisation
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    @property
    def d_sae(self) -> int:
        return self.W_dec.shape[0]

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_in"]:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_in"]:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Keep every decoder row at unit norm, so the L1 penalty cannot be dodged by scaling."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))


def train_sae(
    activations: Float[Tensor, "n d_in"], config: SAEConfig = SAEConfig()
) -> SparseAutoencoder:
    """Train an SAE on a matrix of activations, deterministically for a given `config.seed`."""
    generator = torch.Generator().manual_seed(config.seed)
    x = activations.detach().float()
    sae = SparseAutoencoder(x.shape[-1], config.d_sae, generator=generator)
    with torch.no_grad():
        sae.b_dec.copy_(x.median(dim=0).values)  # a robust centre, as Bricken et al. initialise
    optimiser = torch.optim.Adam(sae.parameters(), lr=config.lr)
    scale = x.var(dim=0).sum().clamp_min(1e-8)  # normalised MSE: the l1 weight is scale-free
    for _ in range(config.steps):
        idx = torch.randint(
            0, x.shape[0], (min(config.batch_size, x.shape[0]),), generator=generator
        )
        batch = x[idx]  # (batch, d_in)
        f = sae.encode(batch)  # (batch, d_sae)
        recon = ((sae.decode(f) - batch) ** 2).sum(-1).mean() / scale
        sparsity = (f * sae.W_dec.norm(dim=-1)).sum(-1).mean()
        loss = recon + config.l1_coeff * sparsity
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        sae.normalise_decoder()
    return sae.eval()


@dataclass(frozen=True)
class LatentMatch:
    """Each planted latent's best-matching SAE feature and their Pearson correlation."""

    features: list[int]  # features[i] is the SAE feature that best tracks latent i
    correlations: list[float]  # correlations[i] = corr(latent i, features[i]) over the data

    @property
    def mean_correlation(self) -> float:
        return sum(self.correlations) / len(self.correlations)


def correlation_matrix(a: Float[Tensor, "n p"], b: Float[Tensor, "n q"]) -> Float[Tensor, "p q"]:
    """Pearson correlation of every column of `a` with every column of `b` (constant -> 0)."""
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    cov = a.T @ b  # (p, q)
    norms = a.norm(dim=0)[:, None] * b.norm(dim=0)[None, :]
    return torch.where(norms > 0, cov / norms.clamp_min(1e-12), torch.zeros_like(cov))


def match_latents(
    feature_acts: Float[Tensor, "n d_sae"], latents: Float[Tensor, "n n_latents"]
) -> LatentMatch:
    """For each planted latent, the SAE feature whose activation correlates with it most."""
    corr = correlation_matrix(latents.float(), feature_acts.float())  # (n_latents, d_sae)
    best = corr.max(dim=-1)
    return LatentMatch(best.indices.tolist(), [round(float(c), 6) for c in best.values.detach()])


def site_activations(
    model, site: Site, tokens: Int[Tensor, "batch pos"], batch_size: int = 64
) -> Float[Tensor, "n d"]:
    """The activation at `site` (e.g. `resid(1)`) on every position of `tokens`, one row each."""
    rows = []
    with torch.no_grad(), record(model, site) as store:
        for start in range(0, tokens.shape[0], batch_size):
            model(tokens[start : start + batch_size])
            rows.append(store[site].reshape(-1, store[site].shape[-1]))  # (b*pos, d)
    return torch.cat(rows)


@contextmanager
def rewritten_features(
    model,
    sae: SparseAutoencoder,
    sites: Sequence[Site],
    fn: Callable[[Site, Tensor], Tensor],
    identity_ok: bool = False,
) -> Iterator[Any]:
    """Run `model` with the SAE features at `sites` rewritten by `fn(site, activation)`.

    The activation at the SAE's hook (`sites[i].hook`, the same for all) is encoded into
    features f, each site's slice of f is replaced by `fn(site, slice)`, and the result is
    decoded with the SAE's reconstruction error x - x_hat added back: an unchanged code gives
    back x up to float rounding, so every change comes from the rewritten features alone.
    The hook is removed on exit, even after an exception.
    """
    names = {s.hook for s in sites}
    if len(names) != 1 or any(s.kind != "sae_feature" for s in sites):
        raise SiteError(f"rewritten_features needs sae_feature sites on one hook, got {names}")

    def hook(x: Tensor, hook=None) -> Tensor:
        f = sae.encode(x)  # (batch, pos, d_sae)
        new = f
        for site in sites:
            new = site.write(new, fn(site, site.select(new)))
        if torch.equal(new, f):
            return x  # no feature changed: exactly the input (no decode round-off)
        error = x - sae.decode(f)  # what the dictionary misses, kept untouched
        return sae.decode(new) + error

    with hooks(model, fwd=[(names.pop(), hook)], identity_ok=identity_ok):
        yield model
