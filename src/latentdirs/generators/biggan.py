"""BigGAN-deep (Brock et al. 2019) in the pytorch-pretrained-biggan layout (HuggingFace port).

Format: a folder with ``config.json`` (``BigGANConfig`` fields: ``z_dim``, ``channel_width``,
``layers`` as ``[upsample, in_mult, out_mult]`` rows, ``attention_layer_position``, ``n_stats``,
``eps``, ...) and ``pytorch_model.bin`` (a plain state dict: ``embeddings.weight`` and
``generator.*``). That is what ``BigGAN.from_pretrained("biggan-deep-128")`` caches, e.g. as
``biggan-deep-128-config.json`` / ``-pytorch_model.bin``; a folder holding those two names works too.
No package besides torch is needed.

The generator is class-conditional; the latent is z only (``z_dim`` = 128). The class and the
truncation are adapter options:

- ``classes``: one ImageNet class, a list of classes (sample i of a batch gets
  ``classes[i % len(classes)]``, so G(z) and G(z + shift) of the same batch share classes), or
  ``"random"`` (``num_random_classes`` classes drawn once with ``seed``, then cycled the same way);
- ``truncation`` in (0, 1]: picks the batch-norm statistics row, as the original does, and
  ``sample_latents`` draws z from a normal truncated to [-2, 2] times ``truncation``, like the
  package's ``truncated_noise_sample``.

SeFa (``first_layer_weight``) factorizes the z columns of ``gen_z``'s spectrally normalized
weight (``gen_z`` reads ``cat(z, class_embedding)``), as the SeFa paper does for BigGAN.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import is_integer, is_number
from .base import Generator, GeneratorError
from .checkpoints import (CheckpointError, built_from_config, load_strict, read_checkpoint, read_config,
                          wrong_kind_error)

DEFAULT_CONFIG_128 = {
    "output_dim": 128, "z_dim": 128, "class_embed_dim": 128, "channel_width": 128, "num_classes": 1000,
    "layers": [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8],
               [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]],
    "attention_layer_position": 8, "eps": 1e-4, "n_stats": 51,
}
WEIGHT_NAMES = ("pytorch_model.bin", "biggan-deep-128-pytorch_model.bin", "biggan-deep-256-pytorch_model.bin",
                "biggan-deep-512-pytorch_model.bin")


class SpectralNormWeight(nn.Module):
    """The weight of a spectrally normalized layer in eval mode: ``weight_orig / (u . W v)``.

    Keeps the three tensors torch's ``spectral_norm`` stores; with frozen weights no power
    iteration runs, exactly as the original in eval mode.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.weight_orig = nn.Parameter(0.02 * torch.randn(*shape))
        self.register_buffer("weight_u", torch.randn(shape[0]))
        self.register_buffer("weight_v", torch.zeros(math.prod(shape[1:])))
        self.power_iteration()  # a usable sigma before any weights are loaded (benchmarks, tests)

    @torch.no_grad()
    def power_iteration(self) -> None:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        self.weight_v.copy_(F.normalize(matrix.t() @ self.weight_u, dim=0, eps=1e-4))
        self.weight_u.copy_(F.normalize(matrix @ self.weight_v, dim=0, eps=1e-4))

    def forward(self) -> torch.Tensor:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(matrix, self.weight_v))
        return self.weight_orig / sigma


class SNConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        # bias first: the original's state dict lists it before the spectral-norm tensors
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.sn = SpectralNormWeight((out_channels, in_channels, kernel_size, kernel_size))
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.sn(), self.bias, padding=self.padding)


class SNLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.sn = SpectralNormWeight((out_features, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.sn(), self.bias)


def _flatten_sn(state: dict) -> dict:
    """Our modules keep SN tensors under ``.sn.``; the files do not."""
    return {k.replace(".sn.", "."): v for k, v in state.items()}


def _nest_sn(state: dict, module: nn.Module) -> dict:
    ours = {k.replace(".sn.", "."): k for k in module.state_dict()}
    return {ours.get(k, k): v for k, v in state.items()}


class StatsBatchNorm(nn.Module):
    """Batch norm with a table of stored statistics, one row per truncation value.

    Conditional instances scale by ``1 + scale(cond)`` and shift by ``offset(cond)``.
    """

    def __init__(self, channels: int, condition_dim: int | None, n_stats: int, eps: float) -> None:
        super().__init__()
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.eps = eps
        self.step = 1.0 / (n_stats - 1)
        self.conditional = condition_dim is not None
        if self.conditional:
            self.scale = SNLinear(condition_dim, channels, bias=False)
            self.offset = SNLinear(condition_dim, channels, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def statistics(self, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        coef, index = math.modf(truncation / self.step)
        index = int(index)
        if coef == 0.0:
            return self.running_means[index], self.running_vars[index]
        # blend of two neighbouring rows, weights in the original's order
        mean = self.running_means[index] * coef + self.running_means[index + 1] * (1 - coef)
        var = self.running_vars[index] * coef + self.running_vars[index + 1] * (1 - coef)
        return mean, var

    def forward(self, x: torch.Tensor, truncation: float, condition: torch.Tensor | None = None) -> torch.Tensor:
        mean, var = self.statistics(truncation)
        if not self.conditional:
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, eps=self.eps)
        gain = 1 + self.scale(condition)[:, :, None, None]
        shift = self.offset(condition)[:, :, None, None]
        return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps) * gain + shift


class DeepBlock(nn.Module):
    """BigGAN-deep residual block: 1x1 down-projection, two 3x3 convs, 1x1 up-projection.

    The shortcut drops the extra channels and upsamples; no learned skip connection.
    """

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int, upsample: bool, n_stats: int,
                 eps: float, reduction: int = 4) -> None:
        super().__init__()
        middle = in_channels // reduction
        self.bn_0 = StatsBatchNorm(in_channels, condition_dim, n_stats, eps)
        self.conv_0 = SNConv2d(in_channels, middle, 1)
        self.bn_1 = StatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_1 = SNConv2d(middle, middle, 3)
        self.bn_2 = StatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_2 = SNConv2d(middle, middle, 3)
        self.bn_3 = StatsBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_3 = SNConv2d(middle, out_channels, 1)
        self.upsample = upsample
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        h = self.conv_0(F.relu(self.bn_0(x, truncation, condition)))
        h = F.relu(self.bn_1(h, truncation, condition))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, truncation, condition)))
        h = self.conv_3(F.relu(self.bn_3(h, truncation, condition)))
        skip = x[:, :self.out_channels]
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h + skip


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys and values."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.snconv1x1_theta = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_phi = SNConv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_g = SNConv2d(channels, channels // 2, 1, bias=False)
        self.snconv1x1_o_conv = SNConv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        query = self.snconv1x1_theta(x).view(batch, channels // 8, height * width)
        key = F.max_pool2d(self.snconv1x1_phi(x), 2).view(batch, channels // 8, -1)
        value = F.max_pool2d(self.snconv1x1_g(x), 2).view(batch, channels // 2, -1)
        attention = torch.softmax(torch.bmm(query.transpose(1, 2), key), dim=-1)  # (B, HW, HW/4)
        attended = torch.bmm(value, attention.transpose(1, 2)).view(batch, channels // 2, height, width)
        return x + self.gamma * self.snconv1x1_o_conv(attended)


class BigGANDeepSynthesis(nn.Module):
    """``generator.*``: gen_z -> residual blocks (+ attention) -> BN -> ReLU -> conv -> tanh."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        width = config["channel_width"]
        condition_dim = config["z_dim"] + config["class_embed_dim"]
        self.width = width
        self.gen_z = SNLinear(condition_dim, 4 * 4 * 16 * width)
        layers = []
        for index, (upsample, in_mult, out_mult) in enumerate(config["layers"]):
            if index == config["attention_layer_position"]:
                layers.append(SelfAttention(width * in_mult))
            layers.append(DeepBlock(width * in_mult, width * out_mult, condition_dim, bool(upsample),
                                    config["n_stats"], config["eps"]))
        self.layers = nn.ModuleList(layers)
        self.bn = StatsBatchNorm(width, None, config["n_stats"], config["eps"])
        self.conv_to_rgb = SNConv2d(width, width, 3)

    def seed(self, condition: torch.Tensor) -> torch.Tensor:
        # the weights come from TensorFlow: the 4x4 seed is laid out (H, W, C)
        return self.gen_z(condition).view(-1, 4, 4, 16 * self.width).permute(0, 3, 1, 2)

    def forward(self, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        x = self.seed(condition)
        for layer in self.layers:
            x = layer(x, condition, truncation) if isinstance(layer, DeepBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


class BigGANDeep(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.embeddings = nn.Linear(config["num_classes"], config["class_embed_dim"], bias=False)
        self.generator = BigGANDeepSynthesis(config)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float) -> torch.Tensor:
        condition = torch.cat([z, self.embeddings(class_vector)], dim=1)
        return self.generator(condition, truncation)


class _FlatView(nn.Module):
    """Presents a module's state dict with the published key names (no ``.sn.``) to load_strict."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def state_dict(self, *args, **kwargs):
        return _flatten_sn(self.inner.state_dict())

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        return self.inner.load_state_dict(_nest_sn(dict(state), self.inner), strict=strict, assign=assign)


class BigGANGenerator(Generator):
    """BigGAN-deep behind the protocol: latent z, class and truncation fixed by options."""

    latent_space = "z"

    def __init__(self, network: BigGANDeep, classes=207, truncation: float = 1.0,
                 num_random_classes: int = 8, seed: int = 0) -> None:
        super().__init__()
        if not is_number(truncation) or not 0.0 < truncation <= 1.0:
            raise GeneratorError(f"truncation={truncation!r}: BigGAN needs a number in (0, 1].")
        self.network = network
        self.latent_dim = network.config["z_dim"]
        self.name = "biggan"
        self.truncation = float(truncation)
        num_classes = network.config["num_classes"]
        if isinstance(classes, str):
            if classes != "random":
                raise GeneratorError(f"classes={classes!r}: give an int, a list of ints or 'random'.")
            if not is_integer(num_random_classes) or num_random_classes < 1 or not is_integer(seed):
                raise GeneratorError(f"classes='random' draws num_random_classes (a positive int, got "
                                     f"{num_random_classes!r}) classes with seed (an int, got {seed!r}).")
            chosen = torch.randint(num_classes, (int(num_random_classes),),
                                   generator=torch.Generator().manual_seed(seed))
        else:
            listed = [classes] if not hasattr(classes, "__iter__") else list(classes)
            listed = [c.item() if isinstance(c, torch.Tensor) and c.numel() == 1 else c for c in listed]
            if not all(is_integer(c) for c in listed):
                # floats were cut to ints (1.5 -> class 1) and True was class 1
                raise GeneratorError(f"classes={classes!r}: give an int, a list of ints or 'random'.")
            chosen = torch.as_tensor([int(c) for c in listed], dtype=torch.long)
        if chosen.numel() == 0 or chosen.min() < 0 or chosen.max() >= num_classes:
            raise GeneratorError(f"classes={classes!r}: classes must be in [0, {num_classes}).")
        self.class_option = classes if isinstance(classes, (int, str)) else [int(c) for c in classes]
        self.register_buffer("classes", chosen.long(), persistent=False)

    def class_vectors(self, batch: int) -> torch.Tensor:
        """One-hot classes for a batch: sample i gets ``classes[i % len(classes)]``."""
        index = self.classes[torch.arange(batch, device=self.classes.device) % len(self.classes)]
        return F.one_hot(index, self.network.config["num_classes"]).float()

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network(latent, self.class_vectors(latent.shape[0]).to(latent), self.truncation)

    def sample_latents(self, num: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        z = super().sample_latents(num, generator=generator, device="cpu" if generator is None else generator.device)
        # resample values outside [-2, 2] (a truncated normal), then scale like the original
        outside = z.abs() > 2
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator, device=z.device)
            outside = z.abs() > 2
        return (self.truncation * z).to(device if device is not None else self.device)

    def with_classes(self, classes: list[int]) -> "BigGANGenerator":
        classes = [int(c) for c in classes]
        gen = BigGANGenerator(self.network, classes=classes, truncation=self.truncation)
        return self.respecified(gen.freeze(), classes=classes).to(self.device)

    def first_layer_weight(self) -> torch.Tensor:
        return self.network.generator.gen_z.sn()[:, :self.latent_dim].detach()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        # the 4x4 seed from gen_z (GANSpace's BigGAN layer)
        embed = self.network.embeddings(self.class_vectors(latent.shape[0]).to(latent))
        return self.network.generator.seed(torch.cat([latent, embed], dim=1)).flatten(1)

    def describe(self) -> dict:
        config = self.network.config
        return {**super().describe(), "kind": "biggan", "image_size": config["output_dim"],
                "classes_option": self.class_option, "classes": self.classes.tolist(), "truncation": self.truncation}


def _locate(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        for name in WEIGHT_NAMES:
            if (path / name).exists():
                weights = path / name
                break
        else:
            raise CheckpointError(f"{path} has no pytorch_model.bin; a biggan checkpoint is a folder with config.json "
                                  "and pytorch_model.bin (pytorch-pretrained-biggan's from_pretrained layout).")
    else:
        weights = path
    for name in ("config.json", weights.name.replace("pytorch_model.bin", "config.json")):
        if (weights.parent / name).exists():
            return weights, weights.parent / name
    return weights, None


def load(path: str | Path, classes=207, truncation: float = 1.0, num_random_classes: int = 8, seed: int = 0,
         trust_pickle: bool = False) -> BigGANGenerator:
    """Load a pytorch-pretrained-biggan folder (``config.json`` + ``pytorch_model.bin``) or its .bin.

    ``classes``: int, list of ints (cycled over a batch) or ``"random"`` (``num_random_classes``
    drawn with ``seed``); ``truncation`` in (0, 1]. Without config.json the 128x128 defaults are used.
    """
    weights, config_path = _locate(Path(path))
    config = dict(DEFAULT_CONFIG_128)
    note = "BigGANConfig() defaults (no config.json)"
    if config_path is not None:
        config.update(read_config(config_path))
        note = built_from_config(lambda: f"{config_path.name}: channel_width {config['channel_width']}, "
                                         f"{len(config['layers'])} layers", config_path)
    state = read_checkpoint(weights, trust_pickle=trust_pickle, kind="biggan")
    if not isinstance(state, dict) or "generator.gen_z.weight_orig" not in state:
        raise wrong_kind_error(state, "biggan", str(weights), "a state dict with 'embeddings.weight', 'generator.gen_z.*'")
    with torch.device("meta"):  # allocate once, when the checked tensors are assigned
        network = built_from_config(BigGANDeep, config_path or "the default BigGAN config", config)
    _check_and_assign(network, state, str(weights), note)
    return BigGANGenerator(network, classes=classes, truncation=truncation,
                           num_random_classes=num_random_classes, seed=seed).freeze()


def _check_and_assign(network: BigGANDeep, state: dict, source: str, note: str) -> None:
    # the network was built on the meta device: take the file's tensors instead of copying them
    load_strict(_FlatView(network), state, "biggan", source, config_note=note, assign=True)
