"""How many of K directions are really different, and which of them collapse.

Two label-free measures used by the ablations (``latentdirs sweep``):

**Distinct directions.** The *change field* of a direction h is what it does to a fixed
set of latents: ``G(z_i + s h) - G(z_i)`` for i = 1..n, flattened and stacked into one
vector. The fields are stacked rather than averaged over z because an average cancels
changes that depend on z (moving an object that sits at different places). Two
directions are "the same" when their fields have ``|cos| > threshold`` (0.9 by default;
``|cos|`` because h and -h do the same thing). Greedy clustering, strongest direction
first, counts the distinct ones. Directions whose field is ~0 change nothing and are
counted as *inactive*, not as distinct.

**Collapse** (the paper's lambda = 0 failure). A collapsed direction sends every latent to
nearly the same image. Its *spread ratio* is the spread over z of ``G(z + s h)`` at a large
shift s (8, beyond the training range of 6) divided by the spread of ``G(z)``, spread =
per-pixel standard deviation over z averaged over pixels; the smaller of the ratios at +s
and -s is kept. Near 1 = the images still differ as much as samples do; near 0 = collapse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..generators.base import Generator
from ..importance import check_matrix

SAME_THRESHOLD = 0.9
COLLAPSE_THRESHOLD = 0.1
INACTIVE_CHANGE = 1e-4


def _check(generator: Generator, matrix, num_latents: int, min_latents: int, shift: float, batch_size: int
           ) -> torch.Tensor:
    if num_latents < min_latents:
        raise ValueError(f"num_latents must be >= {min_latents}, got {num_latents}")
    if not (math.isfinite(shift) and shift != 0):  # a zero shift changes nothing: every direction would look inactive
        raise ValueError(f"the shift must be a nonzero number, got {shift}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return check_matrix(generator, matrix)


def _latents(generator: Generator, num: int, seed: int) -> torch.Tensor:
    return generator.sample_latents(num, generator=torch.Generator().manual_seed(seed), device=generator.device)


@torch.no_grad()
def _render(generator: Generator, latents: torch.Tensor, batch_size: int, shift: torch.Tensor | None = None
            ) -> torch.Tensor:
    """G(latents), or G.shifted(latents, shift) with one shift vector for all of them."""
    chunks = [latents[i:i + batch_size] for i in range(0, len(latents), batch_size)]
    images = [generator(c) if shift is None else generator.shifted(c, shift) for c in chunks]
    return torch.cat(images).float().cpu()


@torch.no_grad()
def change_fields(generator: Generator, matrix: torch.Tensor, num_latents: int = 16, shift: float = 3.0,
                  seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """(K, n*C*H*W): ``G(z_i + shift h_k) - G(z_i)`` for n fixed latents, one row per column of ``matrix``."""
    matrix = _check(generator, matrix, num_latents, 1, shift, batch_size)
    z = _latents(generator, num_latents, seed)
    base = _render(generator, z, batch_size)
    matrix = matrix.to(z.device, z.dtype)
    return torch.stack([(_render(generator, z, batch_size, shift * matrix[:, k]) - base).flatten()
                        for k in range(matrix.shape[1])])


def abs_cosines(fields: torch.Tensor) -> torch.Tensor:
    """(K, K) ``|cos|`` between change fields; rows of ~zero fields are all 0."""
    norms = fields.norm(dim=1, keepdim=True)
    unit = fields / norms.clamp_min(1e-12)
    return (unit @ unit.t()).abs().clamp(max=1.0)


@dataclass
class Distinctness:
    count: int
    """Number of distinct directions (clusters of active directions)."""
    clusters: list[list[int]]
    """Direction indices per cluster; the first index of each is its representative."""
    inactive: list[int]
    """Directions whose change field is ~0."""
    mean_abs_cos: float
    """Mean ``|cos|`` over pairs of active directions (0 = all orthogonal, 1 = all alike)."""


def distinct_directions(fields: torch.Tensor, threshold: float = SAME_THRESHOLD,
                        inactive_change: float = INACTIVE_CHANGE) -> Distinctness:
    """Greedy clustering of change fields (K, D): a direction joins the first cluster whose
    representative it matches with ``|cos| > threshold``; strongest directions go first."""
    if fields.dim() != 2:
        raise ValueError(f"change fields must be (K, D), one row per direction, got shape {tuple(fields.shape)}")
    if math.isnan(threshold):  # every comparison would fail: each direction its own cluster
        raise ValueError("threshold must be a |cos| (0.9 by default), got nan")
    magnitude = fields.abs().mean(dim=1)
    active = [int(k) for k in torch.argsort(magnitude, descending=True) if magnitude[k] > inactive_change]
    inactive = sorted(set(range(len(fields))) - set(active))
    cos = abs_cosines(fields)
    clusters: list[list[int]] = []
    for k in active:
        home = next((c for c in clusters if cos[c[0], k] > threshold), None)
        if home is None:
            clusters.append([k])
        else:
            home.append(k)
    if len(active) > 1:
        sub = cos[active][:, active]
        mean_abs_cos = ((sub.sum() - sub.diagonal().sum()) / (len(active) * (len(active) - 1))).item()
    else:
        mean_abs_cos = float("nan")
    return Distinctness(len(clusters), clusters, inactive, mean_abs_cos)


def _spread(images: torch.Tensor) -> float:
    return images.std(dim=0).mean().item()


@torch.no_grad()
def collapse_ratios(generator: Generator, matrix: torch.Tensor, shift: float = 8.0, num_latents: int = 32,
                    seed: int = 1, batch_size: int = 64) -> torch.Tensor:
    """(K,) spread of ``G(z + s h)`` over z relative to the spread of ``G(z)``, the smaller of s = +-shift."""
    matrix = _check(generator, matrix, num_latents, 2, shift, batch_size)  # a spread over one latent is NaN
    z = _latents(generator, num_latents, seed)
    reference = max(_spread(_render(generator, z, batch_size)), 1e-12)
    matrix = matrix.to(z.device, z.dtype)
    ratios = []
    for k in range(matrix.shape[1]):
        h = matrix[:, k]
        ratios.append(min(_spread(_render(generator, z, batch_size, sign * shift * h)) for sign in (1, -1))
                      / reference)
    return torch.tensor(ratios)


def diversity_report(generator: Generator, matrix: torch.Tensor, num_latents: int = 16, change_shift: float = 3.0,
                     same_threshold: float = SAME_THRESHOLD, collapse_shift: float = 8.0,
                     collapse_threshold: float = COLLAPSE_THRESHOLD, seed: int = 0) -> dict:
    """Both measures for the columns of ``matrix`` (d, K), as a JSON-ready dict."""
    if math.isnan(collapse_threshold):  # would call nothing collapsed
        raise ValueError("collapse_threshold must be a ratio of spreads (0.1 by default), got nan")
    fields = change_fields(generator, matrix, num_latents=num_latents, shift=change_shift, seed=seed)
    distinct = distinct_directions(fields, threshold=same_threshold)
    ratios = collapse_ratios(generator, matrix, shift=collapse_shift, num_latents=max(num_latents, 16), seed=seed + 1)
    collapsed = [k for k, r in enumerate(ratios.tolist()) if r < collapse_threshold]
    k = matrix.shape[1]
    return {"distinct": distinct.count, "distinct_fraction": distinct.count / k, "inactive": len(distinct.inactive),
            "mean_abs_cos": distinct.mean_abs_cos, "clusters": distinct.clusters,
            "collapse_ratio_mean": ratios.mean().item(), "collapse_ratio_min": ratios.min().item(),
            "collapse_ratios": [round(r, 4) for r in ratios.tolist()],
            "collapsed": len(collapsed), "collapsed_fraction": len(collapsed) / k, "collapsed_directions": collapsed,
            "settings": {"num_latents": num_latents, "change_shift": change_shift, "same_threshold": same_threshold,
                         "collapse_shift": collapse_shift, "collapse_threshold": collapse_threshold, "seed": seed}}
