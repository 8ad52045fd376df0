"""A differentiable procedural generator whose factor directions are known ("planted").

What it renders (RGB, ``image_size`` px, default 32): a soft-edged disc on a flat grey
background. Five factors drive it. With ``response="saturating"`` (the default) each one
acts through its own nonlinearity, so the image change a shift causes depends on where z
starts:

====  ==================  ===================================================
 i    factor              effect of the factor value u_i (u ~ N(0, 1))
====  ==================  ===================================================
 0    horizontal position x = 0.5 + 0.3 tanh(u_0 / 1.5) (clamped near the edges)
 1    vertical position   y = 0.5 + 0.3 tanh(u_1 / 1.5)
 2    size                radius = 0.16 exp(0.3 u_2) (multiplicative)
 3    hue                 angle 0.5 u_3 on the colour wheel
 4    background          grey level sigmoid(u_4)
====  ==================  ===================================================

With ``response="linear"`` the same parameters move linearly in u (x = 0.5 + 0.05 u_0,
radius = 0.16 + 0.015 u_2, background = 0.5 + 0.06 u_4, ...), so a shift's effect is
nearly the same for every z: the "linearly entangled" control.

The factors are entangled with the latent by a fixed random rotation Q (seeded):
``u = Q^T z``, so the true factor direction i is the column ``Q[:, i]``. The remaining
``latent_dim - 5`` coordinates of u are *nuisance*. With ``nuisance_jitter`` (default 1)
they nudge every factor by ``jitter * sin(w_i . u_nuisance + b_i)``: a shift along a nuisance
direction changes the scene by a z-dependent amount of z-dependent sign, as many directions
of a real GAN do. The default is 1 because at 0 nuisance directions change nothing, every
direction with any factor component gives a consistent change, and even random directions
score RCA 0.97-1.00: RCA could not tell LD from the baselines (docs/planted.md). With
``nuisance_strength > 0`` they also add a texture (a weighted sum of fixed random patterns),
an easy, consistent signature for a classifier.
"""
from __future__ import annotations

import math

import torch

from ..configs import is_integer, is_number
from .base import Generator, GeneratorError, GroundTruth

FACTOR_NAMES = ("x", "y", "size", "hue", "background")
RESPONSES = ("saturating", "linear")


def _positive_numbers(values) -> tuple[float, ...] | None:
    """``values`` as floats, or None unless it is a sequence (not a string) of positive finite numbers."""
    if isinstance(values, (str, bytes)):
        return None
    try:
        items = list(values)
        floats = tuple(float(v) for v in items if not isinstance(v, (bool, str, bytes)))
    except (TypeError, ValueError):
        return None
    return floats if len(floats) == len(items) and all(math.isfinite(v) and v > 0 for v in floats) else None


