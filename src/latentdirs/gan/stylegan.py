"""A small StyleGAN2-style generator for 64x64 scenes, sized for CPU training.

z -> mapping MLP -> w; a learned 4x4 constant is refined by modulated 3x3 convolutions, one
style vector per convolution (W+ = ``num_ws`` copies of w, one per layer), with bilinear
upsampling + conv instead of transposed convs (no checkerboard) and skip connections to RGB
at every resolution. No noise inputs: the image is a deterministic function of the latent,
which is what direction discovery needs.

Modulation is applied to the activations and demodulation to the outputs (StyleGAN2's
"non-fused" path): the same arithmetic as modulating the weights, at the cost of a plain
convolution, which is what a CPU is fast at.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class StyleNetworkConfig:
    latent_dim: int = 64
    """Size of z ~ N(0, I) and of w."""
    mapping_layers: int = 4
    """Depth of the z -> w MLP."""
    base_channels: int = 16
    """Channels at 64x64; each halving of the resolution doubles them, up to ``max_channels``."""
    max_channels: int = 128
    image_size: int = 64
    image_channels: int = 3
    widths: dict[int, int] = field(default_factory=dict)
    """Channels at some resolutions, overriding the formula: ``{32: 64, 64: 32}`` doubles the two finest
    blocks of the base-16 network (see :mod:`latentdirs.gan.widen` for growing trained weights so)."""

    def __post_init__(self) -> None:
        self.widths = {int(k): int(v) for k, v in (self.widths or {}).items()}  # JSON keys are strings
        resolutions = [2 ** i for i in range(2, int(math.log2(self.image_size)) + 1)]
        bad = {k: v for k, v in self.widths.items() if k not in resolutions or v < 1}
        if bad:  # a key that is no block's resolution would be ignored: the network silently keeps its widths
            raise ValueError(f"widths {bad}: keys must be resolutions of the network "
                             f"({', '.join(map(str, resolutions))}) and values channel counts >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    def channels(self, resolution: int) -> int:
        if resolution in self.widths:
            return self.widths[resolution]
        return min(self.max_channels, self.base_channels * self.image_size // resolution)


class EqualLinear(nn.Module):
    """Linear layer with weights scaled at run time (equalized learning rate, as in StyleGAN)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_multiplier: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


class MappingNetwork(nn.Module):
    def __init__(self, latent_dim: int, num_layers: int) -> None:
        super().__init__()
        # lr_multiplier 0.01: the mapping learns 100x slower than the synthesis, which keeps W smooth.
        self.layers = nn.Sequential(*[EqualLinear(latent_dim, latent_dim, lr_multiplier=0.01, activation=True)
                                      for _ in range(num_layers)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # project z to the sphere of radius sqrt(d)
        return self.layers(z)


class ModulatedConv(nn.Module):
    """Conv whose input channels are scaled by a style from w, outputs renormalized (demodulation)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 3,
                 demodulate: bool = True, upsample: bool = False, activation: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.demodulate, self.upsample, self.activation = demodulate, upsample, activation

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        weight = self.weight * self.weight_gain
        if not self.demodulate:
            styles = styles * self.weight_gain  # the RGB layers' styles are scaled instead (StyleGAN2)
            weight = self.weight
        x = x * styles[:, :, None, None]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:  # = 1 / ||W * s|| per sample and output channel
            norm = (weight.square().sum((2, 3)) @ styles.square().t()).t()  # (N, out)
            x = x * torch.rsqrt(norm + 1e-8)[:, :, None, None]
        x = x + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


class StyleGenerator(nn.Module):
    """``forward(z)``; ``mapping(z) -> w``; ``synthesis(ws)`` with ws of shape (N, num_ws, latent_dim)."""

    def __init__(self, config: StyleNetworkConfig) -> None:
        super().__init__()
        self.config = config
        d = config.latent_dim
        resolutions = [2 ** i for i in range(2, int(math.log2(config.image_size)) + 1)]
        if 2 ** (len(resolutions) + 1) != config.image_size or config.image_size < 16:
            raise ValueError(f"image_size must be a power of two >= 16, got {config.image_size}")
        self.mapping = MappingNetwork(d, config.mapping_layers)
        c4 = config.channels(4)
        self.constant = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(c4, c4, d)])
        self.to_rgbs = nn.ModuleList([ModulatedConv(c4, config.image_channels, d, 1, demodulate=False,
                                                    activation=False)])
        for res in resolutions[1:]:
            c_in, c_out = config.channels(res // 2), config.channels(res)
            self.convs.append(ModulatedConv(c_in, c_out, d, upsample=True))
            self.convs.append(ModulatedConv(c_out, c_out, d))
            self.to_rgbs.append(ModulatedConv(c_out, config.image_channels, d, 1, demodulate=False,
                                              activation=False))
        self.num_ws = len(self.convs)
        """One w per convolution; each RGB layer reads the w of the convolution before it."""
        # Running mean of w: the centre of W, for truncation and as the start of inversion.
        self.register_buffer("w_avg", torch.zeros(d))

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"expected ws of shape (batch, {self.num_ws}, {self.config.latent_dim}), "
                             f"got {tuple(ws.shape)}")
        x = self.constant.expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0])
        image = self.to_rgbs[0](x, ws[:, 0])
        for i, to_rgb in enumerate(self.to_rgbs[1:]):
            layer = 1 + 2 * i
            x = self.convs[layer](x, ws[:, layer])
            x = self.convs[layer + 1](x, ws[:, layer + 1])
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
            image = image + to_rgb(x, ws[:, layer + 1])
        return image

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, d) -> ws (N, num_ws, d): the same style at every layer (plain W)."""
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z)))

    def style_weights(self, layers: range | None = None) -> torch.Tensor:
        """The affine maps w -> style of the convolutions in ``layers`` stacked, (sum of in_channels, d): SeFa's W."""
        layers = range(self.num_ws) if layers is None else layers
        return torch.cat([self.convs[i].affine.weight * self.convs[i].affine.weight_gain for i in layers])


