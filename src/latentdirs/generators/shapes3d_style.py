"""The style-based shapes3d generator (:mod:`latentdirs.gan.stylegan`) behind the protocol, in Z, W or W+.

- ``space="z"``: the latent is z ~ N(0, I); the mapping network runs inside.
- ``space="w"``: the latent is w = mapping(z); every layer gets it.
- ``space="w+"``: the latent is one base w; a shift moves only the style layers in ``layers``
  (half-open, ``(0, 3)`` = the three coarsest convolutions), through :meth:`shifted`.

SeFa's weight is the first mapping layer in Z and the stacked style affines of the chosen layers
in W / W+; GANSpace works on w. Images are clamped to [-1, 1] (the network's output is linear).
"""
from __future__ import annotations

import torch

from ..gan.stylegan import StyleGenerator
from .base import Generator, GeneratorError


def parse_layer_range(layers, num_ws: int) -> tuple[int, int]:
    if layers is None:
        return 0, num_ws
    if isinstance(layers, str):
        try:
            layers = tuple(int(part) for part in layers.split("-"))
        except ValueError:
            raise GeneratorError(f"layers={layers!r}: expected 'start-stop', e.g. '0-3'.") from None
    start, stop = (int(v) for v in layers)
    if not 0 <= start < stop <= num_ws:
        raise GeneratorError(f"layers=({start}, {stop}) is not a non-empty range inside the generator's "
                             f"{num_ws} style layers (half-open: (0, 3) means layers 0, 1, 2).")
    return start, stop


class StyleShapes3DGenerator(Generator):
    name = "shapes3d"

    def __init__(self, network: StyleGenerator, config: dict | None = None, space: str = "z", layers=None,
                 truncation: float = 1.0) -> None:
        super().__init__()
        if space not in ("z", "w", "w+"):
            raise GeneratorError(f"space={space!r}: expected 'z', 'w' or 'w+'.")
        if layers is not None and space != "w+":
            raise GeneratorError(f"layers={layers!r} only applies to space='w+' (got space={space!r}).")
        if not 0.0 < truncation <= 1.0:
            raise GeneratorError(f"truncation={truncation}: expected a value in (0, 1].")
        self.network = network.eval()
        self.latent_dim = network.config.latent_dim
        self.latent_space = space
        self.layers = parse_layer_range(layers, network.num_ws)
        self.truncation = float(truncation)
        self.config = config or {}
        self.freeze()

    def mapped(self, z: torch.Tensor) -> torch.Tensor:
        w = self.network.mapping(z)
        if self.truncation < 1.0:
            w = torch.lerp(self.network.w_avg, w, self.truncation)
        return w

    def sample_latents(self, num: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        z = super().sample_latents(num, generator=generator, device=device)
        if self.latent_space == "z":
            return z
        with torch.no_grad():
            return self.mapped(z.to(self.device)).to(z.device)

    def styles(self, latent: torch.Tensor) -> torch.Tensor:
        w = self.mapped(latent) if self.latent_space == "z" else latent
        return self.network.broadcast(w)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.network.synthesis(self.styles(latent)).clamp(-1, 1)

    def shifted(self, latent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        if self.latent_space != "w+":
            return self(latent + shift)
        start, stop = self.layers
        mask = torch.zeros(self.network.num_ws, 1, dtype=latent.dtype, device=latent.device)
        mask[start:stop] = 1.0
        return self.network.synthesis(self.styles(latent) + mask * shift[:, None, :]).clamp(-1, 1)

    def first_layer_weight(self) -> torch.Tensor:
        if self.latent_space == "z":
            first = self.network.mapping.layers[0]
            return (first.weight * first.weight_gain).detach()
        return self.network.style_weights(range(*self.layers)).detach()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        return self.mapped(latent) if self.latent_space == "z" else latent

    def describe(self) -> dict:
        training = self.config.get("training", {})
        info = {**super().describe(), "architecture": "style", "base_channels": self.network.config.base_channels,
                "training_steps": training.get("steps"), "num_ws": self.network.num_ws}
        if self.latent_space == "w+":
            info["layers"] = list(self.layers)
        if self.truncation < 1.0:
            info["truncation"] = self.truncation
        return info