class PlantedGenerator(Generator):
    latent_space = "z"

    def __init__(self, latent_dim: int = 16, image_size: int = 32, seed: int = 0,
                 nuisance_strength: float = 0.0, response: str = "saturating",
                 factor_scales: tuple[float, ...] | None = None, nuisance_jitter: float = 1.0,
                 edge_softness: float = 0.03) -> None:
        super().__init__()
        num_factors = len(FACTOR_NAMES)
        # -O values arrive as JSON: a string or float here was a TypeError from deep inside torch
        for key, value in (("latent_dim", latent_dim), ("image_size", image_size), ("seed", seed)):
            if not is_integer(value):
                raise GeneratorError(f"the planted generator's {key} must be an int, got {value!r}")
        latent_dim, image_size, seed = int(latent_dim), int(image_size), int(seed)
        for key, value in (("nuisance_strength", nuisance_strength), ("nuisance_jitter", nuisance_jitter),
                           ("edge_softness", edge_softness)):
            if not is_number(value) or not math.isfinite(value):
                raise GeneratorError(f"the planted generator's {key} must be a finite number, got {value!r}")
        if latent_dim < num_factors:
            raise ValueError(f"the planted generator needs latent_dim >= {num_factors} (one per factor), got {latent_dim}")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {image_size}")
        if response not in RESPONSES:
            raise ValueError(f"response must be one of {', '.join(RESPONSES)}, got {response!r}")
        if nuisance_strength < 0 or nuisance_jitter < 0:
            raise ValueError(f"nuisance_strength and nuisance_jitter must be >= 0, got {nuisance_strength}, {nuisance_jitter}")
        # a string would be read character by character, a NaN scale gives NaN images
        scales = (1.0,) * num_factors if factor_scales is None else _positive_numbers(factor_scales)
        if scales is None or len(scales) != num_factors:
            raise GeneratorError(f"factor_scales needs {num_factors} positive finite numbers, got {factor_scales!r}")
        self.name = "planted"
        self.latent_dim, self.image_size, self.seed = latent_dim, image_size, seed
        self.nuisance_strength, self.response, self.edge_softness = nuisance_strength, response, edge_softness
        self.nuisance_jitter = nuisance_jitter
        g = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(latent_dim, latent_dim, generator=g, dtype=torch.float64))
        self.register_buffer("rotation", (q * torch.sign(torch.diagonal(r))).float())
        num_nuisance = latent_dim - num_factors
        self.register_buffer("nuisance_patterns",
                             torch.randn(num_nuisance, 3, image_size, image_size, generator=g) / math.sqrt(max(num_nuisance, 1)))
        # jitter: factor i is nudged by sin(w_i . u_nuisance + b_i), a z-dependent, inconsistent effect
        self.register_buffer("jitter_weights", torch.randn(num_factors, num_nuisance, generator=g) / math.sqrt(max(num_nuisance, 1)))
        self.register_buffer("jitter_phases", torch.rand(num_factors, generator=g) * 2 * math.pi)
        coords = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size
        self.register_buffer("grid_y", coords.view(1, image_size, 1))
        self.register_buffer("grid_x", coords.view(1, 1, image_size))
        self.register_buffer("factor_scales", torch.tensor(scales))
        self.register_buffer("phases", torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3]))
        self.freeze()

    def describe(self) -> dict:
        return {**super().describe(), "image_size": self.image_size, "seed": self.seed,
                "nuisance_strength": self.nuisance_strength, "nuisance_jitter": self.nuisance_jitter,
                "response": self.response,
                "factor_scales": self.factor_scales.tolist(), "factor_names": list(FACTOR_NAMES)}

    @property
    def num_factors(self) -> int:
        return len(FACTOR_NAMES)

    def factor_directions(self) -> torch.Tensor:
        """(latent_dim, 5), orthonormal: column i moves only factor i."""
        return self.rotation[:, :len(FACTOR_NAMES)]

    def first_layer_weight(self) -> torch.Tensor:
        # The first (and only) linear map of the latent is u = Q^T z.
        return self.rotation.t()

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        return self.factors(latent)[:, :len(FACTOR_NAMES)]

    def factors(self, latent: torch.Tensor) -> torch.Tensor:
        """Factor coordinates u = Q^T z (batch, latent_dim); the first 5 are the factors."""
        return latent @ self.rotation

    def scene(self, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rendered parameters per latent: centre x, y and radius (fractions of the
        image side), hue angle (radians) and background grey level (in [0, 1])."""
        u = self.factors(latent)
        t = u[:, :len(FACTOR_NAMES)]
        if self.nuisance_jitter > 0 and self.latent_dim > len(FACTOR_NAMES):
            t = t + self.nuisance_jitter * torch.sin(u[:, len(FACTOR_NAMES):] @ self.jitter_weights.t() + self.jitter_phases)
        t = t * self.factor_scales
        if self.response == "saturating":
            return {"x": 0.5 + 0.3 * torch.tanh(t[:, 0] / 1.5), "y": 0.5 + 0.3 * torch.tanh(t[:, 1] / 1.5),
                    "radius": 0.16 * torch.exp(0.2 * t[:, 2].clamp(-8, 8)), "hue": 0.6 * t[:, 3],
                    "background": 0.5 + 0.1 * torch.tanh(t[:, 4] / 3)}
        # linear: slopes chosen so that |u| <= 8 (a typical z plus the largest shift) stays in frame
        return {"x": 0.5 + 0.05 * t[:, 0], "y": 0.5 + 0.05 * t[:, 1],
                "radius": (0.16 + 0.02 * t[:, 2]).clamp_min(0.01), "hue": 0.4 * t[:, 3],
                "background": 0.5 + 0.012 * t[:, 4]}

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        s = {k: v.view(-1, 1, 1) for k, v in self.scene(latent).items()}
        dist = torch.sqrt((self.grid_x - s["x"]) ** 2 + (self.grid_y - s["y"]) ** 2 + 1e-8)
        disc = torch.sigmoid((s["radius"] - dist) / self.edge_softness).unsqueeze(1)
        colour = (0.5 + 0.5 * torch.cos(s["hue"].view(-1, 1) + self.phases)).view(-1, 3, 1, 1)
        image = disc * colour + (1 - disc) * s["background"].unsqueeze(1)
        if self.nuisance_strength > 0 and self.latent_dim > len(FACTOR_NAMES):
            u = self.factors(latent)
            texture = torch.einsum("bn,nchw->bchw", u[:, len(FACTOR_NAMES):], self.nuisance_patterns)
            image = image + self.nuisance_strength * texture
        return (image * 2 - 1).clamp(-1, 1)

    def ground_truth(self, bins: int = 10) -> GroundTruth:
        """Its own scenes with the factor values binned into ``bins`` levels (it knows its factors)."""
        return GroundTruth(tuple(FACTOR_NAMES), (bins,) * len(FACTOR_NAMES),
                           lambda num, seed: self.sample_dataset(num, seed=seed, bins=bins))

    def sample_dataset(self, num: int, seed: int = 0, bins: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (num, 3, H, W) and their factor values discretized into ``bins`` equally
        likely bins (num, 5), for ground-truth metrics (MIG, DCI...)."""
        g = torch.Generator().manual_seed(seed)
        z = self.sample_latents(num, generator=g)
        with torch.no_grad():
            images = self(z)
            u = self.factors(z)[:, :len(FACTOR_NAMES)]
        # u_i ~ N(0, 1): equal-probability bins through the normal quantiles.
        probs = torch.arange(1, bins, dtype=torch.float64) / bins
        edges = (math.sqrt(2) * torch.erfinv(2 * probs - 1)).float()
        return images, torch.bucketize(u.contiguous(), edges)


def load(latent_dim: int = 16, image_size: int = 32, seed: int = 0, nuisance_strength: float = 0.0,
         response: str = "saturating", factor_scales: tuple[float, ...] | None = None,
         nuisance_jitter: float = 1.0) -> PlantedGenerator:
    return PlantedGenerator(latent_dim=latent_dim, image_size=image_size, seed=seed, nuisance_strength=nuisance_strength,
                            response=response, factor_scales=factor_scales, nuisance_jitter=nuisance_jitter)
