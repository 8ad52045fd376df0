"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for the critic's inputs.

Real and fake batches go through the same random transforms (drawn afresh per image) before
the critic, in its update and in the generator's; the generator gets gradients through them,
so the critic is regularized without the generator learning to draw augmented scenes.

Only transforms that leave every factor of the scenes unchanged are offered: ``translation``
(the scene shifted by up to 1/8 of its size, zero-padded) and ``cutout`` (a square of a
quarter of the image area set to zero). DiffAugment's ``color`` (brightness, saturation,
contrast) is left out on purpose: the floor, wall and object hues are factors the generator
must get right, and a critic made blind to colour shifts stops telling an off-grid hue from a
true one. Zooms are left out for the same reason (object scale is a factor).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

POLICIES = ("translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {', '.join(POLICIES)}")
    return names


def translate(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by its own integer offset of up to ``ratio`` of its size; zeros come in."""
    n, _, h, w = images.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_y, max_y + 1, (n, 1), device=images.device)
    dx = torch.randint(-max_x, max_x + 1, (n, 1), device=images.device)
    # Index into a 1-pixel zero border: every source pixel outside the image reads a zero.
    rows = (torch.arange(h, device=images.device) + dy).clamp(-1, h) + 1
    cols = (torch.arange(w, device=images.device) + dx).clamp(-1, w) + 1
    padded = F.pad(images, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # NHWC, so the gather picks whole pixels
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio`` x the image size per image, at a random place (may overhang)."""
    n, _, h, w = images.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + 1 - size_y % 2, (n, 1, 1), device=images.device) - size_y // 2
    left = torch.randint(0, w + 1 - size_x % 2, (n, 1, 1), device=images.device) - size_x // 2
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
    return images * (~inside).unsqueeze(1).to(images.dtype)


def augment(images: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    for name in policy:
        images = translate(images) if name == "translation" else cutout(images)
    return images
