"""LD's image pairs, built in one place for training and for the held-out measures below it.

A pair is G(z) beside G(z + A(eps e_k)) along the channels: what R reads to tell k and eps.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..directions import DirectionMatrix
from ..generators.base import Generator
from .config import DiscoveryConfig


def step_rng(seed: int, rank: int, step: int) -> torch.Generator:
    # Re-seeding per step makes a resumed run draw exactly what an uninterrupted one would.
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))


def sample_pairs(generator: Generator, cfg: DiscoveryConfig, num_pairs: int, rng: torch.Generator,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (num_pairs / M of them), direction indices and shifts for one step."""
    z = generator.sample_latents(num_pairs // cfg.shifts_per_latent, generator=rng, device="cpu")
    index = torch.randint(cfg.num_directions, (num_pairs,), generator=rng)
    shift = (torch.rand(num_pairs, generator=rng) * 2 - 1) * cfg.shift_range
    shift = torch.sign(shift) * shift.abs().clamp_min(cfg.min_shift)
    return z.to(device), index.to(device), shift.to(device)


def image_pairs(generator: Generator, matrix: torch.Tensor, z: torch.Tensor, index: torch.Tensor,
                shift: torch.Tensor, base: torch.Tensor, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(pairs, shifted images): each of the b latents ``z`` with its M = len(index) / b partners.

    ``matrix`` is A (d x K), ``base`` is G(z), computed by the caller (training does it without
    autograd). Moves go through ``G.shifted`` so that a W+ layer range moves only its layers.
    """
    b, m = z.shape[0], index.shape[0] // z.shape[0]
    moves = (matrix[:, index].t() * shift.reshape(-1, 1)).view(b, m, -1)
    # Broadcasting over the M partners instead of repeat_interleave: G(z) is never copied M times.
    shifted = generator.shifted(z.unsqueeze(1).expand_as(moves).flatten(0, 1), moves.flatten(0, 1))
    base = base.unsqueeze(1).expand(b, m, *base.shape[1:])
    pairs = torch.cat([base, shifted.view(b, m, *shifted.shape[1:])], dim=2).flatten(0, 1)
    if channels_last:  # oneDNN / cuDNN convs prefer NHWC end to end (R's weights are NHWC too)
        pairs = pairs.contiguous(memory_format=torch.channels_last)
    return pairs, shifted


def _one_shift(cfg: DiscoveryConfig) -> DiscoveryConfig:
    # Held-out pairs are drawn one per latent; the overlap penalty (which needs two) plays no part in them.
    return dataclasses.replace(cfg, shifts_per_latent=1, overlap_weight=0.0)


def _held_out_logits(generator: Generator, a: torch.Tensor, reconstructor: nn.Module, cfg: DiscoveryConfig,
                     z: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    pairs, _ = image_pairs(generator, a, z, index, shift, generator(z), cfg.channels_last)
    return reconstructor(pairs)[0]


@torch.no_grad()
def reconstructor_accuracy(generator: Generator, direction_matrix: DirectionMatrix, reconstructor: nn.Module,
                           cfg: DiscoveryConfig, num_batches: int = 10, seed: int = 10_000) -> float:
    """Accuracy of R's direction head on fresh pairs drawn from a held-out seed."""
    reconstructor.eval()
    a, one_shift = direction_matrix.matrix(), _one_shift(cfg)
    correct = 0
    for b in range(num_batches):
        z, index, shift = sample_pairs(generator, one_shift, cfg.batch_size, step_rng(seed, 0, b), generator.device)
        correct += (_held_out_logits(generator, a, reconstructor, cfg, z, index, shift).argmax(1) == index).sum().item()
    return correct / (num_batches * cfg.batch_size)


@torch.no_grad()
def recognizability(generator: Generator, direction_matrix: DirectionMatrix, reconstructor: nn.Module,
                    cfg: DiscoveryConfig, num_latents: int = 32, seed: int = 20_000) -> torch.Tensor:
    """(K,) mean probability R gives the true direction, over ``num_latents`` held-out pairs per direction."""
    was_training = reconstructor.training
    reconstructor.eval()
    a, one_shift = direction_matrix.matrix(), _one_shift(cfg)
    rng = torch.Generator().manual_seed(seed)
    scores = torch.zeros(cfg.num_directions)
    for k in range(cfg.num_directions):
        z, _, shift = sample_pairs(generator, one_shift, num_latents, rng, generator.device)
        index = torch.full_like(shift, k, dtype=torch.long)
        logits = _held_out_logits(generator, a, reconstructor, cfg, z, index, shift)
        scores[k] = logits.float().softmax(1)[:, k].mean().cpu()
    reconstructor.train(was_training)
    return scores
