"""SN-GAN ResNet generators published with GanLatentDiscovery (Voynov & Babenko 2020).

Format (anvoynov/GanLatentDiscovery, ``models/SNGAN``): a folder such as
``pretrained/generators/SN_MNIST`` holding

- ``args.json``: ``model`` (``sn_resnet32`` -> 32x32, ``sn_resnet64`` -> 64x64), ``latent_dim``,
  optionally ``image_channels`` (the reference falls back to 3; we read it from the weights);
- ``generator.pt``: a plain state dict whose keys start with ``model.`` and list each block's two
  convolutions twice (``conv1`` and ``model.3`` are the same tensor).

Despite the name there is no spectral norm in the generator: Linear -> 4x4 seed -> residual
up-blocks -> BatchNorm -> ReLU -> 3x3 conv -> tanh.

    >>> G = load_generator("sngan-mnist", "pretrained/generators/SN_MNIST")   # or .../generator.pt
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import Generator
from .checkpoints import CheckpointError, load_strict, read_checkpoint, read_config, wrong_kind_error

# model name in args.json -> block widths (seed width first) and output size
ARCHITECTURES = {
    "sn_resnet32": {"channels": (256, 256, 256, 256), "image_size": 32},
    "sn_resnet64": {"channels": (1024, 512, 256, 128, 64), "image_size": 64},
}
# what each registered kind expects when args.json is absent
KIND_DEFAULTS = {
    "sngan-mnist": {"model": "sn_resnet32", "latent_dim": 128, "image_channels": 1},
    "sngan-anime": {"model": "sn_resnet64", "latent_dim": 128, "image_channels": 3},
}


class UpResBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv plus an upsampled shortcut (with a conv if widths differ)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # The published files list conv1/conv2 a second time inside `model` (same tensors);
        # registering them the same way lets those files load strictly.
        self.model = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"), self.conv1,
            nn.BatchNorm2d(out_channels), nn.ReLU(), self.conv2)
        upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.bypass = (nn.Sequential(upsample, nn.Conv2d(in_channels, out_channels, 3, padding=1))
                       if in_channels != out_channels else upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.bypass(x)


def build_network(channels: tuple[int, ...], latent_dim: int, image_channels: int) -> nn.Sequential:
    """The generator as the ``nn.Sequential`` whose state dict is ``generator.pt`` minus ``model.``."""
    blocks = [UpResBlock(c_in, c_out) for c_in, c_out in zip(channels[:-1], channels[1:])]
    return nn.Sequential(
        nn.Linear(latent_dim, 16 * channels[0]),
        nn.Unflatten(1, (channels[0], 4, 4)),
        *blocks,
        nn.BatchNorm2d(channels[-1]), nn.ReLU(),
        nn.Conv2d(channels[-1], image_channels, 3, padding=1),
        nn.Tanh())


class SNGANGenerator(Generator):
    """GanLatentDiscovery's SN-GAN ResNet generator; latent z ~ N(0, I)."""

    latent_space = "z"

    def __init__(self, architecture: str = "sn_resnet32", latent_dim: int = 128, image_channels: int = 3,
                 name: str = "sngan") -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise CheckpointError(f"unknown SN-GAN model {architecture!r}; expected one of {sorted(ARCHITECTURES)}.")
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.image_channels = image_channels
        self.name = name
        self.model = build_network(ARCHITECTURES[architecture]["channels"], latent_dim, image_channels)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model(latent)

    def first_layer_weight(self) -> torch.Tensor:
        return self.model[0].weight.detach()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        # the 4x4 seed (output of the first Linear), GANSpace's usual "first layer" choice
        return self.model[0](latent)

    def describe(self) -> dict:
        return {**super().describe(), "kind": self.name, "architecture": self.architecture,
                "image_channels": self.image_channels,
                "image_size": ARCHITECTURES[self.architecture]["image_size"]}


def _locate(path: str | Path, kind: str) -> tuple[Path, Path | None]:
    """(generator.pt, args.json or None) from a folder or the .pt path itself."""
    path = Path(path)
    if path.is_dir():
        weights = path / "generator.pt"
        if not weights.exists():
            raise CheckpointError(f"{path} has no generator.pt; a {kind} checkpoint is a folder with "
                                  "args.json and generator.pt (GanLatentDiscovery's pretrained/generators/SN_*).")
    else:
        weights = path
    args = weights.parent / "args.json"
    return weights, args if args.exists() else None


def load(path: str | Path, kind: str = "sngan-mnist", model: str | None = None, latent_dim: int | None = None,
         image_channels: int | None = None, trust_pickle: bool = False) -> SNGANGenerator:
    """Load a GanLatentDiscovery SN-GAN folder (or its ``generator.pt``).

    Options override ``args.json``: ``model`` (``sn_resnet32``/``sn_resnet64``), ``latent_dim``,
    ``image_channels``. Without ``args.json`` the kind's defaults are used.
    """
    weights, args_path = _locate(path, kind)
    config = dict(KIND_DEFAULTS[kind])
    note = f"defaults of {kind}"
    if args_path is not None:
        args = read_config(args_path)
        wrong = [k for k, kind in (("model", str), ("latent_dim", int), ("image_channels", int))
                 if k in args and (not isinstance(args[k], kind) or isinstance(args[k], bool))]
        if wrong:
            raise CheckpointError(f"{args_path}: {', '.join(wrong)} must be " + " and ".join(
                {"model": "a string", "latent_dim": "an integer", "image_channels": "an integer"}[k] for k in wrong)
                + f", got {', '.join(repr(args[k]) for k in wrong)}; restore the file or download it again.")
        config.update({k: args[k] for k in ("model", "latent_dim", "image_channels") if k in args})
        note = "args.json says " + ", ".join(f"{k}={args[k]}" for k in ("model", "latent_dim", "image_channels") if k in args)
        if "image_channels" not in args:
            config["image_channels"] = None  # read from the weights below
    overrides = {"model": model, "latent_dim": latent_dim, "image_channels": image_channels}
    config.update({k: v for k, v in overrides.items() if v is not None})

    state = read_checkpoint(weights, trust_pickle=trust_pickle, kind=kind)
    if not isinstance(state, dict) or "model.0.weight" not in state:
        raise wrong_kind_error(state, kind, str(weights), "a state dict with 'model.0.weight', 'model.2.conv1.weight', ...")
    if config["image_channels"] is None:
        last_conv = [k for k in state if k.endswith(".weight") and state[k].dim() == 4][-1]
        config["image_channels"] = int(state[last_conv].shape[0])
    if config["model"] not in ARCHITECTURES:
        raise CheckpointError(f"{note}: unknown model {config['model']!r}; expected one of {sorted(ARCHITECTURES)}.")
    expected_model = KIND_DEFAULTS[kind]["model"]
    if config["model"] != expected_model:
        other = next(k for k, d in KIND_DEFAULTS.items() if d["model"] == config["model"])
        raise CheckpointError(f"{note}, but kind {kind!r} is the {expected_model} generator: "
                              f"load it as {other!r} instead.")
    gen = SNGANGenerator(config["model"], int(config["latent_dim"]), int(config["image_channels"]), name=kind)
    load_strict(gen, state, kind, str(weights), config_note=note)
    return gen.freeze()


def load_mnist(path: str | Path, **options) -> SNGANGenerator:
    return load(path, kind="sngan-mnist", **options)


def load_anime(path: str | Path, **options) -> SNGANGenerator:
    return load(path, kind="sngan-anime", **options)
