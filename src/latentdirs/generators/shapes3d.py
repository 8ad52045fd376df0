"""The GANs trained on procedural 3D-Shapes scenes, shipped inside the package.

Two families, told apart by ``config.json``'s ``architecture``: the DCGANs ('dcgan', 'dcgan-up':
a Z space) and the style-based generator ('style', :mod:`latentdirs.gan.stylegan`), which has
Z, W and W+ spaces (``space=``, ``layers=`` for W+: a shift moves only the styles of those
layers; SeFa reads the first mapping layer in Z, the style affines of the chosen layers in W/W+).

Its training data has known factors (floor/wall/object hue, scale, shape, orientation; see
:mod:`latentdirs.data.shapes3d`), so directions found in its latent space can be scored
against ground truth. The weights (``weights/shapes3d/generator.safetensors`` + ``config.json``)
come from ``latentdirs train-gan``; ``config.json`` records the command, steps and time.

    >>> G = load_generator("shapes3d")                        # packaged weights, offline
    >>> G = load_generator("shapes3d", "scratch/gan_run/final")  # your own run
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..gan.networks import DCGANGenerator, NetworkConfig, UpsampleGenerator
from ..gan.stylegan import MappedDCGANGenerator, StyleGenerator, StyleNetworkConfig
from .base import Generator, GroundTruth, StyleSpaceGenerator
from .checkpoints import CheckpointError, built_from_config, load_strict, read_config

WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"


def packaged_weights_dir(kind: str = "shapes3d") -> Path:
    """``weights/shapes3d`` (the default, dcgan-w) or ``weights/shapes3d_dcgan`` (the first shipped GAN)."""
    return Path(__file__).resolve().parent.parent / "weights" / kind.replace("-", "_")


def scenes_ground_truth(config: dict) -> GroundTruth:
    """Freshly rendered procedural 3D Shapes scenes, with the fade factor when the GAN was trained with one."""
    from ..data import shapes3d
    with_fade = bool(config.get("training", {}).get("with_fade", False))

    def sample(num: int, seed: int):
        images, factors, _ = shapes3d.make_dataset(num, seed=seed, with_fade=with_fade)
        return shapes3d.to_tensor(images), factors
    return GroundTruth(shapes3d.factor_names(with_fade), shapes3d.factor_sizes(with_fade), sample)


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
        return scenes_ground_truth(self.config)

    def describe(self) -> dict:
        training = self.config.get("training", {})
        return {**super().describe(), "architecture": self.config.get("architecture", "dcgan"), "base_channels": self.network.config.base_channels,
                "training_steps": training.get("steps")}


class StyleShapes3DGenerator(StyleSpaceGenerator):
    name = "shapes3d"

    def __init__(self, network: StyleGenerator, config: dict | None = None, space: str = "z", layers=None,
                 truncation: float = 1.0) -> None:
        super().__init__()
        self.set_style_space(space, layers, network.num_ws, truncation)
        self.network = network.eval()
        self.latent_dim = network.config.latent_dim
        self.config = config or {}
        self.freeze()

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.network.mapping(z)

    def mean_w(self) -> torch.Tensor:
        return self.network.w_avg  # tracked during training

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.network.synthesis(ws).clamp(-1, 1)

    def first_layer_weight(self) -> torch.Tensor:
        if self.latent_space == "z":
            first = self.network.mapping.layers[0]
            return (first.weight * first.weight_gain).detach()
        return self.network.style_weights(range(*self.layers)).detach()

    def ground_truth(self) -> GroundTruth:
        return scenes_ground_truth(self.config)

    def describe(self) -> dict:
        training = self.config.get("training", {})
        info = {**super().describe(), "architecture": self.config.get("architecture", "style"), "base_channels": self.network.config.base_channels,
                "training_steps": training.get("steps"), "num_ws": self.network.num_ws}
        if self.latent_space == "w+":
            info["layers"] = list(self.layers)
        if self.truncation < 1.0:
            info["truncation"] = self.truncation
        return info


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{folder} has no {CONFIG_FILE}; a shapes3d generator folder holds "
                              f"{WEIGHTS_FILE} and {CONFIG_FILE} (written by `latentdirs train-gan`).")
    config = read_config(path)
    if config.get("architecture") not in ("dcgan", "dcgan-up", "style", "dcgan-w"):
        raise CheckpointError(f"{path} describes architecture {config.get('architecture')!r}; the shapes3d "
                              "loader reads 'dcgan', 'dcgan-up', 'style' and 'dcgan-w' generators written by "
                              "`latentdirs train-gan`.")
    return config


def load(path: str | Path | None = None, map_location: str = "cpu", **options) -> Generator:
    """Load a shapes3d generator: the packaged weights, or a folder / ``generator.safetensors`` file.

    Style-based weights take ``space`` ("z", "w", "w+"), ``layers`` (w+) and ``truncation``.
    """
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
    architecture = config["architecture"]
    if architecture in ("style", "dcgan-w"):
        known = StyleNetworkConfig.__dataclass_fields__
        builder = StyleGenerator if architecture == "style" else MappedDCGANGenerator
        network = built_from_config(lambda: builder(StyleNetworkConfig(**{k: v for k, v in config.items() if k in known})),
                                    folder / CONFIG_FILE)
    else:
        if options:
            raise TypeError(f"the {architecture} shapes3d generator has only a Z space and takes no options; "
                            f"got {sorted(options)}")
        known = {"latent_dim", "base_channels", "image_size", "image_channels"}
        builder = DCGANGenerator if architecture == "dcgan" else UpsampleGenerator
        network = built_from_config(lambda: builder(NetworkConfig(**{k: v for k, v in config.items() if k in known})),
                                    folder / CONFIG_FILE)

    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(str(weights), device=map_location)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"could not read {weights}: {exc}. The file is truncated or not a safetensors "
                              "file; re-export it with `latentdirs train-gan` or reinstall the package.") from exc
    note = f"{CONFIG_FILE} says latent_dim={config.get('latent_dim')}, base_channels={config.get('base_channels')}"
    load_strict(network, state, "shapes3d", str(weights), config_note=note)
    if architecture in ("style", "dcgan-w"):
        return StyleShapes3DGenerator(network, config, **options)
    return Shapes3DGenerator(network, config)


def load_dcgan(path: str | Path | None = None, **options) -> Generator:
    """The first shipped shapes3d GAN (a plain DCGAN, Z only), kept loadable as kind ``shapes3d-dcgan``."""
    generator = load(packaged_weights_dir("shapes3d-dcgan") if path is None else path, **options)
    generator.name = "shapes3d-dcgan"
    return generator
