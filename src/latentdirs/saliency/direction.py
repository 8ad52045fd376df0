"""Find the background-removal direction among K discovered ones, with the evidence.

Criterion (per direction k, sign, shift s; averaged over a few latents z; x = mean-channel
intensity in [0, 1] of G(z), x' of G(z + sign * s * h_k)):

- ``border_whitening``: over the image border (a band ``border`` of the side wide), how far
  each pixel moved toward white, ``(x' - x) / (1 - x)`` clipped to [-1, 1]; 1 = the border
  turned fully white, 0 = unchanged, negative = it darkened (a pixel already white in G(z)
  counts 1 if it stays white);
- ``object_change``: over the pixels that are still *not* white after the shift (the mask
  the direction would give, ``x' < threshold``), the mean |x' - x|: the object should stay as
  it was. A sample whose mask is empty (everything whitened) counts as 1, the worst value;
- ``valid``: the fraction of samples whose mask area is in [min_area, max_area].

``score = border_whitening - object_change``. A background-removal direction scores near 1;
a global brightening loses its border gain to the object change; a hue or geometry change
does not whiten the border at all. The pick is the best (k, sign, s) among candidates with
``valid >= min_valid`` (or the best overall, with a warning, if none is valid).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..directions import DirectionSet
from ..generators.base import Generator
from ..runs import atomic_write_text
from .masks import DEFAULT_AREA, DEFAULT_THRESHOLD, MaskConfig, area_filter, intensity

DEFAULT_SHIFTS = (3.0, 6.0, 9.0)


@dataclass
class Candidate:
    index: int
    sign: int
    shift: float
    border_whitening: float
    object_change: float
    valid: float
    mask_area: float

    @property
    def score(self) -> float:
        return self.border_whitening - self.object_change

    @property
    def signed_shift(self) -> float:
        return self.sign * self.shift

    def as_dict(self) -> dict:
        return {**asdict(self), "score": self.score, "signed_shift": self.signed_shift}


@dataclass
class DirectionRanking:
    """Every candidate's scores, best first, and the pick."""

    candidates: list[Candidate]
    pick: Candidate
    settings: dict = field(default_factory=dict)

    def per_direction(self) -> list[Candidate]:
        """The best (sign, shift) of each direction, best direction first."""
        best: dict[int, Candidate] = {}
        for c in self.candidates:
            if c.index not in best or _key(c, self.settings["min_valid"]) > _key(best[c.index], self.settings["min_valid"]):
                best[c.index] = c
        return sorted(best.values(), key=lambda c: _key(c, self.settings["min_valid"]), reverse=True)

    def table(self, top: int | None = 10) -> str:
        """A plain-text table of the best (sign, shift) per direction."""
        rows = self.per_direction()[:top]
        lines = ["rank  dir  sign  shift  score   border_white  object_change  valid  mask_area"]
        for r, c in enumerate(rows):
            lines.append(f"{r:4d}  {c.index:3d}  {'+' if c.sign > 0 else '-':>4s}  {c.shift:5.1f}  {c.score:+.3f}"
                         f"  {c.border_whitening:+12.3f}  {c.object_change:13.3f}  {c.valid:5.2f}  {c.mask_area:9.3f}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"pick": self.pick.as_dict(), "settings": self.settings,
                "per_direction": [c.as_dict() for c in self.per_direction()],
                "candidates": [c.as_dict() for c in self.candidates]}

    def save(self, out_dir: str | Path, generator: Generator | None = None, directions: DirectionSet | None = None,
             top: int = 6, num_latents: int = 4) -> dict[str, Path]:
        """``ranking.json``, ``ranking.txt`` and (given the generator) ``ranking.png``: charts of the top directions."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": out_dir / "ranking.json", "table": out_dir / "ranking.txt"}
        atomic_write_text(paths["json"], json.dumps(self.to_json(), indent=1))
        atomic_write_text(paths["table"], self.table(None) + "\n")
        if generator is not None and directions is not None:
            paths["chart"] = out_dir / "ranking.png"
            ranking_chart(generator, directions, self, num_latents=num_latents, top=top).save(paths["chart"])
        return paths


def _key(c: Candidate, min_valid: float) -> tuple:
    return (c.valid >= min_valid, c.score)


def _border_band(height: int, width: int, border: float) -> torch.Tensor:
    band = max(1, round(border * min(height, width)))
    inside = torch.zeros(height, width, dtype=torch.bool)
    inside[band:height - band, band:width - band] = True
    return ~inside


@torch.no_grad()
def rank_directions(generator: Generator, directions: DirectionSet | torch.Tensor, num_latents: int = 16,
                    shifts=DEFAULT_SHIFTS, seed: int = 0, threshold: float = DEFAULT_THRESHOLD,
                    min_area: float = DEFAULT_AREA[0], max_area: float = DEFAULT_AREA[1], border: float = 0.125,
                    min_valid: float = 0.5, indices: list[int] | None = None, batch_size: int = 64,
                    progress: bool = False) -> DirectionRanking:
    """Score every direction, both signs, each shift in ``shifts``; see the module docstring."""
    matrix = directions.matrix if isinstance(directions, DirectionSet) else torch.as_tensor(directions)
    if matrix.dim() != 2:
        raise ValueError(f"directions must be a (latent_dim, K) matrix or a DirectionSet, got shape "
                         f"{tuple(matrix.shape)}")
    indices = list(range(matrix.shape[1])) if indices is None else list(indices)
    # Checked before any image is drawn: each of these failed later (an IndexError, NaN scores, a silent 1-pixel
    # or whole-image border, every candidate invalid), or ranked nothing but unmoved images.
    MaskConfig(threshold=threshold, min_area=min_area, max_area=max_area)  # its own checks: threshold, area range
    if not indices or any(not 0 <= k < matrix.shape[1] for k in indices):
        raise ValueError(f"indices must name directions 0 to {matrix.shape[1] - 1}, got {indices}")
    shifts = list(shifts)
    if not shifts or not all(math.isfinite(s) for s in shifts) or not any(shifts):
        raise ValueError(f"shifts must be finite, at least one and not all 0 (both signs are tried), got {shifts}")
    if num_latents < 1 or batch_size < 1:
        raise ValueError(f"num_latents and batch_size must be at least 1, got {num_latents} and {batch_size}")
    if not 0 <= border <= 0.5:
        raise ValueError(f"border is a fraction of the side in [0, 0.5], got {border}")
    device = generator.device
    z = generator.sample_latents(num_latents, generator=torch.Generator().manual_seed(seed), device="cpu").to(device)
    base = torch.cat([generator(chunk) for chunk in z.split(batch_size)])
    x0 = intensity(base)
    ring = _border_band(*x0.shape[1:], border).to(device)
    candidates = []
    from tqdm.auto import tqdm
    for k in tqdm(indices, disable=not progress, desc="rank directions", dynamic_ncols=True):
        h = matrix[:, k].to(device, z.dtype)
        for sign in (1, -1):
            for s in shifts:
                shifted = torch.cat([generator.shifted(chunk, sign * float(s) * h) for chunk in z.split(batch_size)])
                x1 = intensity(shifted)
                toward_white = ((x1 - x0) / (1 - x0).clamp_min(1e-3)).clamp(-1, 1)
                # a pixel white already (the latent itself had a faded background) counts as whitened if it stays white
                toward_white = torch.where((x0 > 0.99) & (x1 >= threshold), torch.ones_like(x1), toward_white)
                border_gain = toward_white[:, ring].mean(1)
                mask = x1 < threshold
                area = mask.flatten(1).float().mean(1)
                change = ((x1 - x0).abs() * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)
                change = torch.where(area > 0, change, torch.ones_like(change))
                valid = area_filter(mask, min_area, max_area).float()
                candidates.append(Candidate(k, sign, float(s), border_gain.mean().item(), change.mean().item(),
                                            valid.mean().item(), area.mean().item()))
    candidates.sort(key=lambda c: _key(c, min_valid), reverse=True)
    pick = candidates[0]
    if pick.valid < min_valid:
        warnings.warn(f"no direction gives masks with area in [{min_area}, {max_area}] for at least {min_valid:.0%} "
                      f"of the latents; the best by score is #{pick.index} (valid {pick.valid:.0%})")
    settings = {"num_latents": num_latents, "shifts": [float(s) for s in shifts], "seed": seed, "threshold": threshold,
                "min_area": min_area, "max_area": max_area, "border": border, "min_valid": min_valid,
                "criterion": "score = border_whitening - object_change (latentdirs.saliency.direction)"}
    return DirectionRanking(candidates, pick, settings)


def ranking_chart(generator: Generator, directions: DirectionSet | torch.Tensor, ranking: DirectionRanking,
                  num_latents: int = 4, top: int = 6):
    """One block per top direction: G(z) | G(z + s h) | mask, for a few latents; labelled with its score."""
    from PIL import Image, ImageDraw

    from ..render import to_pil
    matrix = directions.matrix if isinstance(directions, DirectionSet) else torch.as_tensor(directions)
    rows = ranking.per_direction()[:top]
    z = generator.sample_latents(num_latents, generator=torch.Generator().manual_seed(ranking.settings["seed"] + 1),
                                 device="cpu").to(generator.device)
    with torch.no_grad():
        base = to_pil(generator(z))
    size = base[0].width
    pad, label_h = 2, 14
    block_w = 3 * (size + pad) + 6
    sheet = Image.new("RGB", (len(rows) * block_w + pad, label_h + num_latents * (size + pad) + pad + 12), "white")
    draw = ImageDraw.Draw(sheet)
    for b, c in enumerate(rows):
        h = matrix[:, c.index].to(z)
        with torch.no_grad():
            shifted = generator.shifted(z, c.signed_shift * h)
        mask = (intensity(shifted) < ranking.settings["threshold"]).float() * 2 - 1
        shifted_pil, mask_pil = to_pil(shifted), to_pil(mask.unsqueeze(1))
        x0 = b * block_w + pad
        draw.text((x0, 1), f"#{c.index} {c.signed_shift:+g} score {c.score:.2f}", fill=(200, 0, 0) if b == 0 else (0, 0, 0))
        for i in range(num_latents):
            y = label_h + i * (size + pad)
            for j, im in enumerate((base[i], shifted_pil[i], mask_pil[i])):
                sheet.paste(im, (x0 + j * (size + pad), y))
    draw.text((pad, sheet.height - 12), "per block: G(z) | G(z + s h) | mask; blocks ranked by score, pick first",
              fill=(90, 90, 90))
    return sheet
