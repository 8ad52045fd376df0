"""StyleGAN2 (Karras et al. 2020) from rosinality/stylegan2-pytorch checkpoints.

Format: one ``torch.save`` dict. Converted official weights (``convert_weight.py``, e.g.
``stylegan2-ffhq-config-f.pt``) hold ``g_ema`` and ``latent_avg``; training checkpoints
(``checkpoint/NNNNNN.pt``) hold ``g``, ``d``, ``g_ema``, optimizer states and a pickled
``argparse.Namespace`` under ``args``. We read the file weights-only with ``Namespace``
allow-listed (it only carries strings and numbers), take ``g_ema``, and infer size, style
size, mapping depth and channel widths from the tensor shapes.

Latent spaces (``space=``):

- ``"z"``: the latent is z ~ N(0, I); the mapping network and truncation run inside.
- ``"w"``: the latent is w = mapping(z) (truncated when ``truncation < 1``); every style
  layer gets the same w. ``sample_latents`` returns such w.
- ``"w+"``: the latent is still one w of shape (B, style_dim) -- the *base* code -- and
  a shift moves only the style layers in ``layers`` (a half-open range, ``(0, 4)`` = layers
  0..3). A shift is not a property of one latent, so it goes through the protocol's
  :meth:`~latentdirs.generators.base.Generator.shifted` ``(latent, shift)``, which style-based
  adapters override (:class:`~latentdirs.generators.base.StyleSpaceGenerator`): layers in the range
  get ``latent + shift``, the others get ``latent`` itself.
  ``G(w)`` is the unshifted image; ``G(w + s)`` would move every layer (plain W), which is why
  every stage calls ``G.shifted(w, s)`` (equal to ``G(w + s)`` in the z and w spaces).

SeFa (``first_layer_weight``) factorizes the stacked modulation weights of the convolutions that
read the chosen style layers (all of them in w, as rosinality's ``closed_form_factorization.py``,
whose key filter also happens to keep ``to_rgb1``; we leave every toRGB out unless the range holds
nothing else); in the z space it is the first mapping layer. Noise is the stored buffers by default
(``randomize_noise=False``), so the same latent always gives the same image.

    >>> G = load_generator("stylegan2", "stylegan2-ffhq-config-f.pt", space="w+", layers=(0, 4))
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import GeneratorError, StyleSpaceGenerator
from .checkpoints import load_strict, read_checkpoint, wrong_kind_error

SQRT2 = math.sqrt(2.0)


def fir_kernel(taps: Sequence[float]) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insert upsampling by ``up``, zero padding, then a per-channel 2D FIR filter."""
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.view(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.view(batch, channels, height * up, width * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=channels)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with runtime He scaling and a learning-rate multiplier (as trained)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale


class FIRFilter(nn.Module):
    """Holds the blur kernel buffer (``kernel`` in the checkpoint) and its padding."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], gain: float, up: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps) * gain)
        self.pad = pad
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn(x, self.kernel, up=self.up, pad=self.pad)


class ModulatedConv(nn.Module):
    """Style-modulated convolution, optionally upsampling 2x (transposed conv + blur)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, blur_taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        if upsample:
            # pads chosen so that conv_transpose (2H+1) followed by the 4-tap blur gives 2H
            p = (len(blur_taps) - 2) - (kernel_size - 1)
            self.blur = FIRFilter(blur_taps, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.upsample = upsample
        self.demodulate = demodulate
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # Scaling the input channels by the style and the output channels by the demodulation
        # factor equals convolving with per-sample modulated weights, with one shared weight.
        style = self.modulation(style)  # (B, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * style[:, :, None, None]
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = self.blur(x)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt((weight[None] * style[:, None, :, None, None]).pow(2).sum([2, 3, 4]) + 1e-8)
            x = x * demod[:, :, None, None]
        return x


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class BiasLeakyReLU(nn.Module):
    """Bias, leaky ReLU 0.2, times sqrt(2) (the "fused" activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2


class StyledConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False,
                 blur_taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_channels, out_channels, 3, style_dim, upsample=upsample, blur_taps=blur_taps)
        self.noise = NoiseInjection()
        self.activate = BiasLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True,
                 blur_taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            # the skip image is upsampled with the same FIR filter
            p = len(blur_taps) - 2
            self.upsample = FIRFilter(blur_taps, pad=((p + 1) // 2 + 1, p // 2), gain=4.0, up=2)
        self.conv = ModulatedConv(in_channels, 3, 1, style_dim, demodulate=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))


def default_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """rosinality's width table."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
             256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {res: table[res] for res in table if res <= size}


class StyleGAN2Network(nn.Module):
    """The g_ema network: mapping (``style``) and synthesis, keys as in rosinality's ``Generator``."""

    def __init__(self, size: int, style_dim: int, n_mlp: int, channels: dict[int, int],
                 lr_mlp: float = 0.01, blur_taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.size = size
        self.style_dim = style_dim
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1  # convolutions, one noise map each
        self.n_latent = self.log_size * 2 - 2  # style inputs (convs and toRGBs share some)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True)
                                                  for _ in range(n_mlp)])
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], style_dim, blur_taps=blur_taps)
        self.to_rgb1 = ToRGB(channels[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for index in range(self.num_layers):
            res = 2 ** ((index + 5) // 2)
            self.noises.register_buffer(f"noise_{index}", torch.randn(1, 1, res, res))
        in_channels = channels[4]
        for log_res in range(3, self.log_size + 1):
            out_channels = channels[2 ** log_res]
            self.convs.append(StyledConv(in_channels, out_channels, style_dim, upsample=True, blur_taps=blur_taps))
            self.convs.append(StyledConv(out_channels, out_channels, style_dim, blur_taps=blur_taps))
            self.to_rgbs.append(ToRGB(out_channels, style_dim, blur_taps=blur_taps))
            in_channels = out_channels

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    def synthesis(self, styles: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        """Image from per-layer styles ``(B, n_latent, style_dim)``."""
        batch = styles.shape[0]
        if randomize_noise:
            noise = [torch.randn(batch, 1, *getattr(self.noises, f"noise_{i}").shape[2:], device=styles.device,
                                 dtype=styles.dtype) for i in range(self.num_layers)]
        else:
            noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        x = self.input.input.expand(batch, -1, -1, -1)
        x = self.conv1(x, styles[:, 0], noise[0])
        skip = self.to_rgb1(x, styles[:, 1])
        layer = 1
        for up_conv, conv, to_rgb, noise_up, noise_same in zip(self.convs[::2], self.convs[1::2], self.to_rgbs,
                                                               noise[1::2], noise[2::2]):
            x = up_conv(x, styles[:, layer], noise_up)
            x = conv(x, styles[:, layer + 1], noise_same)
            skip = to_rgb(x, styles[:, layer + 2], skip)
            layer += 2
        return skip

    def modulations_reading(self, layer: int) -> list[ModulatedConv]:
        """The convolutions whose style input is style layer ``layer`` (toRGB last)."""
        convs = [self.conv1.conv] + [c.conv for c in self.convs]  # conv k reads layer k
        to_rgbs = [self.to_rgb1.conv] + [t.conv for t in self.to_rgbs]  # toRGB j reads layer 2j+1
        found = [convs[layer]] if layer < len(convs) else []
        return found + ([to_rgbs[(layer - 1) // 2]] if layer % 2 == 1 else [])


def infer_config(state: dict) -> dict:
    """size, style_dim, n_mlp and channel widths from a g_ema state dict's shapes."""
    style_dim = state["style.1.weight"].shape[0]
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in state:
        n_mlp += 1
    num_to_rgbs = 0
    while f"to_rgbs.{num_to_rgbs}.conv.weight" in state:
        num_to_rgbs += 1
    size = 4 * 2 ** num_to_rgbs
    channels = {4: int(state["input.input"].shape[1])}
    for j in range(num_to_rgbs):
        channels[8 * 2 ** j] = int(state[f"to_rgbs.{j}.conv.weight"].shape[2])
    multiplier = None
    for candidate in (1, 2, 4):
        if default_channels(size, candidate) == channels:
            multiplier = candidate
            break
    return {"size": size, "style_dim": int(style_dim), "n_mlp": n_mlp, "channels": channels,
            "channel_multiplier": multiplier}


class StyleGAN2Generator(StyleSpaceGenerator):
    """A StyleGAN2 g_ema behind the protocol, in the z, w or w+ space (see the module docstring)."""

    def __init__(self, network: StyleGAN2Network, space: str = "z", layers=None, truncation: float = 1.0,
                 latent_avg: torch.Tensor | None = None, randomize_noise: bool = False, config: dict | None = None) -> None:
        super().__init__()
        self.set_style_space(space, layers, network.n_latent, truncation)
        self.network = network
        self.latent_dim = network.style_dim
        self.name = "stylegan2"
        self.randomize_noise = randomize_noise
        self.config = config or {}
        if latent_avg is not None:
            latent_avg = torch.as_tensor(latent_avg, dtype=torch.float32).reshape(1, -1)
            if latent_avg.shape[1] != self.latent_dim:
                raise GeneratorError(f"latent_avg has {latent_avg.shape[1]} values, the style size is {self.latent_dim}.")
        self.latent_avg_source = "checkpoint" if latent_avg is not None else None
        self.register_buffer("latent_avg", latent_avg, persistent=False)

    # -- spaces -------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.network.mapping(z)

    @torch.no_grad()
    def mean_w(self) -> torch.Tensor:
        """The truncation centre: ``latent_avg`` of the checkpoint, else the mean of 4096 mapped z."""
        if self.latent_avg is None:
            z = torch.randn(4096, self.latent_dim, generator=torch.Generator().manual_seed(0)).to(self.device)
            self.latent_avg = torch.cat([self.mapping(chunk) for chunk in z.split(512)]).mean(0, keepdim=True)
            self.latent_avg_source = "estimated from 4096 mapped z (seed 0)"
        return self.latent_avg

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.network.synthesis(ws, randomize_noise=self.randomize_noise)

    # -- protocol (sampling, synthesize, shifted and early_features are StyleSpaceGenerator's) --
    def first_layer_weight(self) -> torch.Tensor:
        if self.latent_space == "z":
            return self.network.style[1].effective_weight().detach()
        start, stop = self.layers
        convs = [m for layer in range(start, stop) for m in self.network.modulations_reading(layer)]
        # toRGB modulations only count when the range holds nothing else
        main = [m for m in convs if m.demodulate] or convs
        unique = list(dict.fromkeys(main))
        return torch.cat([m.modulation.effective_weight() for m in unique]).detach()

    def describe(self) -> dict:
        info = {**super().describe(), "kind": "stylegan2", **{k: v for k, v in self.config.items() if k != "channels"},
                "truncation": self.truncation, "randomize_noise": self.randomize_noise}
        if self.latent_space == "w+":
            info["layers"] = list(self.layers)
            info["shift_applies_to"] = "style layers [start, stop) (Generator.shifted)"
        if self.truncation < 1.0:
            info["latent_avg"] = self.latent_avg_source or "not computed yet"
        return info


def load(path: str | Path, space: str = "z", layers=None, truncation: float = 1.0, latent_avg=None,
         randomize_noise: bool = False, weights: str = "g_ema", lr_mlp: float = 0.01,
         trust_pickle: bool = False) -> StyleGAN2Generator:
    """Load a rosinality StyleGAN2 ``.pt`` (converted official weights or a training checkpoint).

    ``space``: "z", "w" or "w+"; ``layers``: style-layer range for w+ (half-open, e.g. (0, 4) or "0-4");
    ``truncation``: psi in (0, 1], centred on ``latent_avg`` (the checkpoint's, else estimated);
    ``weights``: which generator in the file ("g_ema" or "g"); ``lr_mlp``: the mapping
    network's learning-rate multiplier the model was trained with (0.01 in rosinality's code).
    """
    source = str(path)
    checkpoint = read_checkpoint(path, trust_pickle=trust_pickle, kind="stylegan2")
    if isinstance(checkpoint, dict) and weights in checkpoint:
        state = checkpoint[weights]
    elif isinstance(checkpoint, dict) and "style.1.weight" in checkpoint:
        state = checkpoint  # a bare g_ema state dict
    else:
        raise wrong_kind_error(checkpoint, "stylegan2", source, f"a dict with '{weights}' (rosinality format)")
    if not isinstance(state, dict) or "style.1.weight" not in state or "input.input" not in state:
        raise wrong_kind_error(state, "stylegan2", f"{source}['{weights}']", "a Generator state dict with style.*, input.input, conv1.*")
    config = infer_config(state)
    network = StyleGAN2Network(config["size"], config["style_dim"], config["n_mlp"], config["channels"], lr_mlp=lr_mlp)
    load_strict(network, state, "stylegan2", f"{source}['{weights}']",
                config_note=f"size {config['size']}, style_dim {config['style_dim']}, n_mlp {config['n_mlp']} inferred")
    if latent_avg is None and isinstance(checkpoint, dict) and isinstance(checkpoint.get("latent_avg"), torch.Tensor):
        latent_avg = checkpoint["latent_avg"]
    gen = StyleGAN2Generator(network, space=space, layers=layers, truncation=truncation, latent_avg=latent_avg,
                             randomize_noise=randomize_noise, config={**config, "weights": weights, "lr_mlp": lr_mlp})
    return gen.freeze()
