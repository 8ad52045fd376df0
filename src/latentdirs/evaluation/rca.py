"""RCA: reconstructor classification accuracy of a direction set (the paper's Table 2).

A fresh reconstructor is trained with the directions frozen, then its accuracy is measured
on held-out pairs. Distinct, easy-to-tell directions score high; random or coordinate
directions are the baselines.
"""
from __future__ import annotations

from pathlib import Path

from ..directions import DirectionSet
from ..discovery import DiscoveryConfig, discover, reconstructor_accuracy
from ..generators.base import Generator


def rca(generator: Generator, directions: DirectionSet, steps: int = 2_000, seed: int = 0,
        batch_size: int = 128, reconstructor: str = "lenet", lr: float = 1e-4, device: str | None = None,
        out_dir: str | Path | None = None, eval_batches: int = 10, progress: bool = False, **options) -> float:
    """Train a fresh reconstructor against frozen ``directions``; accuracy on held-out pairs."""
    if directions.latent_dim != generator.latent_dim:
        raise ValueError(f"the direction set lives in a {directions.latent_dim}-d latent space but the generator "
                         f"{generator.name} takes {generator.latent_dim}-d latents")
    result = discover(generator, num_directions=directions.num_directions, reconstructor=reconstructor,
                      steps=steps, batch_size=batch_size, seed=seed, lr=lr, device=device, out_dir=out_dir,
                      progress=progress, fixed_matrix=directions.matrix, importance_latents=0, **options)
    cfg = DiscoveryConfig(num_directions=directions.num_directions, batch_size=batch_size, seed=seed,
                          **{k: v for k, v in options.items() if k in ("shift_range", "min_shift")})
    return reconstructor_accuracy(generator, result.direction_matrix, result.reconstructor, cfg,
                                  num_batches=eval_batches)