def mixed_styles(generator: StyleGenerator, z: torch.Tensor, probability: float) -> torch.Tensor:
    """ws for a training batch: with ``probability``, a second latent takes over from a random layer on.

    Style mixing keeps neighbouring layers from relying on each other, so W+ edits stay local.
    """
    w = generator.mapping(z)
    ws = generator.broadcast(w)
    if probability <= 0 or torch.rand(()) >= probability:
        return ws
    w2 = generator.mapping(torch.randn_like(z))
    cutoff = int(torch.randint(1, generator.num_ws, ()))
    return torch.cat([ws[:, :cutoff], generator.broadcast(w2)[:, cutoff:]], dim=1)


class ModulatedBatchNorm(nn.Module):
    """BatchNorm without its own affine; a style from w sets the per-channel scale and bias (as AdaIN does)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = EqualLinear(w_dim, channels, bias_init=1.0)
        self.bias = EqualLinear(w_dim, channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.scale(w)[:, :, None, None] + self.bias(w)[:, :, None, None]


class MappedDCGANGenerator(nn.Module):
    """The upsample + conv DCGAN, fed by a mapping network, each block's normalised features styled by its own w.

    BatchNorm synthesis learns fast on a CPU budget (it is the 'dcgan-up' network), while the
    mapping network and per-block styles give the W and W+ spaces that SeFa and GANSpace are
    usually run in. ws: w_0 feeds the first Linear layer, w_i the i-th upsampling block.
    """

    def __init__(self, config: StyleNetworkConfig) -> None:
        super().__init__()
        self.config = config
        d = config.latent_dim
        steps = int(math.log2(config.image_size)) - 2
        if 4 * 2 ** steps != config.image_size or config.image_size < 16:
            raise ValueError(f"image_size must be a power of two >= 16, got {config.image_size}")
        resolutions = [4 * 2 ** i for i in range(steps + 1)]
        self.mapping = MappingNetwork(d, config.mapping_layers)
        c4 = config.channels(4)
        self.fc = EqualLinear(d, 16 * c4)
        self.fc_norm = ModulatedBatchNorm(c4, d)
        self.convs = nn.ModuleList(nn.Conv2d(config.channels(r // 2), config.channels(r), 3, padding=1, bias=False)
                                   for r in resolutions[1:])
        self.norms = nn.ModuleList(ModulatedBatchNorm(config.channels(r), d) for r in resolutions[1:])
        self.to_rgb = nn.Conv2d(config.channels(config.image_size), config.image_channels, 3, padding=1)
        self.num_ws = 1 + steps
        self.register_buffer("w_avg", torch.zeros(d))

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"expected ws of shape (batch, {self.num_ws}, {self.config.latent_dim}), "
                             f"got {tuple(ws.shape)}")
        x = self.fc(ws[:, 0]).view(ws.shape[0], -1, 4, 4)
        x = torch.relu(self.fc_norm(x, ws[:, 0]))
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = torch.relu(norm(conv(x), ws[:, i + 1]))
        return torch.tanh(self.to_rgb(x))

    broadcast = StyleGenerator.broadcast

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z)))

    def style_weights(self, layers: range | None = None) -> torch.Tensor:
        """The linear maps from w of the layers in ``layers`` stacked, (outputs, d): SeFa's W."""
        layers = range(self.num_ws) if layers is None else layers
        maps = [[self.fc, self.fc_norm.scale, self.fc_norm.bias]] + [[n.scale, n.bias] for n in self.norms]
        return torch.cat([m.weight * m.weight_gain for i in layers for m in maps[i]])
