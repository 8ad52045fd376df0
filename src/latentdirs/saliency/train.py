"""Train the saliency U-Net on synthetic (image, mask) pairs, and evaluate it on real pairs.

The paper's schedule is the default: Adam, lr 0.005 multiplied by 0.2 every 4000 steps,
15000 steps of batch 128, per-pixel cross-entropy with temperature 10. On a CPU scale it
down with the options (e.g. 600 steps of batch 32, decay every 250).

    >>> stream = stream_pairs(G, h, shift=6.0, batch_size=32)
    >>> unet = train_unet(stream, UNetTrainConfig(steps=600, batch_size=32, decay_every=250), out_dir="runs/sal")
    >>> evaluate(unet, "heldout/", out_dir="runs/sal/eval")    # {"mae": ..., "max_f": ..., "iou": ...}
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..configs import check_declared
from ..runs import Run, atomic_write_text
from .masks import PairFolder, images_to_uint8, save_png
from .metrics import SaliencyScores
from .unet import UNet, UNetConfig


@dataclass
class UNetTrainConfig:
    """How the saliency U-Net is trained (the paper's schedule); ``latentdirs saliency train`` has an option per field."""

    steps: int = 15_000
    """Optimizer steps."""
    batch_size: int = 128
    """Pairs per step (in Python, a stream given to train_unet brings its own batch size)."""
    lr: float = 0.005
    """Adam learning rate."""
    decay_every: int = 4_000
    """Multiply the learning rate by ``decay`` every this many steps."""
    decay: float = 0.2
    """Learning-rate factor at each decay."""
    temperature: float = 10.0
    """T in the loss's softmax(logits / T)."""
    base_channels: int = 16
    """U-Net width at full resolution."""
    depth: int = 4
    """U-Net resolution levels."""
    size: int | None = None
    """Resize every batch so its shorter side is this (None: as given). Evaluation uses it too."""
    seed: int = 0
    """Seed of the U-Net's initialization and of the data."""
    log_every: int = 25
    """Append to metrics.jsonl every N steps."""
    save_every: int = 500
    """Save the U-Net (OUT/unet) every N steps."""
    POSITIVE: ClassVar[tuple[str, ...]] = ("steps", "batch_size", "decay_every", "base_channels", "depth",
                                           "log_every", "save_every")

    def __post_init__(self) -> None:
        check_declared(self)
        if self.size is not None and self.size < 2 ** self.depth:
            raise ValueError(f"size {self.size} is too small for a U-Net of depth {self.depth}")
        if not self.lr > 0 or not 0 < self.decay <= 1 or not self.temperature > 0:
            raise ValueError("need lr > 0, 0 < decay <= 1 and temperature > 0")


def folder_batches(folder: str | Path, batch_size: int, seed: int = 0, size: int | None = None
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random batches from a folder of image/mask pairs (all images of one size, or give ``size``)."""
    data = PairFolder(folder, size)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=len(data) >= batch_size,
                                         generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def train_unet(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], config: UNetTrainConfig | None = None,
               out_dir: str | Path | None = None, progress: bool = True, meta: dict | None = None,
               device: str | torch.device = "cpu") -> UNet:
    """Train a fresh U-Net on (images [-1, 1] N3HW, masks {0,1} N1HW) batches; saves to ``out_dir/unet``.

    The U-Net trains on ``device``; it is returned (and saved) on the CPU.
    """
    config = config or UNetTrainConfig()
    torch.manual_seed(config.seed)
    unet = UNet(UNetConfig(base_channels=config.base_channels, depth=config.depth, temperature=config.temperature,
                           input_size=config.size)).to(device)
    optimizer = torch.optim.Adam(unet.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.decay_every, gamma=config.decay)
    run = Run(out_dir)
    run.clear_metrics()  # a fresh U-Net: the metrics of one trained before in this folder go
    run.save_config({"train": asdict(config), **(meta or {})})
    unet.train()
    window: list[float] = []
    tick = start = time.perf_counter()
    batches = iter(batches)
    bar = tqdm(range(config.steps), disable=not progress, desc="train U-Net", dynamic_ncols=True)
    for step in bar:
        try:
            images, masks = _checked_batch(next(batches), step)
        except StopIteration:
            raise ValueError(f"the batches ran out after {step} of {config.steps} steps; give an endless "
                             "iterator (folder_batches, stream_pairs) or lower steps") from None
        images, masks = images.to(device), masks.to(device)
        if config.size is not None:
            images, masks = resize_batch(images, masks, config.size)
        loss = unet.loss(images, masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        window.append(loss.item())
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            now = time.perf_counter()
            record = {"step": done, "loss": sum(window) / len(window), "lr": optimizer.param_groups[0]["lr"],
                      "sec_per_step": (now - tick) / len(window), "elapsed_seconds": round(now - start, 1)}
            run.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            window, tick = [], now
        if run.folder is not None and (done % config.save_every == 0 or done == config.steps):
            unet.save(run.folder / "unet", {"steps": done, "train": asdict(config), **(meta or {})})
    unet = unet.cpu().eval()
    run.log(f"trained {config.steps} steps in {time.perf_counter() - start:.0f} s")
    return unet


def _checked_batch(batch, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, masks) as training needs them, or a ValueError that names what a batch got wrong."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise ValueError(f"batch {step} is not an (images, masks) pair of tensors")
    images, masks = batch
    if images.dim() != 4 or masks.dim() != 4 or masks.shape[1] != 1 or len(images) != len(masks) \
            or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"batch {step}: expected images (N, 3, H, W) and masks (N, 1, H, W) of one size, got "
                         f"{tuple(images.shape)} and {tuple(masks.shape)}")
    if not torch.isfinite(images).all() or not ((masks == 0) | (masks == 1)).all():
        raise ValueError(f"batch {step}: images must be finite and masks 0 or 1 (a 0..255 mask: divide it by 255)")
    return images, masks


def resize_shorter_side(images: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    if min(images.shape[-2:]) == size:
        return images
    scale = size / min(images.shape[-2:])
    target = [max(1, round(side * scale)) for side in images.shape[-2:]]
    if mode == "bilinear":
        return F.interpolate(images, size=target, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(images, size=target, mode=mode)


def resize_batch(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (bilinear, antialiased) and {0, 1} masks (area average, then >= 0.5) to shorter side ``size``."""
    if min(images.shape[-2:]) == size:
        return images, masks
    images = resize_shorter_side(images, size)
    masks = (F.interpolate(masks, size=images.shape[-2:], mode="area") >= 0.5).float()
    return images, masks


@torch.no_grad()
def evaluate(unet: UNet, folder: str | Path, size: int | None = None, out_dir: str | Path | None = None,
             masks_subdir: str | None = None, figure_rows: int = 8, progress: bool = True) -> dict:
    """MAE, max F (beta^2 = 0.3) and IoU of ``unet`` on a folder of real image/mask pairs.

    ``size`` resizes the shorter image side before the U-Net (the paper: 128; None: the size the
    U-Net was trained at, or the image as it is if it was trained on images as given); the prediction
    is resized back to the mask's own size before scoring. With ``out_dir``: predicted masks
    as PNGs in ``out_dir/predictions/``, ``metrics.json`` and ``examples.png`` (image | prediction | truth).
    """
    data = PairFolder(folder, size=None, masks_subdir=masks_subdir)
    scores = SaliencyScores()
    out = Path(out_dir) if out_dir is not None else None
    examples = []
    unet.eval()
    device = next(unet.parameters()).device
    size = size if size is not None else unet.config.input_size
    for i in tqdm(range(len(data)), disable=not progress, desc="evaluate", dynamic_ncols=True):
        image, truth = data[i]
        prob = unet.predict(image[None].to(device), size=size).cpu()
        if prob.shape[-2:] != truth.shape[-2:]:
            prob = F.interpolate(prob, size=truth.shape[-2:], mode="bilinear", align_corners=False)
        scores.update(prob[0], truth)
        if out is not None:
            save_png((prob[0, 0].numpy() * 255).round().astype(np.uint8), out / "predictions" / f"{data.pairs[i][0].stem}.png")
            if len(examples) < figure_rows:
                examples.append((image, prob[0], truth))
    result = {"folder": str(folder), "size": size, **scores.summary()}
    if out is not None:
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
        if examples:
            examples_figure(examples).save(out / "examples.png")
    return result


def examples_figure(examples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], scale: int = 2):
    """Rows of image | predicted probability | true mask, like the paper's figure."""
    from PIL import Image, ImageDraw
    h, w = examples[0][0].shape[-2:]
    h, w = h * scale, w * scale
    pad, top = 3, 14
    sheet = Image.new("RGB", (3 * (w + pad) + pad, top + len(examples) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(("image", "U-Net", "truth")):
        draw.text((pad + j * (w + pad) + 2, 1), title, fill=(0, 0, 0))
    for i, (image, prob, truth) in enumerate(examples):
        tiles = [images_to_uint8(image[None])[0], (prob[0].numpy() * 255).round().astype(np.uint8),
                 (truth.reshape(truth.shape[-2:]).numpy() * 255).round().astype(np.uint8)]
        for j, tile in enumerate(tiles):
            im = Image.fromarray(tile).convert("RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.NEAREST)
            sheet.paste(im, (pad + j * (w + pad), top + i * (h + pad)))
    return sheet
