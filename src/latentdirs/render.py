"""Pictures of directions: charts of G(z + s h), overview sheets, the evolution figure.

A chart has one row per latent and one column per shift s (default -8..8, 9 steps); the
unshifted column (s = 0) is framed so the eye finds the starting image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .directions import DirectionSet
from .generators.base import Generator, check_same_space
from .runs import atomic_path

DEFAULT_SHIFTS = tuple(np.linspace(-8, 8, 9).tolist())
MARK = (230, 60, 40)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1], NCHW -> uint8 pixels, NHWC (the one converter of the package)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu().permute(0, 2, 3, 1).numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images in [-1, 1], NCHW (1 or 3 channels) -> PIL RGB images."""
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).convert("RGB") for a in to_uint8(images)]


def grid(rows: list[list[Image.Image]], pad: int = 2, marked_column: int | None = None,
         row_labels: list[str] | None = None, col_labels: list[str] | None = None, scale: int = 1) -> Image.Image:
    """Tile images into a grid; optionally frame one column and label rows/columns."""
    h, w = rows[0][0].height * scale, rows[0][0].width * scale
    left = 58 if row_labels else 0
    top = 14 if col_labels else 0
    ncols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (left + ncols * (w + pad) + pad, top + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            x, y = left + pad + j * (w + pad), top + pad + i * (h + pad)
            sheet.paste(im.resize((w, h), Image.NEAREST) if scale != 1 else im, (x, y))
            if j == marked_column:
                draw.rectangle([x - 1, y - 1, x + w, y + h], outline=MARK, width=2)
        if row_labels:
            draw.text((3, top + pad + i * (h + pad) + h // 2 - 5), row_labels[i], fill=(0, 0, 0))
    if col_labels:
        for j, label in enumerate(col_labels):
            draw.text((left + pad + j * (w + pad) + w // 2 - 3 * len(label), 1), label, fill=(0, 0, 0))
    return sheet


def _shift_labels(shifts) -> list[str]:
    return [f"{s:+g}" if s else "0" for s in shifts]


def _zero_column(shifts) -> int | None:
    zero = [j for j, s in enumerate(shifts) if abs(s) < 1e-9]
    return zero[0] if zero else None


@torch.no_grad()
def shifted_images(generator: Generator, latents: torch.Tensor, direction: torch.Tensor,
                   shifts=DEFAULT_SHIFTS) -> torch.Tensor:
    """(len(latents), len(shifts), C, H, W): G(z + s h) for every latent and shift."""
    latents = latents.to(generator.device)
    h = direction.to(latents)
    batch = latents.repeat(len(shifts), 1)
    images = generator.shifted(batch, torch.cat([(s * h).expand_as(latents) for s in shifts]))
    return images.view(len(shifts), len(latents), *images.shape[1:]).transpose(0, 1)


def sample_latents(generator: Generator, num: int, seed: int = 0) -> torch.Tensor:
    return generator.sample_latents(num, generator=torch.Generator().manual_seed(seed), device=generator.device)


def chart(generator: Generator, directions: DirectionSet, index: int, latents: torch.Tensor | None = None,
          shifts=DEFAULT_SHIFTS, num_latents: int = 5, seed: int = 0, scale: int = 1) -> Image.Image:
    """Rows = latents, columns = shifts along direction ``index``; the s = 0 column framed."""
    check_same_space(generator, directions.meta.get("generator"))
    if latents is None:
        latents = sample_latents(generator, num_latents, seed)
    images = shifted_images(generator, latents, directions[index], shifts)
    rows = [to_pil(row) for row in images]
    return grid(rows, marked_column=_zero_column(shifts), col_labels=_shift_labels(shifts), scale=scale)


def overview(generator: Generator, directions: DirectionSet, latent: torch.Tensor | None = None,
             shifts=DEFAULT_SHIFTS, indices: list[int] | None = None, seed: int = 0) -> Image.Image:
    """One row per direction (one latent), the whole set on one sheet."""
    check_same_space(generator, directions.meta.get("generator"))
    latent = sample_latents(generator, 1, seed) if latent is None else latent.view(1, -1)
    indices = list(range(directions.num_directions)) if indices is None else indices
    rows, labels = [], []
    for k in indices:
        rows.append(to_pil(shifted_images(generator, latent, directions[k], shifts)[0]))
        score = "" if directions.scores is None else f" {directions.scores[k]:.2g}"
        labels.append(f"#{k}{score}")
    return grid(rows, marked_column=_zero_column(shifts), row_labels=labels, col_labels=_shift_labels(shifts))


def evolution(generator: Generator, snapshots: dict[int, torch.Tensor], index: int,
              latent: torch.Tensor | None = None, shifts=DEFAULT_SHIFTS, seed: int = 0) -> Image.Image:
    """How direction ``index`` changed over training: one row per snapshot of A (step 0 first)."""
    latent = sample_latents(generator, 1, seed) if latent is None else latent.view(1, -1)
    steps = sorted(snapshots)
    rows = [to_pil(shifted_images(generator, latent, snapshots[s][:, index], shifts)[0]) for s in steps]
    return grid(rows, marked_column=_zero_column(shifts), row_labels=[f"step {s}" for s in steps],
                col_labels=_shift_labels(shifts))


def save_image(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def render_run(generator: Generator, directions: DirectionSet, out_dir: str | Path, indices: list[int] | None = None,
               num_latents: int = 5, shifts=DEFAULT_SHIFTS, seed: int = 0,
               snapshots: dict[int, torch.Tensor] | None = None) -> list[Path]:
    """Write ``overview.png``, ``direction_KKK.png`` charts (and ``evolution_KKK.png``) into ``out_dir``."""
    out_dir = Path(out_dir)
    if indices is None:  # the strongest directions first when there is a ranking
        order = directions.sorted().meta.get("selected_from") if directions.scores is not None else None
        indices = (order or list(range(directions.num_directions)))[:8]
    bad = [k for k in indices if not 0 <= k < directions.num_directions]
    if bad:
        raise IndexError(f"direction indices {bad} out of range: the set has {directions.num_directions}")
    latents = sample_latents(generator, num_latents, seed)
    written = [save_image(overview(generator, directions, latents[:1], shifts), out_dir / "overview.png")]
    for k in indices:
        written.append(save_image(chart(generator, directions, k, latents, shifts), out_dir / f"direction_{k:03d}.png"))
        if snapshots:
            written.append(save_image(evolution(generator, snapshots, k, latents[:1], shifts),
                                      out_dir / f"evolution_{k:03d}.png"))
    return written
