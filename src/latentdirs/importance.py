"""Importance of a direction: how much the image changes per unit shift along it.

LD gives K directions with no order; ground-truth protocols need "the top k". The score
of direction h is ``E_z mean|G(z + s h) - G(z - s h)| / (2 s)`` over a fixed set of
latents: a direction the generator ignores scores ~0, a strong one scores high. It is
cheap (2 forward passes per direction and latent) and needs no labels.
"""
from __future__ import annotations

import torch

from .generators.base import Generator


def check_matrix(generator: Generator, matrix, num_latents: int | None = None, shift: float | None = None
                 ) -> torch.Tensor:
    """``matrix`` as a finite (latent_dim, K >= 1) tensor, one direction per column; a clear error otherwise.

    With ``num_latents`` and ``shift``, also the measure's own settings: no latents averages to NaN, no shift
    gives cosines of zero changes."""
    if num_latents is not None and (num_latents < 1 or not shift > 0):
        raise ValueError(f"need num_latents >= 1 and shift > 0, got {num_latents} and {shift}")
    if not isinstance(matrix, torch.Tensor):
        raise ValueError(f"directions must be a (latent_dim, K) tensor, got {type(matrix).__name__} "
                         "(pass a DirectionSet's .matrix)")
    if matrix.dim() != 2 or matrix.shape[0] != generator.latent_dim or matrix.shape[1] < 1:
        raise ValueError(f"directions must be ({generator.latent_dim}, K) with K >= 1 for {generator.name}, one per "
                         f"column, got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise ValueError("directions hold NaN or inf")
    return matrix


@torch.no_grad()
def image_change_scores(generator: Generator, matrix: torch.Tensor, num_latents: int = 32,
                        shift: float = 3.0, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
    """Mean absolute pixel change per unit shift for each column of ``matrix`` (d, K)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    matrix = check_matrix(generator, matrix, num_latents, shift)
    device = generator.device
    g = torch.Generator().manual_seed(seed)
    z = generator.sample_latents(num_latents, generator=g, device=device)
    matrix = matrix.to(device)
    scores = torch.zeros(matrix.shape[1])
    for k in range(matrix.shape[1]):
        h = matrix[:, k]
        total = 0.0
        for start in range(0, num_latents, batch_size):
            zb = z[start:start + batch_size]
            diff = generator.shifted(zb, shift * h) - generator.shifted(zb, -shift * h)
            total += diff.abs().mean(dim=(1, 2, 3)).sum().item()
        scores[k] = total / num_latents / (2 * shift)
    return scores


@torch.no_grad()
def image_change_overlap(generator: Generator, matrix: torch.Tensor, num_latents: int = 32, shift: float = 3.0,
                         seed: int = 0) -> torch.Tensor:
    """(K, K) mean squared cosine between the image changes of two directions at the same latent.

    0 off the diagonal: the two directions move disjoint (or orthogonal) pixel patterns; 1: the
    same pattern. The label-free quantity that ``DiscoveryConfig.overlap_weight`` penalizes.
    """
    matrix = check_matrix(generator, matrix, num_latents, shift)
    device = generator.device
    z = generator.sample_latents(num_latents, generator=torch.Generator().manual_seed(seed), device=device)
    changes = torch.stack([(generator.shifted(z, shift * h) - generator.shifted(z, -shift * h)).flatten(1)
                           for h in matrix.to(device).t()], dim=1)  # (latents, K, pixels)
    return squared_cosines(changes).mean(0).cpu()


def squared_cosines(changes: torch.Tensor) -> torch.Tensor:
    """(..., M, pixels) image changes -> (..., M, M) squared cosines between them, in fp32."""
    unit = torch.nn.functional.normalize(changes.float(), dim=-1)
    return (unit @ unit.transpose(-1, -2)).square()
