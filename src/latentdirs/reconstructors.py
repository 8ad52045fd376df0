"""The reconstructor R: from an image pair (G(z), G(z + eps A e_k)), concatenated along
channels, predict the direction index k (K-way logits) and the signed shift eps.

Both networks end in adaptive pooling, so they accept any image size the generator makes.
"""
from __future__ import annotations

import torch
from torch import nn

RECONSTRUCTORS = ("lenet", "resnet18")
LENET_MIN_SIZE = 12
"""Below this, LeNet's last 5x5 convolution is larger than its (padded) input."""


class TwoHeads(nn.Module):
    """A K-way direction classifier and a scalar shift regressor on shared features."""

    def __init__(self, features: int, num_directions: int) -> None:
        super().__init__()
        self.direction = nn.Linear(features, num_directions)
        self.shift = nn.Linear(features, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.direction(h), self.shift(h).squeeze(1)


class LeNetReconstructor(nn.Module):
    """LeNet as in the paper (MNIST / AnimeFaces): three 5x5 convs, two 2x2 pools, one dense layer.

    ``width`` scales every layer (the paper's default is 2: 6, 16, 120, 84 units); "same" padding
    on the first two convs keeps 16x16 inputs usable.
    Adaptive pooling after the last conv lets it take any image size >= 16.
    """

    def __init__(self, image_channels: int, num_directions: int, width: int = 2) -> None:
        super().__init__()
        c1, c2, c3, hidden = 3 * width, 8 * width, 60 * width, 42 * width
        self.features = nn.Sequential(
            nn.Conv2d(2 * image_channels, c1, 5, padding=2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.BatchNorm2d(c2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5, padding=1), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(c3, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        )
        self.heads = TwoHeads(hidden, num_directions)

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(pair))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18Reconstructor(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks, 64..512 channels) with 2C input channels.

    Small images (< 64 px) get a 3x3 stride-1 stem instead of the 7x7/2 + max-pool one,
    so that 32x32 inputs are not reduced to 1x1 before the last stage.
    """

    def __init__(self, image_channels: int, num_directions: int, image_size: int = 128, width: int = 64) -> None:
        super().__init__()
        cin = 2 * image_channels
        if image_size >= 64:
            stem = [nn.Conv2d(cin, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, 2, 1)]
        else:
            stem = [nn.Conv2d(cin, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(c, width * mult, stride), BasicBlock(width * mult, width * mult, 1)]
            c = width * mult
        self.features = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = TwoHeads(c, num_directions)

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(pair))


def make_reconstructor(kind: str, image_shape: tuple[int, int, int], num_directions: int,
                       width: int | None = None) -> nn.Module:
    """Build a reconstructor for images of ``image_shape`` = (C, H, W); ``width`` scales it."""
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (channels, height, width), each >= 1, got {tuple(image_shape)}")
    if num_directions < 1 or (width is not None and width < 1):
        raise ValueError(f"need num_directions >= 1 and width >= 1, got {num_directions} and {width}")
    channels, height, img_width = image_shape
    if kind == "lenet" and min(height, img_width) < LENET_MIN_SIZE:
        raise ValueError(f"the lenet reconstructor needs images of at least {LENET_MIN_SIZE}x{LENET_MIN_SIZE} "
                         f"pixels, got {height}x{img_width}: use resnet18")
    if kind == "lenet":
        return LeNetReconstructor(channels, num_directions, width=width or 2)
    if kind == "resnet18":
        return ResNet18Reconstructor(channels, num_directions, image_size=min(height, img_width), width=width or 64)
    raise ValueError(f"unknown reconstructor {kind!r}; choose one of {', '.join(RECONSTRUCTORS)}")
