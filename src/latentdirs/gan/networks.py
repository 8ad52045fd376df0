"""A small DCGAN for 64x64 images: generator with a Linear first layer, SN discriminator.

The generator's first layer is a plain ``nn.Linear(latent_dim, 4*4*C)``: SeFa factorizes
exactly this weight, and GANSpace reads the activations right after it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class NetworkConfig:
    latent_dim: int = 64
    """Size of the latent z ~ N(0, I)."""
    base_channels: int = 32
    """Width unit: the generator starts at 8x this many channels on a 4x4 grid and halves per upsampling."""
    image_size: int = 64
    """Output resolution (a power of two >= 16)."""
    image_channels: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def _num_upsamplings(image_size: int) -> int:
    steps = image_size.bit_length() - 1 - 2  # from 4x4 to image_size
    if image_size < 16 or 4 * 2 ** steps != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return steps


class DCGANGenerator(nn.Module):
    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_upsamplings(config.image_size)
        width = config.base_channels * 2 ** (steps - 1)
        self.start_channels = width
        self.fc = nn.Linear(config.latent_dim, 4 * 4 * width)
        self.fc_norm = nn.BatchNorm2d(width)
        blocks = []
        for _ in range(steps - 1):
            blocks += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(inplace=True)]
            width //= 2
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.ConvTranspose2d(width, config.image_channels, 4, 2, 1)

    def first_block(self, z: torch.Tensor) -> torch.Tensor:
        """Linear -> 4x4 grid -> BN -> ReLU: the 'early features' GANSpace does PCA on."""
        x = self.fc(z).view(z.shape[0], self.start_channels, 4, 4)
        return torch.relu(self.fc_norm(x))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(self.first_block(z))))


class UpsampleGenerator(nn.Module):
    """The DCGAN with each transposed conv replaced by bilinear upsampling + 3x3 conv (no checkerboard).

    Channels follow ``channels(resolution) = min(8 * base, base * 64 / resolution)``; the first layer
    is the same ``nn.Linear`` the DCGAN has, so SeFa and GANSpace read it the same way.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_upsamplings(config.image_size)
        channels = [min(8 * config.base_channels, config.base_channels * 2 ** (steps - i)) for i in range(steps + 1)]
        self.start_channels = channels[0]
        self.fc = nn.Linear(config.latent_dim, 4 * 4 * channels[0])
        self.fc_norm = nn.BatchNorm2d(channels[0])
        blocks = []
        for c_in, c_out in zip(channels, channels[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(channels[-1], config.image_channels, 3, padding=1)

    first_block = DCGANGenerator.first_block

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(self.first_block(z))))


class DCGANDiscriminator(nn.Module):
    """Stride-2 4x4 convs, LeakyReLU, a linear head; spectral norm unless an R1 penalty replaces it."""

    def __init__(self, config: NetworkConfig, width: int | None = None, spectral: bool = True) -> None:
        super().__init__()
        norm = spectral_norm if spectral else (lambda layer: layer)
        steps = _num_upsamplings(config.image_size)
        width = width or config.base_channels
        layers = [norm(nn.Conv2d(config.image_channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(steps - 1):
            layers += [norm(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = norm(nn.Linear(width * 16, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1)).squeeze(1)


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * live for parameters; buffers (BN statistics) are copied."""
    for p_ema, p in zip(ema.parameters(), live.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), live.buffers()):
        b_ema.copy_(b)


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, num_batches: int = 20, batch_size: int = 128,
                          seed: int = 0) -> None:
    """Recompute BN running statistics for *these* weights (the EMA weights never saw a batch).

    Uses a cumulative average over ``num_batches`` fresh latent batches, then leaves eval mode on.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    saved_momentum = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    generator.train()
    rng = torch.Generator().manual_seed(seed)
    for _ in range(num_batches):
        generator(torch.randn(batch_size, generator.config.latent_dim, generator=rng))
    for m, momentum in zip(norms, saved_momentum):
        m.momentum = momentum
    generator.eval()
