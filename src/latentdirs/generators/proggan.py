"""Progressive GAN generators (Karras et al. 2018) from the two files people actually have.

1. **pytorch_GAN_zoo PGAN** (facebookresearch; the torch.hub ``PGAN`` models such as
   ``celebaHQ16_december_s7_i96000-9c72988c.pth``): one ``.pth`` dict with ``config`` (a pickled
   ``BaseConfig`` object), ``netG``, ``netD``, ``avgG``. We read it weights-only, with the config
   class allow-listed as an inert attribute holder, and infer the depth list from the tensor
   shapes; ``avgG`` (the moving average the zoo samples from) is used unless ``average=False``.
2. **ptrblck/prog_gans_pytorch_inference** 1024x1024 CelebA-HQ
   (``100_celeb_hq_network-snapshot-010403.pth``, the file GanLatentDiscovery uses): a plain
   state dict with ``features.{k}.conv.weight`` / ``features.{k}.wscale.{scale,b}`` keys; the
   network takes z as ``[B, 512, 1, 1]``.

Both take z ~ N(0, I) of size 512 as a flat ``(B, 512)`` latent here; each network reshapes it as
it needs. Outputs are unclipped (nominally [-1, 1]), as in the originals.

    >>> G = load_generator("proggan", "celebaHQ16_december_s7_i96000-9c72988c.pth")
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .checkpoints import CheckpointError, load_strict, read_checkpoint, wrong_kind_error


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


# -- pytorch_GAN_zoo GNet ----------------------------------------------------------------------

class EqualizedLayer(nn.Module):
    """A conv/linear whose output (bias included) is scaled by He's constant sqrt(2 / fan_in)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.he_constant = math.sqrt(2.0 / module.weight[0].numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.he_constant

    def effective_weight(self) -> torch.Tensor:
        return self.module.weight * self.he_constant


