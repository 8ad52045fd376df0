"""Pictures of directions: charts of G(z + s h), overview sheets, the evolution figure.

A chart has one row per latent and one column per shift s; the unshifted column (s = 0) is
framed so the eye finds the starting image. Shifts are either one fixed sequence (default -8..8,
9 steps, the paper's charts in Z) or, with ``shifts="manifold"``, chosen per direction from the
latent distribution: up to three standard deviations of the sampled latents along that direction
(:func:`manifold_shifts`), so a W direction is not drawn far outside the latents the generator saw.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .directions import DirectionSet
from .generators.base import Generator
from .runs import atomic_path

DEFAULT_SHIFTS = tuple(np.linspace(-8, 8, 9).tolist())
MANIFOLD_SIGMAS = 3.0
"""Charts drawn with shifts="manifold" reach this many standard deviations of the latents along a direction."""
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
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = max(58, 8 + int(max(measure.textlength(label) for label in row_labels))) if row_labels else 0
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
    return [f"{s:+.2g}" if abs(s) > 1e-9 else "0" for s in shifts]


def _per_row(shifts) -> bool:
    """Whether ``shifts`` holds one sequence per direction rather than one for all."""
    return not isinstance(shifts, str) and len(shifts) > 0 and hasattr(shifts[0], "__len__")


@torch.no_grad()
def latent_spread(generator: Generator, directions: DirectionSet, num_latents: int = 1000, seed: int = 0) -> torch.Tensor:
    """(K,) standard deviation of sampled latents along each direction (projected on it, normalized to unit length)."""
    latents = sample_latents(generator, num_latents, seed).float().cpu()
    if latents.dim() > 2:  # per-layer latents: the spread of the first layer's
        latents = latents[:, 0]
    matrix = directions.matrix.float().cpu()
    return (latents @ (matrix / matrix.norm(dim=0, keepdim=True).clamp_min(1e-12))).std(0)


def manifold_shifts(generator: Generator, directions: DirectionSet, sigmas: float = MANIFOLD_SIGMAS, steps: int = 7,
                    num_latents: int = 1000, seed: int = 0) -> list[tuple[float, ...]]:
    """Per direction, ``steps`` shifts from -sigmas to +sigmas standard deviations of the latents along it.

    A shift of s along h moves a latent by s |h|; the latents the generator was trained on spread
    std(z . h / |h|) along h, so +-3 of those keep 99.7% of a Gaussian's mass on either side. In Z
    (unit Gaussian) that is +-3 for a unit direction; in a W space it is what W's spread allows.
    """
    if steps < 1 or num_latents < 2:  # no columns, or the spread of one latent is NaN
        raise ValueError(f"manifold shifts need steps >= 1 and num_latents >= 2, got steps={steps}, "
                         f"num_latents={num_latents}")
    fractions = np.linspace(-sigmas, sigmas, steps)
    spread = (latent_spread(generator, directions, num_latents, seed) / directions.matrix.float().cpu().norm(dim=0)
              .clamp_min(1e-12))
    return [tuple((fractions * float(sd)).tolist()) for sd in spread]


def sigma_labels(sigmas: float = MANIFOLD_SIGMAS, steps: int = 7) -> list[str]:
    """Column labels of a manifold chart: the shift in standard deviations of the latents ("-3sd" ... "+3sd")."""
    return [f"{s:+g}sd" if abs(s) > 1e-9 else "0" for s in np.linspace(-sigmas, sigmas, steps)]


def resolve_shifts(generator: Generator, directions: DirectionSet, shifts, seed: int = 0):
    """``shifts`` as given (one sequence, or one per direction), or "manifold" resolved per direction."""
    if isinstance(shifts, str):
        if shifts != "manifold":
            raise ValueError(f"shifts must be a sequence of numbers, one per direction, or 'manifold'; got {shifts!r}")
        return manifold_shifts(generator, directions, seed=seed)
    if _per_row(shifts) and len(shifts) != directions.num_directions:  # else an IndexError at the row it lacks
        raise ValueError(f"{len(shifts)} sequences of shifts for {directions.num_directions} directions: give one "
                         "per direction, one sequence for all, or 'manifold'")
    return shifts


def _zero_column(shifts) -> int | None:
    zero = [j for j, s in enumerate(shifts) if abs(s) < 1e-9]
    return zero[0] if zero else None


@torch.no_grad()
def shifted_images(generator: Generator, latents: torch.Tensor, direction: torch.Tensor,
                   shifts=DEFAULT_SHIFTS) -> torch.Tensor:
    """(len(latents), len(shifts), C, H, W): G(z + s h) for every latent and shift."""
    if len(shifts) == 0 or not all(math.isfinite(s) for s in shifts):  # every chart's images pass here
        raise ValueError(f"shifts must be one or more finite numbers, got {list(shifts)}")
    latents = latents.to(generator.device)
    h = direction.to(latents)
    batch = latents.repeat(len(shifts), 1)
    images = generator.shifted(batch, torch.cat([(s * h).expand_as(latents) for s in shifts]))
    return images.view(len(shifts), len(latents), *images.shape[1:]).transpose(0, 1)


def sample_latents(generator: Generator, num: int, seed: int = 0) -> torch.Tensor:
    if num < 1:  # a chart of no rows fails deep in the generator or the grid
        raise ValueError(f"need at least one latent to draw, got {num}")
    return generator.sample_latents(num, generator=torch.Generator().manual_seed(seed), device=generator.device)


def chart(generator: Generator, directions: DirectionSet, index: int, latents: torch.Tensor | None = None,
          shifts=DEFAULT_SHIFTS, num_latents: int = 5, seed: int = 0, scale: int = 1) -> Image.Image:
    """Rows = latents, columns = shifts along direction ``index``; the s = 0 column framed."""
    directions.check_fits(generator)  # the space and the latent size: another d fails in the generator unnamed
    if latents is None:
        latents = sample_latents(generator, num_latents, seed)
    shifts = resolve_shifts(generator, directions, shifts, seed)
    shifts = shifts[index] if _per_row(shifts) else shifts
    images = shifted_images(generator, latents, directions[index], shifts)
    rows = [to_pil(row) for row in images]
    return grid(rows, marked_column=_zero_column(shifts), col_labels=_shift_labels(shifts), scale=scale)


def overview(generator: Generator, directions: DirectionSet, latent: torch.Tensor | None = None,
             shifts=DEFAULT_SHIFTS, indices: list[int] | None = None, seed: int = 0,
             labels: dict[int, str] | list[str] | None = None, col_labels: list[str] | None = None) -> Image.Image:
    """One row per direction (one latent), the whole set on one sheet.

    Rows are labelled "#k" and ``labels[k]`` (e.g. a name: "#3 wall hue 0.91"), else the
    image-change score. With per-direction shifts (``"manifold"``) the columns are in standard
    deviations of the latents along each direction, the same for every row.
    """
    directions.check_fits(generator)
    latent = sample_latents(generator, 1, seed) if latent is None else latent.view(1, -1)
    indices = list(range(directions.num_directions)) if indices is None else indices
    if not indices:
        raise ValueError("an overview needs at least one direction index")
    if labels is not None:
        missing = [k for k in indices
                   if (k not in labels if isinstance(labels, dict) else not -len(labels) <= k < len(labels))]
        if missing:  # else a bare IndexError / KeyError
            raise ValueError(f"labels lack directions {missing}: give one label per direction drawn")
    manifold = isinstance(shifts, str)
    shifts = resolve_shifts(generator, directions, shifts, seed)
    per_row = _per_row(shifts)
    rows, row_labels = [], []
    for k in indices:
        row_shifts = shifts[k] if per_row else shifts
        rows.append(to_pil(shifted_images(generator, latent, directions[k], row_shifts)[0]))
        if labels is not None:
            row_labels.append(f"#{k} {labels[k]}")
        else:
            row_labels.append(f"#{k}" + ("" if directions.scores is None else f" {directions.scores[k]:.2g}"))
    first = shifts[indices[0]] if per_row else shifts
    if col_labels is None:  # per-row shifts differ in value: label the columns by position
        col_labels = sigma_labels(steps=len(first)) if manifold else _shift_labels(first) if not per_row else \
            [f"{j - len(first) // 2:+d}" if j != len(first) // 2 else "0" for j in range(len(first))]
    return grid(rows, marked_column=_zero_column(first), row_labels=row_labels, col_labels=col_labels)


def evolution(generator: Generator, snapshots: dict[int, torch.Tensor], index: int,
              latent: torch.Tensor | None = None, shifts=DEFAULT_SHIFTS, seed: int = 0) -> Image.Image:
    """How direction ``index`` changed over training: one row per snapshot of A (step 0 first)."""
    latent = sample_latents(generator, 1, seed) if latent is None else latent.view(1, -1)
    if isinstance(shifts, str):
        raise ValueError("evolution takes the shifts of one direction (render_run resolves 'manifold')")
    steps = sorted(snapshots)
    if not steps:
        raise ValueError("evolution needs at least one snapshot of A ({step: (latent_dim, K) matrix})")
    for s in steps:  # a snapshot of another run: name it, not a torch shape error
        shape = tuple(snapshots[s].shape)
        if len(shape) != 2 or shape[0] != generator.latent_dim or not -shape[1] <= index < shape[1]:
            raise ValueError(f"snapshot of step {s} is {shape}, it has no direction {index} of "
                             f"{generator.latent_dim}-d latents: the snapshots come from another run")
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
               snapshots: dict[int, torch.Tensor] | None = None, labels: dict[int, str] | list[str] | None = None,
               ) -> list[Path]:
    """Write ``overview.png``, ``direction_KKK.png`` charts (and ``evolution_KKK.png``) into ``out_dir``.

    ``shifts``: one sequence for every direction, one per direction, or "manifold" (per direction,
    :func:`manifold_shifts`); ``labels``: row names for the overview (e.g. from ``name_directions``).
    """
    out_dir = Path(out_dir)
    if indices is None:  # the strongest directions first when there is a ranking
        order = directions.sorted().meta.get("selected_from") if directions.scores is not None else None
        indices = (order or list(range(directions.num_directions)))[:8]
    bad = [k for k in indices if not 0 <= k < directions.num_directions]
    if bad:
        raise IndexError(f"direction indices {bad} out of range: the set has {directions.num_directions}")
    latents = sample_latents(generator, num_latents, seed)
    manifold = isinstance(shifts, str)
    shifts = resolve_shifts(generator, directions, shifts, seed)
    columns = sigma_labels(steps=len(shifts[0])) if manifold else None
    sheet = overview(generator, directions, latents[:1], shifts, labels=labels, col_labels=columns)
    written = [save_image(sheet, out_dir / "overview.png")]
    for k in indices:
        row_shifts = shifts[k] if _per_row(shifts) else shifts
        written.append(save_image(chart(generator, directions, k, latents, row_shifts), out_dir / f"direction_{k:03d}.png"))
        if snapshots:
            written.append(save_image(evolution(generator, snapshots, k, latents[:1], row_shifts),
                                      out_dir / f"evolution_{k:03d}.png"))
    return written
