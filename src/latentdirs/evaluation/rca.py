"""RCA: reconstructor classification accuracy of a direction set (the paper's Table 2).

A fresh reconstructor is trained with the directions frozen, then its accuracy is measured
on held-out pairs. Distinct, easy-to-tell directions score high; random or coordinate
directions are the baselines.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..configs import check_declared
from ..directions import DirectionSet
from ..discovery import RECONSTRUCTORS, DiscoveryConfig, discover, reconstructor_accuracy
from ..generators.base import Generator


@dataclass
class RCAConfig:
    """How RCA trains and scores its fresh reconstructor.

    The one source of ``rca()``'s defaults and of ``latentdirs rca``'s options (generated from these
    fields, with these docstrings as help). lr 1e-3 is what every published RCA used (demo, compare,
    sweep, benchmarks); the paper's 1e-4 needs several times the steps.
    """

    steps: int = 1_000
    """Reconstructor training steps against the frozen directions."""
    batch_size: int = 128
    """Latent pairs per training step (and per held-out batch)."""
    lr: float = 1e-3
    """Learning rate of the reconstructor (Adam)."""
    seed: int = 0
    """Seed of the latents, the shifts and the reconstructor's initialization (and of the random baseline)."""
    reconstructor: str = "lenet"
    """Reconstructor architecture: lenet (small images, CPU) or resnet18."""
    eval_batches: int = 10
    """Held-out batches the accuracy is measured on."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("steps", "batch_size", "eval_batches")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"reconstructor": RECONSTRUCTORS}

    def __post_init__(self) -> None:
        check_declared(self)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def rca(generator: Generator, directions: DirectionSet, config: RCAConfig | None = None, *,
        device: str | None = None, out_dir: str | Path | None = None, progress: bool = False, **options) -> float:
    """Train a fresh reconstructor against frozen ``directions``; its accuracy on held-out pairs.

    ``config`` (default ``RCAConfig()``) with its fields as keywords: ``rca(G, ds, steps=500, seed=1)``.
    Other keywords are discovery options that shape the pairs (``shift_range``, ``min_shift``, ...).
    """
    names = {f.name for f in dataclasses.fields(RCAConfig)}
    cfg = dataclasses.replace(config or RCAConfig(), **{k: v for k, v in options.items() if k in names})
    options = {k: v for k, v in options.items() if k not in names}
    if directions.latent_dim != generator.latent_dim:
        raise ValueError(f"the direction set lives in a {directions.latent_dim}-d latent space but the generator "
                         f"{generator.name} takes {generator.latent_dim}-d latents")
    result = discover(generator, num_directions=directions.num_directions, reconstructor=cfg.reconstructor,
                      steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed, lr=cfg.lr, device=device,
                      out_dir=out_dir, progress=progress, fixed_matrix=directions.matrix, importance_latents=0,
                      **options)
    pairs = DiscoveryConfig(num_directions=directions.num_directions, batch_size=cfg.batch_size, seed=cfg.seed,
                            **{k: v for k, v in options.items() if k in ("shift_range", "min_shift")})
    return reconstructor_accuracy(generator, result.direction_matrix, result.reconstructor, pairs,
                                  num_batches=cfg.eval_batches)