class ZooGenerator(nn.Module):
    """pytorch_GAN_zoo's ``GNet`` after ``addScale`` for every depth in ``scale_depths[1:]``.

    Attribute names (``scaleLayers``, ``toRGBLayers``, ``formatLayer``, ``groupScale0``) follow the
    checkpoint's keys so its ``netG``/``avgG`` state dicts load strictly.
    """

    def __init__(self, latent_dim: int, scale_depths: list[int], image_channels: int = 3, alpha: float = 0.0,
                 leak: float = 0.2) -> None:
        super().__init__()
        self.alpha = alpha
        self.leak = leak
        self.scaleLayers = nn.ModuleList()
        self.toRGBLayers = nn.ModuleList([EqualizedLayer(nn.Conv2d(scale_depths[0], image_channels, 1))])
        for depth_in, depth in zip(scale_depths[:-1], scale_depths[1:]):
            self.scaleLayers.append(nn.ModuleList([EqualizedLayer(nn.Conv2d(depth_in, depth, 3, padding=1)),
                                                   EqualizedLayer(nn.Conv2d(depth, depth, 3, padding=1))]))
            self.toRGBLayers.append(EqualizedLayer(nn.Conv2d(depth, image_channels, 1)))
        self.formatLayer = EqualizedLayer(nn.Linear(latent_dim, 16 * scale_depths[0]))
        self.groupScale0 = nn.ModuleList([EqualizedLayer(nn.Conv2d(scale_depths[0], scale_depths[0], 3, padding=1))])

    def seed(self, z: torch.Tensor) -> torch.Tensor:
        """The normalized 4x4 feature map after the format layer."""
        x = F.leaky_relu(self.formatLayer(pixel_norm(z)), self.leak)
        return pixel_norm(x.view(x.shape[0], -1, 4, 4))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.seed(z)
        for conv in self.groupScale0:
            x = pixel_norm(F.leaky_relu(conv(x), self.leak))
        previous_rgb = None
        for scale, convs in enumerate(self.scaleLayers):
            if self.alpha > 0 and scale == len(self.scaleLayers) - 1:
                # mid-transition checkpoints blend in the previous scale's image
                previous_rgb = F.interpolate(self.toRGBLayers[-2](x), scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in convs:
                x = pixel_norm(F.leaky_relu(conv(x), self.leak))
        image = self.toRGBLayers[-1](x)
        if previous_rgb is not None:
            image = self.alpha * previous_rgb + (1.0 - self.alpha) * image
        return image

    def first_layer_weight(self) -> torch.Tensor:
        return self.formatLayer.effective_weight().detach()


def infer_zoo_config(state: dict) -> dict:
    """Latent size, depth list and output channels from a GNet state dict's shapes."""
    latent_dim = state["formatLayer.module.weight"].shape[1]
    depths = [state["formatLayer.module.weight"].shape[0] // 16]
    scale = 0
    while f"scaleLayers.{scale}.0.module.weight" in state:
        depths.append(state[f"scaleLayers.{scale}.0.module.weight"].shape[0])
        scale += 1
    return {"latent_dim": int(latent_dim), "scale_depths": [int(d) for d in depths],
            "image_channels": int(state["toRGBLayers.0.module.weight"].shape[0])}


# -- ptrblck 1024 CelebA-HQ generator ---------------------------------------------------------

class WScale(nn.Module):
    """Runtime weight scaling of the original Theano code: x * scale + per-channel bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.b = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.b.view(1, -1, 1, 1)


class NormConvBlock(nn.Module):
    """pixel norm -> (nearest 2x) -> conv (no bias) -> wscale -> (leaky ReLU 0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int,
                 upsample: bool = False, activate: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.activate = activate
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.wscale = WScale(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.wscale(self.conv(x))
        return F.leaky_relu(x, 0.2) if self.activate else x


class PtrblckGenerator(nn.Module):
    """The 1024x1024 CelebA-HQ generator of prog_gans_pytorch_inference (``Generator()``).

    Block 0 is a 4x4 conv with padding 3 on the 1x1 latent; odd blocks refine, even blocks from 2
    on upsample. Widths come from the state dict, so smaller snapshots of the same code load too.
    """

    def __init__(self, widths: list[int], latent_dim: int = 512, image_channels: int = 3) -> None:
        super().__init__()
        blocks = []
        for index, width in enumerate(widths):
            in_width = latent_dim if index == 0 else widths[index - 1]
            first = index == 0
            blocks.append(NormConvBlock(in_width, width, 4 if first else 3, 3 if first else 1,
                                        upsample=index >= 2 and index % 2 == 0))
        self.features = nn.Sequential(*blocks)
        self.output = NormConvBlock(widths[-1], image_channels, 1, 0, activate=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(z.view(z.shape[0], -1, 1, 1)))

    def first_layer_weight(self) -> torch.Tensor:
        # On a 1x1 input padded by 3, output pixel (i, j) sees kernel tap (3-i, 3-j): the first
        # block is one linear map latent -> (4x4 x channels).
        block = self.features[0]
        weight = block.conv.weight.flip(2, 3).permute(0, 2, 3, 1)  # (out, i, j, latent)
        return (weight.reshape(-1, weight.shape[-1]) * block.wscale.scale).detach()


def infer_ptrblck_widths(state: dict) -> list[int]:
    widths = []
    while f"features.{len(widths)}.conv.weight" in state:
        widths.append(int(state[f"features.{len(widths)}.conv.weight"].shape[0]))
    return widths


# -- the adapter -----------------------------------------------------------------------------

class ProgGANGenerator(Generator):
    """Either ProgGAN network behind the protocol; latent z ~ N(0, I), flat (B, 512)."""

    latent_space = "z"

    def __init__(self, network: nn.Module, latent_dim: int, format_name: str, config: dict) -> None:
        super().__init__()
        self.network = network
        self.latent_dim = latent_dim
        self.name = "proggan"
        self.format_name = format_name
        self.config = config

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network(latent)

    def first_layer_weight(self) -> torch.Tensor:
        return self.network.first_layer_weight()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        # the 4x4 map after the first layer (GANSpace's choice for ProgGAN is an early block)
        if isinstance(self.network, ZooGenerator):
            return self.network.seed(latent).flatten(1)
        return self.network.features[0](latent.view(latent.shape[0], -1, 1, 1)).flatten(1)

    def describe(self) -> dict:
        return {**super().describe(), "kind": "proggan", "format": self.format_name, **self.config}


def load(path: str | Path, average: bool = True, trust_pickle: bool = False) -> ProgGANGenerator:
    """Load a pytorch_GAN_zoo PGAN ``.pth`` or a ptrblck ProgGAN state dict.

    ``average``: use ``avgG`` (the zoo's default for sampling) rather than ``netG``.
    ``trust_pickle``: allow arbitrary pickled objects (only needed for unusual files).
    """
    source = str(path)
    checkpoint = read_checkpoint(path, trust_pickle=trust_pickle, kind="proggan")
    if not isinstance(checkpoint, dict):
        raise wrong_kind_error(checkpoint, "proggan", source, "a dict")
    if "netG" in checkpoint or "avgG" in checkpoint:
        part = "avgG" if average and "avgG" in checkpoint else "netG"
        if part not in checkpoint:
            raise CheckpointError(f"{source} has no 'netG' entry; pass average=True to use 'avgG'.")
        state = checkpoint[part]
        if "formatLayer.module.weight" not in state:
            raise wrong_kind_error(state, "proggan", f"{source}['{part}']", "a GNet state dict with formatLayer.*")
        config = infer_zoo_config(state)
        alpha = float(getattr(checkpoint.get("config"), "alpha", 0.0) or 0.0)
        saved_depths = getattr(checkpoint.get("config"), "depthOtherScales", None)
        if saved_depths is not None and list(saved_depths) != config["scale_depths"][1:]:
            raise CheckpointError(
                f"{source}: config.depthOtherScales = {list(saved_depths)} but the {part} tensors have scale "
                f"depths {config['scale_depths'][1:]}; the file is inconsistent.")
        network = ZooGenerator(config["latent_dim"], config["scale_depths"], config["image_channels"], alpha=alpha)
        load_strict(network, state, "proggan", f"{source}['{part}']",
                    config_note=f"depths {config['scale_depths']} inferred from the tensors")
        size = 4 * 2 ** (len(config["scale_depths"]) - 1)
        return ProgGANGenerator(network, config["latent_dim"], "pytorch_GAN_zoo",
                                {**config, "image_size": size, "alpha": alpha, "weights": part}).freeze()
    if "features.0.conv.weight" in checkpoint and "output.conv.weight" in checkpoint:
        widths = infer_ptrblck_widths(checkpoint)
        latent_dim = int(checkpoint["features.0.conv.weight"].shape[1])
        image_channels = int(checkpoint["output.conv.weight"].shape[0])
        network = PtrblckGenerator(widths, latent_dim, image_channels)
        load_strict(network, checkpoint, "proggan", source, config_note=f"block widths {widths} inferred from the tensors")
        size = 4 * 2 ** ((len(widths) - 2) // 2)
        return ProgGANGenerator(network, latent_dim, "ptrblck",
                                {"widths": widths, "image_channels": image_channels, "image_size": size}).freeze()
    raise wrong_kind_error(checkpoint, "proggan", source,
                           "a pytorch_GAN_zoo dict with 'netG'/'avgG' or a ptrblck state dict with 'features.0.conv.weight'")
