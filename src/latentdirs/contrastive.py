"""LatentCLR (Yüksel et al. 2021): directions found by contrasting the changes they cause.

Global directions d_1..d_K (unit norm, as LD's "unit" parametrization). One training step:
  1. sample N latents z_i; render G(z_i) without autograd (nothing upstream of it is trained);
  2. move every z_i along every direction by a fixed ``shift`` alpha: ``G.shifted(z_i, alpha d_k)``,
     with autograd to the input only (G is frozen), so a W+ layer range moves only its layers;
  3. features f_i^k = pool(G.shifted(z_i, alpha d_k)) - pool(G(z_i)), the change direction k makes;
  4. NT-Xent loss: for each f_i^k the positives are f_j^k (same direction, other latents), the
     negatives f_j^l with l != k; similarity = cosine / temperature. Adam on the directions only.

Features: the paper contrasts intermediate activations of StyleGAN2 / BigGAN. The Generator
protocol has no general hook for those (``early_features`` is optional and GANSpace's; on the
planted generator it returns the factor values themselves, which would give the answer away),
so the features here are the output image, average-pooled to at most ``feature_size`` pixels a
side: the same for every generator, cheap, and blind to pixel-level texture noise.

    >>> import latentdirs
    >>> G = latentdirs.load_generator("planted")
    >>> latentdirs.latentclr(G, num_directions=5, steps=200).top(3)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .directions import DirectionError, DirectionMatrix, DirectionSet
from .devices import resolve_device
from .generators.base import Generator
from .importance import image_change_scores


def latentclr(generator: Generator, num_directions: int = 10, *, steps: int = 1_500, batch_size: int = 16,
              lr: float = 1e-3, temperature: float = 0.5, shift: float = 3.0, feature_size: int = 16,
              seed: int = 0, device: str = "auto", progress: bool = False) -> DirectionSet:
    """K global directions of ``generator`` trained with LatentCLR's contrastive loss, best first.

    ``batch_size`` is N, the latents per step; each is moved along all K directions, so a step
    renders N (K + 1) images. Scores are the image change per unit shift
    (:mod:`latentdirs.importance`), as for LD, so ``.top(k)`` keeps the strongest.
    """
    if num_directions < 2:  # a DirectionError, so `compare` records "could not run" instead of stopping
        raise DirectionError(f"LatentCLR needs at least 2 directions (the others are the negatives), got {num_directions}")
    for name, value in (("steps", steps), ("feature_size", feature_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (the positives are other latents), got {batch_size}")
    for name, value in (("lr", lr), ("temperature", temperature), ("shift", shift)):
        # inf: a constant loss (temperature) or NaN directions after the first step (lr, shift)
        if not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    dev = resolve_device(device)
    generator = generator.to(dev).freeze()
    matrix = DirectionMatrix(generator.latent_dim, num_directions, "unit", seed=seed).to(dev)
    optimizer = torch.optim.Adam(matrix.parameters(), lr=lr)
    rng = torch.Generator().manual_seed(seed)
    # Direction of each row of the (K * N, features) block: rows k * N .. k * N + N - 1 belong to direction k.
    labels = torch.arange(num_directions, device=dev).repeat_interleave(batch_size)
    same = labels[:, None] == labels[None, :]
    positives = same & ~torch.eye(len(labels), dtype=torch.bool, device=dev)
    for _ in tqdm(range(steps), disable=not progress, desc=f"latentclr {generator.name}", dynamic_ncols=True):
        z = generator.sample_latents(batch_size, generator=rng, device=dev)
        with torch.no_grad():
            base = _features(generator(z), feature_size)
        directions = matrix.matrix()
        changes = torch.cat([_features(generator.shifted(z, shift * directions[:, k]), feature_size) - base
                             for k in range(num_directions)])
        loss = nt_xent(changes, positives, ~same, temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    found = matrix.to_direction_set(
        method="latentclr", generator=generator.describe(), num_directions=num_directions, seed=seed, steps=steps,
        batch_size=batch_size, lr=lr, temperature=temperature, shift=shift, feature_size=feature_size,
        features="output image, average-pooled", final_loss=loss.item(),
        scores="image change per unit shift (latentdirs.importance)")
    found.scores = image_change_scores(generator, found.matrix, shift=shift, seed=seed)
    return found.sorted()


def nt_xent(features: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Mean over rows of -log(sum_pos exp(sim / t) / sum_neg exp(sim / t)), sim the cosine of two rows.

    ``positives`` / ``negatives``: boolean (rows, rows) masks saying which pairs count as which.
    """
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    rows = (len(features), len(features))
    if tuple(positives.shape) != rows or tuple(negatives.shape) != rows:
        raise ValueError(f"positives and negatives must be {rows} masks for {len(features)} feature rows, got "
                         f"{tuple(positives.shape)} and {tuple(negatives.shape)}")
    unit = F.normalize(features, dim=1, eps=1e-8)
    logits = unit @ unit.t() / temperature
    pulled = logits.masked_fill(~positives, float("-inf")).logsumexp(dim=1)
    pushed = logits.masked_fill(~negatives, float("-inf")).logsumexp(dim=1)
    return (pushed - pulled).mean()


def _features(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) average-pooled to at most size x size, flattened to (N, features)."""
    if max(images.shape[2:]) > size:
        images = F.adaptive_avg_pool2d(images, (min(size, images.shape[2]), min(size, images.shape[3])))
    return images.flatten(1)
