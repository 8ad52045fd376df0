"""Edit a real image along a discovered direction: invert it, then move its latent.

    >>> G = load_generator("shapes3d")
    >>> directions = DirectionSet.load("runs/00003-discover-shapes3d-k32-unit")
    >>> result = edit_image(G, load_image("scene.png", G), directions, index=3, shifts=[-4, -2, 0, 2, 4])
    >>> strip_image(result).save("strip.png")   # input | reconstruction | edits

Every move goes through ``G.shifted(latent, shift)``, so W+ directions that act on a layer
range edit only those layers, whether the image was inverted to one w or to per-layer styles
(``per_layer=True``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .configs import is_integer
from .directions import DirectionSet
from .generators.base import Generator
from .inversion import Encoder, InversionError, InversionResult, invert


def check_shifts(shifts) -> list[float]:
    """``shifts`` as a list of finite floats, or an InversionError: a NaN or inf shift gave NaN images, a
    generator of shifts was used up by the edits and left the result without its shifts."""
    if isinstance(shifts, (str, bytes)):
        raise InversionError(f"shifts must be a list of numbers, got the string {shifts!r} (parse_shift_range reads "
                             "text)"[:300])
    try:
        values = [float(s) for s in shifts]
    except (TypeError, ValueError, RuntimeError):
        raise InversionError(f"shifts must be a list of numbers, got {shifts!r}"[:300]) from None
    if not values:
        raise InversionError("give at least one shift")
    bad = next((s for s in values if not math.isfinite(s)), None)
    if bad is not None:
        raise InversionError(f"shifts must be finite numbers, got {bad}")
    return values


def check_index(index, directions: DirectionSet) -> int:
    """The direction index as an int in range (negative counts from the end), or an InversionError."""
    if not is_integer(index):  # True or 1.5 failed deep in torch
        raise InversionError(f"the direction index must be an integer, got {index!r}")
    if not -directions.num_directions <= index < directions.num_directions:
        raise InversionError(f"direction {index} out of range: the set has {directions.num_directions}")
    return int(index)


@torch.no_grad()
def edit_strip(generator: Generator, latents: torch.Tensor, directions: DirectionSet, index: int,
               shifts: list[float]) -> torch.Tensor:
    """Images of each latent moved by s * h_index for s in ``shifts``: (N, len(shifts), C, H, W) in [-1, 1]."""
    if directions.latent_dim != generator.latent_dim:
        raise InversionError(f"the direction set has latent size {directions.latent_dim}, "
                             f"{generator.name} has {generator.latent_dim}: they come from different generators")
    shifts = check_shifts(shifts)
    direction = directions[check_index(index, directions)].to(latents)
    columns = [generator.shifted(latents, float(s) * direction.expand(len(latents), -1)).clamp(-1, 1) for s in shifts]
    return torch.stack(columns, dim=1)


@dataclass
class EditResult:
    inputs: torch.Tensor        # (N, C, H, W) the images given
    inversion: InversionResult  # latents, reconstructions, pixel errors
    edited: torch.Tensor        # (N, S, C, H, W)
    shifts: list[float]
    index: int


def edit_image(generator: Generator, images: torch.Tensor, directions: DirectionSet, index: int,
               shifts: list[float], encoder: Encoder | None = None, **invert_options) -> EditResult:
    """Invert ``images`` (N, C, H, W in [-1, 1]) and edit each along direction ``index``."""
    shifts = check_shifts(shifts)  # before the inversion, which is the slow part
    index = check_index(index, directions)
    inversion = invert(generator, images, encoder=encoder, **invert_options)
    edited = edit_strip(generator, inversion.latents, directions, index, shifts)
    return EditResult(images, inversion, edited, shifts, index)


def strip_image(result: EditResult, row: int = 0, scale: int = 1):
    """One image's strip as a PIL image: input | reconstruction | edits, shifts labelled."""
    from .render import grid, to_pil
    pictures = to_pil(torch.cat([result.inputs[row:row + 1].cpu(), result.inversion.images[row:row + 1].cpu(),
                                 result.edited[row].cpu()]))
    labels = ["input", "inverted"] + [f"{s:+g}" if s else "0" for s in result.shifts]
    zero = result.shifts.index(0.0) + 2 if 0.0 in result.shifts else None
    return grid([pictures], col_labels=labels, marked_column=zero, scale=scale)


def parse_shift_range(text: str, count: int = 9) -> list[float]:
    """``'-4..4'`` -> ``count`` evenly spaced shifts; ``'-4,-2,0,2,4'`` -> those shifts."""
    text = text.strip()
    try:
        if ".." in text:
            low, high = (float(part) for part in text.split("..", 1))
            if count < 1:
                raise ValueError
            values = [low] if count == 1 else [low + (high - low) * i / (count - 1) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InversionError(f"shifts must look like -4..4 (with a count) or -4,-2,0,2,4; got {text!r}") from None
    return check_shifts(values)
