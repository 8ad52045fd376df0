"""Ground-truth disentanglement of a direction set: the encoder protocol of Khrulkov et al. 2021.

Directions live in the generator's latent space, factors live in real images; an encoder
bridges the two:

  1. sample latents z, generate G(z), targets t = A^T z (coordinates along the k directions);
  2. train a small CNN E with MSE so that E(G(z)) ~ t (targets standardized per direction);
  3. encode the real images with known factors and score the codes E(x) against the
     factors with MIG, DCI and modularity (:mod:`latentdirs.evaluation.metrics`).

The paper trains on 500k pairs and scores 10k real points. The defaults here (5k pairs,
1.5k steps of batch 64, images resized to 32x32, 5k real points) run in about a minute on
one CPU core for the shipped 64x64 generator; ``encoder_r2`` (held-out R^2 of E on
generated pairs) says whether the encoder learned enough for the scores to mean much.

    >>> from latentdirs.evaluation.ground_truth import ground_truth_dataset, ground_truth_scores
    >>> images, factors, names = ground_truth_dataset(G, 5_000)
    >>> ground_truth_scores(G, directions.top(10), images, factors)
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..directions import DirectionSet
from ..generators.base import Generator, GeneratorError
from .metrics import all_metrics


def ground_truth_dataset(generator: Generator, num: int = 5_000, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Real images (NCHW in [-1, 1]) with integer factors (N, F) and factor names for ``generator``.

    The data comes from the generator's :meth:`~latentdirs.generators.base.Generator.ground_truth`
    hook (the planted generator draws its own scenes, the shipped ``shapes3d`` GANs render fresh
    procedural scenes). Other generators need a dataset passed to :func:`ground_truth_scores` directly.
    """
    if num < 1:
        raise ValueError(f"ground_truth_dataset needs num >= 1 points, got {num}")
    truth = generator.ground_truth()
    if truth is None:
        raise GeneratorError(
            f"{generator.name} has no data with known factors: pass images and factors to ground_truth_scores() "
            "yourself, or implement ground_truth() in its adapter, returning a latentdirs.generators.GroundTruth "
            "(factor names, factor sizes, sample(num, seed) -> (images, factors)).")
    images, factors = truth.sample(num, seed)
    images = torch.as_tensor(images, dtype=torch.float32)
    factors = np.asarray(factors.cpu() if isinstance(factors, torch.Tensor) else factors).astype(np.int64)
    expected = (num, len(truth.factor_names))
    if len(images) != num or factors.shape != expected:
        raise GeneratorError(f"{generator.name}.ground_truth().sample({num}, seed) gave {len(images)} images and "
                             f"factors of shape {factors.shape}; expected {num} images and factors {expected}.")
    if factors.min() < 0 or (factors >= np.asarray(truth.factor_sizes)).any():
        raise GeneratorError(f"{generator.name}.ground_truth(): factor values must lie in 0 .. size - 1 for sizes "
                             f"{tuple(truth.factor_sizes)}.")
    return images, factors, list(truth.factor_names)


