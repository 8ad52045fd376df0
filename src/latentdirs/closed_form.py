"""Training-free directions: SeFa (Shen & Zhou 2021) and GANSpace (Härkönen et al. 2020).

Both are pure functions ``generator -> DirectionSet`` with scores ranking the directions:

- :func:`sefa`: top eigenvectors of W^T W, W the first affine map of the latent
  (``generator.first_layer_weight()``); no sampling, well under a second.
- :func:`ganspace`: PCA of early-layer activations over sampled latents, mapped back to
  the latent space by least squares (Z-space generators), or PCA of the latents
  themselves for W / W+ spaces.

    >>> import latentdirs
    >>> G = latentdirs.load_generator("planted")
    >>> latentdirs.sefa(G, num_directions=5).scores        # eigenvalues, descending
"""
from __future__ import annotations

import torch

from .directions import DirectionError, DirectionSet
from .generators.base import Generator, GeneratorError


# -- SeFa ------------------------------------------------------------------------------
def sefa_from_weight(weight: torch.Tensor, num_directions: int = 10,
                     normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Directions (latent_dim, K) and eigenvalues (K,) of W^T W for a weight W (out, latent_dim).

    ``normalize=True`` is the official SeFa code: each output unit's weight vector (a row of
    W here) is scaled to unit L2 norm first, so units with large weights do not dominate.
    ``normalize=False`` is the plain SVD of W (rosinality's stylegan2-pytorch version).
    """
    weight = torch.as_tensor(weight).detach().to(torch.float64).cpu()
    if weight.dim() != 2:
        raise DirectionError(f"SeFa needs a 2-D weight (out_features, latent_dim), got shape {tuple(weight.shape)}")
    latent_dim = weight.shape[1]
    if not 1 <= num_directions <= latent_dim:
        raise DirectionError(f"SeFa gives at most latent_dim={latent_dim} directions (and at least 1), asked for {num_directions}")
    if not torch.isfinite(weight).all():  # eigh would fail with "ill-conditioned", which hides the cause
        raise DirectionError("SeFa's weight holds NaN or inf: check the generator's first layer (a diverged training?)")
    if normalize:
        weight = weight / weight.norm(dim=1, keepdim=True).clamp_min(1e-12)
    eigenvalues, eigenvectors = torch.linalg.eigh(weight.t() @ weight)  # ascending
    eigenvalues = eigenvalues.flip(0)[:num_directions].clamp_min(0)
    directions = eigenvectors.flip(1)[:, :num_directions]
    return _fix_signs(directions).float(), eigenvalues.float()


def sefa(generator: Generator, num_directions: int = 10, normalize: bool = True) -> DirectionSet:
    """SeFa directions of ``generator``: the latent moves that change its first layer's output most."""
    weight = generator.first_layer_weight()
    if weight is None:
        raise GeneratorError(
            f"{generator.name} exposes no first-layer weight, so SeFa cannot run. Name the parameter of the "
            "first affine map of the latent with latentdirs.wrap(module, latent_dim=..., first_layer='fc.weight'), "
            "or implement first_layer_weight() returning it as (out_features, latent_dim).")
    if weight.dim() != 2 or weight.shape[1] != generator.latent_dim:
        raise GeneratorError(
            f"{generator.name}.first_layer_weight() must be (out_features, latent_dim={generator.latent_dim}), "
            f"got {tuple(weight.shape)}; transpose or flatten it in the adapter.")
    directions, eigenvalues = sefa_from_weight(weight, num_directions, normalize)
    return DirectionSet(directions, eigenvalues, meta={
        "method": "sefa", "normalize": normalize, "generator": generator.describe(),
        "num_directions": num_directions, "scores": "eigenvalues of W^T W"})


# -- GANSpace --------------------------------------------------------------------------
@torch.no_grad()
def ganspace(generator: Generator, num_directions: int = 10, num_samples: int = 20_000, seed: int = 0,
             batch_size: int = 500) -> DirectionSet:
    """GANSpace directions: principal axes of early activations, in latent coordinates.

    Z space: PCA of ``generator.early_features(z)`` (flattened), then the paper's regression
    z ~ U x of the latents on their PCA coordinates x; the columns of U, scaled to unit
    norm, are the directions. W / W+ space (``generator.latent_space``): PCA of the
    latents directly. Scores are the explained-variance ratios. The original samples 300k
    latents; 20k take ~2 s on one CPU core for a 2048-wide layer. Where the spectrum is flat
    (an undertrained generator) the individual axes vary from seed to seed.
    Generators without ``early_features`` are refused rather than silently falling back to
    pixels: pixel PCA is a different method and would not be comparable.
    """
    if num_directions < 1:  # before sampling: PCA would otherwise run for nothing
        raise DirectionError(f"GANSpace needs num_directions >= 1, got {num_directions}")
    if num_samples <= num_directions:  # centred, N samples span at most N - 1 axes
        raise DirectionError(f"GANSpace's PCA of {num_samples} samples gives at most {max(num_samples - 1, 0)} "
                             f"components, asked for {num_directions}: raise num_samples")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = torch.Generator().manual_seed(seed)
    latents = generator.sample_latents(num_samples, generator=rng, device="cpu")
    space = generator.latent_space
    if space in ("w", "w+"):
        components, ratios, _ = _pca(latents.float(), num_directions, seed)
        directions = components
    else:
        features = _early_features(generator, latents, batch_size)
        components, ratios, coords = _pca(features, num_directions, seed)
        # z ~ U x (least squares over samples): the latent move that best realises a unit step along each axis.
        centered = latents.double() - latents.double().mean(0)
        solution = torch.linalg.lstsq(coords, centered).solution  # (K, d)
        directions = solution.t()
    directions = directions / directions.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return DirectionSet(_fix_signs(directions).float(), ratios.float(), meta={
        "method": "ganspace", "generator": generator.describe(), "num_directions": num_directions,
        "num_samples": num_samples, "seed": seed, "pca_on": "latents" if space in ("w", "w+") else "early_features",
        "scores": "explained variance ratio"})


def _early_features(generator: Generator, latents: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = generator.device
    chunks = []
    for start in range(0, len(latents), batch_size):
        out = generator.early_features(latents[start:start + batch_size].to(device))
        if out is None:
            raise GeneratorError(
                f"{generator.name} exposes no early features, so GANSpace cannot run. Implement "
                "early_features(latent) in the adapter, returning the activations of an early layer "
                "(e.g. the output of the first block), shape (batch, ...).")
        chunks.append(out.flatten(1).float().cpu())
    return torch.cat(chunks)


def _pca(data: torch.Tensor, num_components: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top principal axes (D, K), explained-variance ratios (K,) and coordinates (N, K) of rows of ``data``."""
    num_samples, dim = data.shape
    most = min(num_samples - 1, dim)  # centring takes one degree of freedom: an N-th axis would have no variance
    if num_components > most:
        raise DirectionError(
            f"PCA of {num_samples} samples of {dim} features gives at most {most} components, "
            f"asked for {num_components}: lower num_directions or use a wider layer")
    centered = data - data.mean(0, dtype=torch.float64).to(data.dtype)
    total_variance = centered.pow(2).sum(dtype=torch.float64)
    if min(num_samples, dim) <= 256:
        _, singular, vh = torch.linalg.svd(centered, full_matrices=False)
        axes = vh[:num_components].t()
        singular = singular[:num_components]
    else:
        # Randomized SVD (Halko et al.) in float32: ~5x faster than an exact covariance eigh for a
        # 20k x 2k matrix. Generous oversampling because a barely trained GAN has a flat spectrum,
        # where q = K + 10 mixes neighbouring axes. A private RNG leaves the caller's random state alone.
        oversampled = min(2 * num_components + 40, num_samples, dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, singular, axes = torch.pca_lowrank(centered, q=oversampled, center=False, niter=8)
        axes, singular = axes[:, :num_components], singular[:num_components]
    ratios = singular.double().pow(2) / total_variance.clamp_min(1e-30)
    return axes.double(), ratios, (centered @ axes.to(centered.dtype)).double()


def _fix_signs(directions: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign: make each column's largest-magnitude entry positive."""
    peak = directions.gather(0, directions.abs().argmax(0, keepdim=True))
    return directions * torch.where(peak < 0, -1.0, 1.0).to(directions)
