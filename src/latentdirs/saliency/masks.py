"""Synthetic saliency masks from a background-removal direction (Voynov & Babenko 2020, sec. 5).

For a latent z, a direction h and a shift s the generator shows the same object with a
white background at z + s h, so the object is whatever is not white there:

    mask = mean_over_channels(G(z + s h)) < threshold       (intensities in [0, 1], 1 = object)

and the training pair is (G(z), mask). Samples whose mask covers too little or too much of
the image (the shift failed, or whitened the object too) are dropped.

    >>> stream = stream_pairs(G, h, shift=6.0, batch_size=32, seed=0)
    >>> images, masks = next(stream)        # images in [-1, 1] NCHW, masks float {0, 1} N1HW
    >>> write_dataset(G, h, 6.0, "synthetic/", num=2000)   # images/00000.png + masks/00000.png
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..generators.base import Generator
from ..render import to_uint8
from ..runs import atomic_write_text

DEFAULT_THRESHOLD = 0.95
DEFAULT_AREA = (0.05, 0.5)


@dataclass
class MaskConfig:
    """How masks are made from a generator and its background-removal direction."""

    shift: float = 6.0
    """s: how far along the direction the mask image is taken (negative = the other sign)."""
    threshold: float = DEFAULT_THRESHOLD
    """theta: a pixel is object when its mean intensity in [0, 1] is below this."""
    min_area: float = DEFAULT_AREA[0]
    """Keep a sample only if its mask covers at least this fraction of the image ..."""
    max_area: float = DEFAULT_AREA[1]
    """... and at most this fraction."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.shift):  # a NaN shift gave NaN images: 50 batches, then "no sample passed"
            raise ValueError(f"shift must be a finite number, got {self.shift}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0 <= self.min_area < self.max_area <= 1:
            raise ValueError(f"need 0 <= min_area < max_area <= 1, got {self.min_area} and {self.max_area}")


def intensity(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] NCHW -> mean over channels in [0, 1], shape (N, H, W)."""
    return ((images.float().clamp(-1, 1) + 1) / 2).mean(dim=1)


def threshold_masks(images: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Boolean object masks (N, H, W) of background-removed images in [-1, 1]: not-white = object."""
    return intensity(images) < threshold


def mask_areas(masks: torch.Tensor) -> torch.Tensor:
    """Fraction of the image each mask covers, shape (N,)."""
    return masks.flatten(1).float().mean(dim=1)


def area_filter(masks: torch.Tensor, min_area: float = DEFAULT_AREA[0], max_area: float = DEFAULT_AREA[1]) -> torch.Tensor:
    """Which masks to keep (N,) bool: area within [min_area, max_area]."""
    area = mask_areas(masks)
    return (area >= min_area) & (area <= max_area)


def restrict_classes(generator: Generator, classes: list[int] | None) -> Generator:
    """A class-conditional generator that samples only ``classes`` (None: unchanged).

    Goes through the protocol's ``with_classes(classes)`` hook, which class-conditional adapters
    (BigGAN, conditional NVlabs pickles) implement; any other generator says it is not class-conditional.
    """
    if classes is None:
        return generator
    return generator.with_classes([int(c) for c in classes])


@torch.no_grad()
def synthesize(generator: Generator, direction: torch.Tensor, latents: torch.Tensor, config: MaskConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images G(z) in [-1, 1], masks float N1HW, keep (N,) bool) for the given latents, no filtering."""
    h = direction.to(latents.device, latents.dtype).flatten()
    images = generator(latents)
    masks = threshold_masks(generator.shifted(latents, config.shift * h), config.threshold)
    keep = area_filter(masks, config.min_area, config.max_area)
    return images, masks.unsqueeze(1).float(), keep


def stream_pairs(generator: Generator, direction: torch.Tensor, shift: float = 6.0, batch_size: int = 32,
                 seed: int = 0, threshold: float = DEFAULT_THRESHOLD, min_area: float = DEFAULT_AREA[0],
                 max_area: float = DEFAULT_AREA[1], max_rejected_batches: int = 50,
                 stats: dict | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (images, masks) batches of exactly ``batch_size`` kept samples, for training directly.

    ``stats`` (a dict, optional) is updated with ``drawn`` and ``kept`` counts, so the caller
    can report the acceptance rate of the area filter.
    """
    config = MaskConfig(shift, threshold, min_area, max_area)
    if batch_size < 1:  # 0 yielded empty batches forever (write_dataset never finished)
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = torch.Generator().manual_seed(seed)
    stats = {} if stats is None else stats
    stats.setdefault("drawn", 0)
    stats.setdefault("kept", 0)
    pending_images: list[torch.Tensor] = []
    pending_masks: list[torch.Tensor] = []
    have, empty_batches = 0, 0
    while True:
        z = generator.sample_latents(batch_size, generator=rng, device="cpu").to(generator.device)
        images, masks, keep = synthesize(generator, direction, z, config)
        stats["drawn"] += batch_size
        stats["kept"] += int(keep.sum())
        empty_batches = 0 if keep.any() else empty_batches + 1
        if empty_batches >= max_rejected_batches:
            raise ValueError(f"no sample passed the area filter [{min_area}, {max_area}] in {empty_batches} batches: "
                             "the direction, its sign or the shift is probably wrong (try `latentdirs saliency "
                             "find-direction`), or relax --min-area/--max-area")
        pending_images.append(images[keep].cpu())
        pending_masks.append(masks[keep].cpu())
        have += int(keep.sum())
        while have >= batch_size:
            all_images, all_masks = torch.cat(pending_images), torch.cat(pending_masks)
            yield all_images[:batch_size], all_masks[:batch_size]
            pending_images, pending_masks = [all_images[batch_size:]], [all_masks[batch_size:]]
            have -= batch_size


# -- image/mask PNG pairs on disk ------------------------------------------------------
IMAGE_DIR, MASK_DIR = "images", "masks"
MASK_DIR_CANDIDATES = ("masks", "ground_truth_mask", "gt", "GT")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC; grey images lose the channel axis, as PIL wants them."""
    x = to_uint8(images)
    return x[..., 0] if x.shape[-1] == 1 else x


def write_dataset(generator: Generator, direction: torch.Tensor, shift: float, out_dir: str | Path, num: int,
                  seed: int = 0, batch_size: int = 32, threshold: float = DEFAULT_THRESHOLD,
                  min_area: float = DEFAULT_AREA[0], max_area: float = DEFAULT_AREA[1], progress: bool = True,
                  meta: dict | None = None) -> dict:
    """Write ``num`` kept pairs as ``out_dir/images/NNNNN.png`` + ``out_dir/masks/NNNNN.png`` (mask 0/255).

    Also writes ``out_dir/dataset.json`` (settings, acceptance rate, mean mask area); returns it.
    """
    out_dir = Path(out_dir)
    stats: dict = {}
    stream = stream_pairs(generator, direction, shift, batch_size, seed, threshold, min_area, max_area, stats=stats)
    written, areas = 0, []
    with tqdm(total=num, disable=not progress, desc="make-data", dynamic_ncols=True) as bar:
        while written < num:
            images, masks = next(stream)
            take = min(num - written, len(images))
            pixels = images_to_uint8(images[:take])
            for i in range(take):
                name = f"{written + i:05d}.png"
                save_png(pixels[i], out_dir / IMAGE_DIR / name)
                save_png((masks[i, 0].numpy() * 255).astype(np.uint8), out_dir / MASK_DIR / name)
            areas.extend(mask_areas(masks[:take, 0]).tolist())
            written += take
            bar.update(take)
    info = {"num_pairs": written, "config": asdict(MaskConfig(shift, threshold, min_area, max_area)), "seed": seed,
            "generator": generator.describe(), "drawn": stats["drawn"], "kept": stats["kept"],
            "acceptance_rate": stats["kept"] / max(stats["drawn"], 1), "mean_mask_area": float(np.mean(areas)),
            **(meta or {})}
    atomic_write_text(out_dir / "dataset.json", json.dumps(info, indent=1, default=str))
    return info


def find_pairs(folder: str | Path, images_subdir: str = IMAGE_DIR, masks_subdir: str | None = None
               ) -> list[tuple[Path, Path]]:
    """(image, mask) paths matched by file stem: ``folder/images/x.jpg`` with ``folder/masks/x.png``.

    The mask folder defaults to the first of masks/, ground_truth_mask/ (ECSSD), gt/, GT/ that exists.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of image/mask pairs: {folder}")
    image_dir = folder / images_subdir
    if masks_subdir is None:
        found = [folder / c for c in MASK_DIR_CANDIDATES if (folder / c).is_dir()]
        if not found:
            raise FileNotFoundError(f"{folder} has no mask folder (looked for {', '.join(MASK_DIR_CANDIDATES)})")
        mask_dir = found[0]
    else:
        mask_dir = folder / masks_subdir
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise FileNotFoundError(f"expected {image_dir} and {mask_dir}: a folder of image/mask pairs matched by name")
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = [(p, masks[p.stem]) for p in sorted(image_dir.iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks]
    if not pairs:
        raise FileNotFoundError(f"no image in {image_dir} has a mask of the same name in {mask_dir}")
    return pairs


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # truncated, not an image, a bomb
        raise ValueError(f"could not read the image {path}: {exc}; remove it or write the data set again") from None


def load_image(path: Path, size: int | None = None) -> torch.Tensor:
    """An RGB image file -> (3, H, W) in [-1, 1]; ``size`` resizes the shorter side (the paper: 128)."""
    image = _open(path, "RGB")
    if size is not None:
        image = resize_shorter(image, size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(127.5).sub(1)


def load_mask(path: Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A mask file -> (H, W) float in [0, 1] (grey levels kept; >= 0.5 is object when binarised).

    A mask whose grey levels are only 0 and 1 is a 0/1 label map (as some data sets store them), not a
    nearly black 0..255 one: its 1s are object."""
    mask = _open(path, "L")
    if size is not None and mask.size != size:
        mask = mask.resize(size, Image.NEAREST)
    levels = np.asarray(mask).copy()
    return torch.from_numpy(levels).float().div(1 if levels.max() == 1 else 255)


def resize_shorter(image: Image.Image, size: int, resample) -> Image.Image:
    w, h = image.size
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image if new == image.size else image.resize(new, resample)


class PairFolder(torch.utils.data.Dataset):
    """A folder of image/mask PNG pairs as ``(image [-1, 1] 3HW, mask {0, 1} 1HW)``, e.g. from :func:`write_dataset`."""

    def __init__(self, folder: str | Path, size: int | None = None, masks_subdir: str | None = None) -> None:
        self.pairs = find_pairs(folder, masks_subdir=masks_subdir)
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        image = load_image(image_path, self.size)
        mask = load_mask(mask_path, (image.shape[2], image.shape[1]))
        return image, (mask >= 0.5).float().unsqueeze(0)