class Encoder(nn.Module):
    """Three stride-2 convolutions and a two-layer head: enough for 32x32-64x64 synthetic scenes."""

    def __init__(self, channels: int, num_outputs: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 16, 128), nn.LeakyReLU(0.2),
                                  nn.Linear(128, num_outputs))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def ground_truth_scores(generator: Generator, directions: DirectionSet, images=None, factors=None,
                        num_train: int = 5_000, steps: int = 1_500, batch_size: int = 64, lr: float = 1e-3,
                        image_size: int | None = 32, num_eval: int = 5_000, seed: int = 0,
                        device: str | None = None, progress: bool = False, dci_predictor: str = "gbt") -> dict:
    """MIG, DCI (3 numbers), modularity and the encoder's held-out R^2 for ``directions``.

    ``images`` are the real data: a tensor NCHW in [-1, 1] or a uint8 array NHWC; ``factors``
    integer (N, F). Without them, ``num_eval`` points come from :func:`ground_truth_dataset`.
    Every direction of the set is used: pass ``directions.top(k)`` for the protocol's top k.
    ``image_size`` resizes both generated and real images for the encoder (None keeps the
    generator's resolution). ``dci_predictor``: "gbt" (disentanglement_lib's, comparable with
    published DCI) or "forest" (about 20x faster, lower D and C on mixed codes).
    """
    start = time.perf_counter()
    # A tenth of the pairs is held out for encoder_r2, whose variance needs 2 of them; the encoder's three
    # stride-2 4x4 convolutions need 8x8 images.
    if num_train < 20:
        raise ValueError(f"num_train must be >= 20 (a tenth is held out to measure encoder_r2), got {num_train}")
    if batch_size < 1 or steps < 0:
        raise ValueError(f"need batch_size >= 1 and steps >= 0, got {batch_size} and {steps}")
    if image_size is not None and image_size < 8:
        raise ValueError(f"image_size must be >= 8 (the encoder's input) or None (the generator's), got {image_size}")
    device = torch.device(device or "cpu")
    if images is None or factors is None:
        images, factors, _ = ground_truth_dataset(generator, num_eval, seed=10_000 + seed)
    factors = np.asarray(factors)
    real = _as_images(images)
    if len(real) != len(factors):
        raise ValueError(f"{len(real)} images but {len(factors)} factor rows")
    if len(real) < 2:
        raise ValueError(f"need at least 2 real images with factors to score, got {len(real)}")
    if directions.latent_dim != generator.latent_dim:
        raise ValueError(f"directions are {directions.latent_dim}-d but {generator.name} takes "
                         f"{generator.latent_dim}-d latents")
    generator = generator.to(device)
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    latents = generator.sample_latents(num_train, generator=rng, device="cpu")
    fake = _generate(generator, latents, image_size, device)
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"{generator.name} makes {fake.shape[1]}-channel images, the real data has {real.shape[1]}")
    if min(fake.shape[-2:]) < 8:
        raise ValueError(f"{generator.name} makes {tuple(fake.shape[-2:])} images, smaller than the encoder's 8x8: "
                         "pass image_size=8 or more")
    targets = latents @ directions.matrix
    mean, std = targets.mean(0), targets.std(0).clamp_min(1e-8)
    targets = (targets - mean) / std

    num_held_out = max(1, num_train // 10)
    encoder = Encoder(fake.shape[1], directions.num_directions).to(device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    train_images, train_targets = fake[num_held_out:], targets[num_held_out:]
    for _ in tqdm(range(steps), desc="ground-truth encoder", disable=not progress, dynamic_ncols=True):
        batch = torch.randint(len(train_images), (batch_size,), generator=rng)
        loss = F.mse_loss(encoder(train_images[batch].to(device)), train_targets[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    encoder.eval()
    held_out_error = (_encode(encoder, fake[:num_held_out], device) - targets[:num_held_out]).pow(2).mean(0)
    r2 = (1 - held_out_error / targets[:num_held_out].var(0).clamp_min(1e-8)).mean().item()

    real = _resize(real, image_size)
    codes = _encode(encoder, real, device).numpy()
    scores = all_metrics(codes, factors, seed=seed, predictor=dci_predictor)
    return {**scores, "encoder_r2": r2, "num_train": num_train, "steps": steps, "num_eval": len(real),
            "seconds": time.perf_counter() - start}


def _as_images(images) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"numpy images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    images = torch.as_tensor(images, dtype=torch.float32)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    return images


def _resize(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or images.shape[-1] == image_size:
        return images
    # Antialiased area averaging: plain subsampling would alias thin edges differently in real and fake images.
    return F.interpolate(images, size=(image_size, image_size), mode="area")


@torch.no_grad()
def _generate(generator: Generator, latents: torch.Tensor, image_size: int | None, device: torch.device,
              batch_size: int = 256) -> torch.Tensor:
    chunks = [_resize(generator(latents[i:i + batch_size].to(device)).cpu(), image_size)
              for i in range(0, len(latents), batch_size)]
    return torch.cat(chunks)


@torch.no_grad()
def _encode(encoder: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([encoder(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])
