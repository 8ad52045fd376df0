"""A small U-Net for saliency: image (3 x H x W in [-1, 1]) -> 2 logits per pixel (background, object).

Encoder: ``depth`` levels of two 3x3 conv + BN + ReLU, halving the resolution between levels;
decoder: upsample, concatenate the skip of the same level, two convs. H and W must be
divisible by 2 ** (depth - 1); :meth:`UNet.predict` pads any other size and crops back.
Saved as ``unet.safetensors`` + ``unet.json`` (the architecture), read back without pickle.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import check_declared
from ..runs import atomic_path, atomic_write_text, read_json_object

WEIGHTS_FILE, CONFIG_FILE = "unet.safetensors", "unet.json"


@dataclass
class UNetConfig:
    in_channels: int = 3
    base_channels: int = 16
    """Channels at full resolution; doubled at every lower level."""
    depth: int = 4
    """Resolution levels (depth - 1 downsamplings)."""
    temperature: float = 10.0
    """Probabilities are softmax(logits / temperature), in training and at inference."""
    input_size: int | None = None
    """Shorter image side it was trained at (None: images as given); evaluation resizes to it by default."""
    POSITIVE: ClassVar[tuple[str, ...]] = ("in_channels", "base_channels", "depth", "input_size")

    def __post_init__(self) -> None:
        # depth 0 was an IndexError, 0 channels torch's conv message at the first image, temperature 0 NaN
        # probabilities; UNet.load names unet.json when these refuse it
        check_declared(self)
        t = self.temperature
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        widths = [config.base_channels * 2 ** i for i in range(config.depth)]
        self.down = nn.ModuleList([_block(config.in_channels, widths[0])] +
                                  [_block(widths[i - 1], widths[i]) for i in range(1, config.depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2)
                                 for i in range(config.depth - 1, 0, -1)])
        self.merge = nn.ModuleList([_block(2 * widths[i - 1], widths[i - 1]) for i in range(config.depth - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], 2, 1)

    @property
    def multiple(self) -> int:
        return 2 ** (self.config.depth - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 2, H, W); channel 1 is 'object'."""
        if images.dim() == 4 and images.shape[1] != self.config.in_channels:
            raise ValueError(f"this U-Net takes {self.config.in_channels}-channel images, got {images.shape[1]} "
                             f"channels (shape {tuple(images.shape)})")
        if images.shape[-1] % self.multiple or images.shape[-2] % self.multiple:
            raise ValueError(f"U-Net input sides must be divisible by {self.multiple}, got {tuple(images.shape[-2:])}; "
                             "use predict(), which pads")
        skips, x = [], images
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Per-pixel cross-entropy of softmax(logits / T) against {0, 1} masks (N, 1, H, W)."""
        return F.cross_entropy(self(images) / self.config.temperature, masks[:, 0].long())

    @torch.no_grad()
    def predict(self, images: torch.Tensor, size: int | None | str = "trained") -> torch.Tensor:
        """Object probability (N, 1, H, W) in [0, 1] at the images' own size, for any size.

        ``size``: the shorter side the U-Net sees ("trained": ``config.input_size``; None: as given);
        the probability is resized back. Sides are reflect-padded to a multiple of 2 ** (depth - 1).
        """
        h, w = images.shape[-2:]
        size = self.config.input_size if size == "trained" else size
        if size is not None and not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size must be a positive integer, None or 'trained', got {size!r}")
        x = images
        if size is not None and min(h, w) != size:
            scale = size / min(h, w)
            x = F.interpolate(x, size=[max(1, round(h * scale)), max(1, round(w * scale))], mode="bilinear",
                              align_corners=False, antialias=True)
        xh, xw = x.shape[-2:]
        ph, pw = (-xh) % self.multiple, (-xw) % self.multiple
        if ph >= xh or pw >= xw:  # reflect padding needs more pixels than it adds
            raise ValueError(f"images of {xh}x{xw} pixels (as the U-Net sees them) are too small for depth "
                             f"{self.config.depth}: give sides over {self.multiple // 2} pixels, or a larger size")
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        was_training = self.training
        self.eval()
        try:  # a refused input leaves the U-Net in the mode it was in
            prob = torch.softmax(self(x) / self.config.temperature, dim=1)[:, 1:, :xh, :xw]
        finally:
            self.train(was_training)
        if (xh, xw) != (h, w):
            prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
        return prob

    def save(self, directory: str | Path, meta: dict | None = None) -> Path:
        from safetensors.torch import save_file
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        atomic_write_text(directory / CONFIG_FILE, json.dumps({"architecture": "latentdirs-unet", **asdict(self.config),
                                                               **(meta or {})}, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path, map_location: str = "cpu") -> "UNet":
        from safetensors.torch import load_file
        directory = Path(directory)
        if (directory / "unet").is_dir() and not (directory / WEIGHTS_FILE).exists():
            directory = directory / "unet"  # a training run folder
        if not (directory / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"no U-Net in {directory}: expected {WEIGHTS_FILE} + {CONFIG_FILE} "
                                    "(written by `latentdirs saliency train`)")
        info = read_json_object(directory / CONFIG_FILE, " (the U-Net's settings)")
        fields = UNetConfig.__dataclass_fields__
        weights = directory / WEIGHTS_FILE
        try:
            model = cls(UNetConfig(**{k: v for k, v in info.items() if k in fields}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{directory / CONFIG_FILE} holds settings no U-Net can be built from ({exc})") from None
        expected = model.state_dict()
        try:
            state = load_file(str(weights), device=map_location)
            bad = [k for k, v in state.items() if k in expected and (
                v.is_floating_point() != expected[k].is_floating_point()
                or (v.is_floating_point() and not torch.isfinite(v).all()))]
            model.load_state_dict(state)
        except Exception as exc:  # SafetensorError, RuntimeError (keys, shapes): the messages name no file
            raise ValueError(f"could not load {weights}: truncated, or not the weights of this U-Net "
                             f"({(str(exc).splitlines() or [''])[0][:200]}); train it again") from None
        if bad:
            raise ValueError(f"{weights}: {', '.join(bad[:4])} hold NaN, inf or integers; train the U-Net again")
        return model.eval()
