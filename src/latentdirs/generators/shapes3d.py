"""The DCGAN trained on procedural 3D-Shapes scenes, shipped inside the package.

Its training data has known factors (floor/wall/object hue, scale, shape, orientation; see
:mod:`latentdirs.data.shapes3d`), so directions found in its latent space can be scored
against ground truth. The weights (``weights/shapes3d/generator.safetensors`` + ``config.json``)
come from ``latentdirs train-gan``; ``config.json`` records the command, steps and time.

    >>> G = load_generator("shapes3d")                        # packaged weights, offline
    >>> G = load_generator("shapes3d", "scratch/gan_run/final")  # your own run
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..gan.networks import DCGANGenerator, NetworkConfig
from .base import Generator, GroundTruth
from .checkpoints import CheckpointError, load_strict

WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"


def packaged_weights_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "weights" / "shapes3d"


class Shapes3DGenerator(Generator):
    name = "shapes3d"
    latent_space = "z"

    def __init__(self, network: DCGANGenerator, config: dict | None = None) -> None:
        super().__init__()
        self.network = network.eval()
        self.latent_dim = network.config.latent_dim
        self.config = config or {}
        self.freeze()

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network(latent)

    def first_layer_weight(self) -> torch.Tensor:
        return self.network.fc.weight.detach()  # (4*4*C, latent_dim)

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network.first_block(latent).flatten(1)

    def ground_truth(self) -> GroundTruth:
        """Freshly rendered procedural 3D Shapes scenes, with the fade factor when it was trained with one."""
        from ..data import shapes3d
        with_fade = bool(self.config.get("training", {}).get("with_fade", False))

        def sample(num: int, seed: int):
            images, factors, _ = shapes3d.make_dataset(num, seed=seed, with_fade=with_fade)
            return shapes3d.to_tensor(images), factors
        return GroundTruth(shapes3d.factor_names(with_fade), shapes3d.factor_sizes(with_fade), sample)

    def describe(self) -> dict:
        training = self.config.get("training", {})
        return {**super().describe(), "architecture": "dcgan", "base_channels": self.network.config.base_channels,
                "training_steps": training.get("steps")}


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{folder} has no {CONFIG_FILE}; a shapes3d generator folder holds "
                              f"{WEIGHTS_FILE} and {CONFIG_FILE} (written by `latentdirs train-gan`).")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the file may be truncated.") from exc
    if config.get("architecture") != "dcgan":
        raise CheckpointError(f"{path} describes architecture {config.get('architecture')!r}; the shapes3d "
                              "loader reads 'dcgan' generators written by `latentdirs train-gan`.")
    return config


def load(path: str | Path | None = None, map_location: str = "cpu", **options) -> Shapes3DGenerator:
    """Load the shapes3d DCGAN: the packaged weights, or a folder / ``generator.safetensors`` file."""
    if options:
        raise TypeError(f"shapes3d.load got unexpected options {sorted(options)}")
    folder = packaged_weights_dir() if path is None else Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise CheckpointError(f"no such folder: {folder}")
    weights = folder / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"{folder} has no {WEIGHTS_FILE}"
                              + (" (the package was installed without its weights?)" if path is None else ""))
    config = _read_config(folder)
    known = {"latent_dim", "base_channels", "image_size", "image_channels"}
    network = DCGANGenerator(NetworkConfig(**{k: v for k, v in config.items() if k in known}))

    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(str(weights), device=map_location)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"could not read {weights}: {exc}. The file is truncated or not a safetensors "
                              "file; re-export it with `latentdirs train-gan` or reinstall the package.") from exc
    note = f"{CONFIG_FILE} says latent_dim={config.get('latent_dim')}, base_channels={config.get('base_channels')}"
    load_strict(network, state, "shapes3d", str(weights), config_note=note)
    return Shapes3DGenerator(network, config)
