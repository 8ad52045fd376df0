"""GAN inversion: a real image -> the latent whose generated image looks like it.

Two stages, both through the :class:`~latentdirs.generators.base.Generator` protocol, so the
latent is whatever space the adapter moves in (Z, W, or W+ with a layer range):

1. an :class:`Encoder` trained on generated pairs ``(G(z), z)`` gives a first guess in one
   forward pass (without one, the best of ``num_starts`` prior samples is the guess);
2. a few hundred Adam steps on the pixel loss ``|G(w) - x|^2`` plus a weak prior term that
   keeps ``w`` where the generator was trained (mean and spread of sampled latents).

``per_layer=True`` (style-based generators in W or W+) optimizes one w per style layer
instead of a single w (Image2StyleGAN's W+): more freedom to match the image; the result's
latents are per-layer styles ``(N, num_ws, latent_dim)`` that ``G`` and ``G.shifted`` take,
so directions found in W or W+ edit them as they edit a single w.

No perceptual network: the only image model we could use is the factor classifier, which
was trained with labels and is what the editing benchmark measures with.

    >>> enc = train_encoder(G, steps=2000)                      # ~4 CPU-minutes for shapes3d
    >>> enc.save_pretrained("scratch/encoder")
    >>> result = invert(G, load_image("photo.png", G), encoder=enc)
    >>> result.latents, result.images, result.pixel_error
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from .configs import check_declared
from .generators.base import Generator

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_CONFIG = "encoder.json"
ENCODER_FORMAT = "latentdirs.encoder/1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class InversionError(ValueError):
    """An image or encoder that cannot be inverted with this generator."""


# -- input checks ------------------------------------------------------------------------
def check_images(generator: Generator, images: torch.Tensor) -> torch.Tensor:
    """``images`` as float (N, C, H, W) in [-1, 1] matching the generator's output, or a clear error."""
    if not isinstance(images, torch.Tensor):
        raise InversionError(f"images must be a torch.Tensor, got {type(images).__name__}; "
                             "use load_image(path, generator) for files")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    channels, height, width = generator.image_shape
    if images.dim() != 4:
        raise InversionError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if len(images) == 0:  # min() of an empty tensor would fail with torch's reduction message
        raise InversionError(f"no images to invert: got an empty batch of shape {tuple(images.shape)}")
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        raise InversionError(f"images look channels-last {tuple(images.shape)}; permute to (N, C, H, W)")
    if images.shape[1] != channels:
        raise InversionError(f"{generator.name} makes {channels}-channel images, got {images.shape[1]} channels")
    if tuple(images.shape[2:]) != (height, width):
        raise InversionError(f"{generator.name} makes {height}x{width} images, got "
                             f"{images.shape[2]}x{images.shape[3]}; resize first (load_image(..., resize=True))")
    if not images.is_floating_point():
        raise InversionError(f"images must be float in [-1, 1], got {images.dtype} (uint8: x / 127.5 - 1)")
    if not torch.isfinite(images).all():
        raise InversionError("images contain NaN or inf")
    low, high = images.min().item(), images.max().item()
    if low < -1.01 or high > 1.01:
        hint = " (looks like 0..255: x / 127.5 - 1)" if high > 2 else ""
        raise InversionError(f"images must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]{hint}")
    return images.float().clamp(-1, 1)


def load_image(path: str | Path, generator: Generator, resize: bool = False) -> torch.Tensor:
    """A PNG/JPEG file as a (1, C, H, W) tensor in [-1, 1] for ``generator``.

    With ``resize`` a non-matching image is centre-cropped to a square and resized; without,
    a size mismatch is an error (silent resizing hides that the generator never saw such images).
    """
    from PIL import Image, UnidentifiedImageError
    path = Path(path)
    if not path.is_file():
        raise InversionError(f"no such image file: {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        # ValueError: a PNG text or ICC chunk that inflates past PIL's limits
        raise InversionError(f"{path} is not an image PIL can read (PNG, JPEG, WebP, BMP): {exc}") from None
    return image_to_tensor(image, generator, resize, str(path))


def image_to_tensor(image, generator: Generator, resize: bool = False, what: str = "the image") -> torch.Tensor:
    """A PIL image -> (1, C, H, W) in [-1, 1], converted to the generator's channels and size."""
    import numpy as np
    from PIL import Image
    channels, height, width = generator.image_shape
    if image.size != (width, height):
        if not resize:
            raise InversionError(f"{what} is {image.width}x{image.height}; {generator.name} makes {width}x{height} "
                                 "images. Resize it, or pass resize=True (--resize) to centre-crop and resize.")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((width, height), Image.LANCZOS)
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels become white, not the black that a plain convert() leaves.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32).reshape(height, width, channels)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).div(127.5).sub(1.0)


# -- the encoder -------------------------------------------------------------------------
@dataclass
class EncoderConfig:
    latent_dim: int
    image_channels: int = 3
    image_size: int = 64
    width: int = 32
    """channels of the first conv layer; doubled at each stride-2 layer up to 8x."""


class Encoder(nn.Module):
    """Stride-2 convolutions down to 4x4, then a linear map to the latent. No batch norm, so an
    image's latent does not depend on what else is in the batch."""

    def __init__(self, config: EncoderConfig, meta: dict | None = None) -> None:
        super().__init__()
        if config.image_size < 8 or config.image_size & (config.image_size - 1):
            raise InversionError(f"the encoder needs a power-of-two image size >= 8, got {config.image_size}")
        self.config = config
        self.meta = dict(meta or {})
        layers, channels = [], config.image_channels
        for i in range(int(math.log2(config.image_size // 4))):
            out = config.width * min(2 ** i, 8)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(channels * 16, config.latent_dim)

    @classmethod
    def for_generator(cls, generator: Generator, width: int = 32) -> "Encoder":
        channels, height, width_px = generator.image_shape
        if height != width_px:
            raise InversionError(f"the encoder needs square images, {generator.name} makes {height}x{width_px}")
        return cls(EncoderConfig(generator.latent_dim, channels, height, width), {"generator": generator.describe()})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))

    def check_compatible(self, generator: Generator) -> None:
        c = self.config
        if (c.latent_dim, c.image_channels, c.image_size) != (generator.latent_dim, *generator.image_shape[:2]):
            raise InversionError(
                f"this encoder maps {c.image_channels}x{c.image_size}x{c.image_size} images to {c.latent_dim}-d "
                f"latents; {generator.name} has latent size {generator.latent_dim} and images "
                f"{'x'.join(map(str, generator.image_shape))}")
        trained_for = self.meta.get("generator") or {}
        if trained_for and trained_for != json.loads(json.dumps(generator.describe())):  # as stored: lists, not tuples
            warnings.warn(f"this encoder was trained for {trained_for}, not {generator.describe()}; its first "
                          "guesses may be poor (the optimization steps still apply)", stacklevel=3)

    def save_pretrained(self, directory: str | Path) -> Path:
        """``encoder.safetensors`` + ``encoder.json`` (config, generator identity, training record)."""
        from safetensors.torch import save_file
        from .runs import atomic_path, atomic_write_text
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / ENCODER_WEIGHTS) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        from . import __version__
        config = {"format": ENCODER_FORMAT, "version": __version__, **asdict(self.config), **self.meta}
        atomic_write_text(directory / ENCODER_CONFIG, json.dumps(config, indent=1) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> "Encoder":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        directory = Path(directory)
        config_path, weights = directory / ENCODER_CONFIG, directory / ENCODER_WEIGHTS
        if not config_path.is_file() or not weights.is_file():
            raise InversionError(f"{directory} is not an encoder folder (needs {ENCODER_CONFIG} and {ENCODER_WEIGHTS}, "
                                 "written by Encoder.save_pretrained / benchmarks/edit_precision.py)")
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InversionError(f"{config_path} is not valid JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != ENCODER_FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise InversionError(f"{config_path} has format {found!r}, expected {ENCODER_FORMAT!r}")
        keys = EncoderConfig.__dataclass_fields__
        wrong = [k for k in keys if k in raw and (not isinstance(raw[k], int) or isinstance(raw[k], bool) or raw[k] < 1)]
        if wrong:
            raise InversionError(f"{config_path}: {', '.join(wrong)} must be positive integers")
        encoder = cls(EncoderConfig(**{k: raw[k] for k in keys if k in raw}),
                      {k: v for k, v in raw.items() if k not in keys and k not in ("format", "version")})
        try:
            state = load_file(str(weights), device=map_location)
            encoder.load_state_dict(state)
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise InversionError(f"could not load {weights}: {exc}") from None
        if any(v.is_floating_point() and not torch.isfinite(v).all() for v in state.values()):
            raise InversionError(f"{weights} holds NaN or inf weights; train the encoder again")
        if any(not v.is_floating_point() for v in state.values()):
            raise InversionError(f"{weights} holds integer tensors where an encoder has float weights")
        return encoder.eval()


def train_encoder(generator: Generator, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3,
                  pixel_weight: float = 1.0, width: int = 32, seed: int = 0, progress: bool = True) -> Encoder:
    """Fit an encoder on generated pairs: latent MSE, plus the pixel MSE of G(E(G(z))) vs G(z).

    The latent loss alone pulls towards the average latent of each look; the pixel term makes
    the guess one whose image matches, which is what the optimization then refines.
    """
    from tqdm.auto import tqdm
    torch.manual_seed(seed)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    encoder = Encoder.for_generator(generator, width).to(generator.device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr, betas=(0.9, 0.99))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, bar = time.time(), tqdm(range(steps), desc="encoder", disable=not progress)
    for _ in bar:
        with torch.no_grad():
            latents = generator.sample_latents(batch_size, generator=rng).to(generator.device)
            images = generator(latents).clamp(-1, 1)
        guess = encoder(images)
        loss = nn.functional.mse_loss(guess, latents)
        if pixel_weight:
            loss = loss + pixel_weight * nn.functional.mse_loss(generator(guess), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    encoder.meta["training"] = {"steps": steps, "batch_size": batch_size, "lr": lr, "pixel_weight": pixel_weight,
                                "seed": seed, "data": "generated pairs (G(z), z)", "torch": torch.__version__,
                                "seconds": round(time.time() - start, 1)}
    return encoder.eval()


# -- inversion -----------------------------------------------------------------------------
@dataclass
class InversionResult:
    latents: torch.Tensor          # (N, latent_dim) in the generator's latent space; (N, num_ws, latent_dim) per layer
    images: torch.Tensor           # (N, C, H, W) = G(latents), in [-1, 1]
    pixel_error: torch.Tensor      # (N,) mean squared error vs the input, on the [-1, 1] scale
    initial_pixel_error: torch.Tensor  # (N,) the same for the first guess, before optimization
    seconds_per_image: float       # wall clock
    cpu_seconds_per_image: float   # this process's CPU time: the honest number on a shared machine
    settings: dict = field(default_factory=dict)


@torch.no_grad()
def latent_prior(generator: Generator, num_samples: int = 4096, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and per-coordinate spread of sampled latents: N(0, I) for Z, the mapped cloud for W."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    samples = generator.sample_latents(num_samples, generator=rng).to(generator.device)
    return samples.mean(0), samples.std(0).clamp_min(1e-6)


def _per_image_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def _pyramid_mse(a: torch.Tensor, b: torch.Tensor, scales: int) -> torch.Tensor:
    """Per-image MSE averaged over ``scales`` resolutions, each half the last (average pooling)."""
    total = _per_image_mse(a, b)
    for _ in range(scales - 1):
        a, b = nn.functional.avg_pool2d(a, 2), nn.functional.avg_pool2d(b, 2)
        total = total + _per_image_mse(a, b)
    return total / scales


@torch.no_grad()
def _closest_prior_samples(generator: Generator, images: torch.Tensor, num_starts: int, count: int,
                           seed: int) -> torch.Tensor:
    """(N, count, latent_dim): for each image, the ``count`` of ``num_starts`` prior samples closest in pixels."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    candidates = generator.sample_latents(num_starts, generator=rng).to(generator.device)
    candidate_images = generator(candidates)
    errors = torch.cdist(images.flatten(1), candidate_images.flatten(1))  # (N, num_starts)
    return candidates[errors.topk(count, dim=1, largest=False).indices].clone()


@dataclass
class InversionConfig:
    """How :func:`invert` finds latents: the one source of its defaults and of ``latentdirs edit``'s
    inversion options (generated from these fields, with these docstrings as help)."""

    steps: int = 300
    """Adam steps of the optimization, cosine-decayed learning rate (0: the first guess only)."""
    lr: float = 0.05
    """Adam learning rate of the optimization."""
    prior_weight: float = 1e-3
    """Weight of the prior term mean(((w - mean) / spread)^2), which holds latents near the prior's cloud."""
    num_starts: int = 256
    """Prior samples tried for the first guess when there is no encoder (and where restarts pick from)."""
    batch_size: int = 64
    """Images optimized together."""
    seed: int = 0
    """Seed of the prior samples."""
    per_layer: bool = False
    """One w per style layer (W+ inversion, as in Image2StyleGAN; style-based generators in W or W+); the
    prior term then holds every layer's w near the mapped cloud."""
    scales: int = 1
    """Pixel loss averaged over this many resolutions (full, 1/2, 1/4, ...): coarse images give an object's
    size and place a wider basin than full-resolution pixels."""
    restarts: int = 1
    """Also optimize the restarts - 1 next-closest prior samples; each image keeps the latent with the lowest
    final pixel error (restarts times the cost; for first guesses in the wrong basin)."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("num_starts", "batch_size", "scales", "restarts")

    def __post_init__(self) -> None:
        check_declared(self, InversionError)
        if not self.lr > 0:
            raise InversionError(f"lr must be > 0, got {self.lr}")


def invert(generator: Generator, images: torch.Tensor, encoder: Encoder | None = None,
           config: InversionConfig | None = None, *, prior: tuple[torch.Tensor, torch.Tensor] | None = None,
           progress: bool = True, **options) -> InversionResult:
    """Latents of ``generator`` whose images reproduce ``images`` ((N, C, H, W) in [-1, 1]).

    ``config`` (default ``InversionConfig()``) with its fields as keywords: ``invert(G, x, steps=150)``.
    First guess: ``encoder(images)`` if given, else the closest of ``num_starts`` prior samples.
    Then ``steps`` Adam steps on per-image pixel MSE + ``prior_weight`` * the prior term.
    ``prior`` is ``latent_prior(generator)``, computed here when not given (a server reuses it).
    """
    unknown = sorted(set(options) - {f.name for f in fields(InversionConfig)})
    if unknown:
        raise TypeError(f"unknown inversion options {unknown}; options: "
                        f"{', '.join(f.name for f in fields(InversionConfig))}")
    cfg = replace(config or InversionConfig(), **options)
    steps, lr, prior_weight, num_starts = cfg.steps, cfg.lr, cfg.prior_weight, cfg.num_starts
    batch_size, seed, per_layer, scales, restarts = cfg.batch_size, cfg.seed, cfg.per_layer, cfg.scales, cfg.restarts
    images = check_images(generator, images).to(generator.device)
    if per_layer:
        check_per_layer(generator)
    if encoder is not None:
        encoder.check_compatible(generator)
        encoder = encoder.to(generator.device).eval()
    if restarts - (encoder is not None) > num_starts:
        raise InversionError(f"restarts must be at most num_starts ({num_starts}) prior samples; got {restarts}")
    if images.shape[-1] >> (scales - 1) < 4:
        raise InversionError(f"scales must leave images of at least 4 pixels; got {scales} for "
                             f"{images.shape[-1]}-pixel images")
    from tqdm.auto import tqdm
    mean, spread = (t.to(generator.device) for t in (prior or latent_prior(generator, seed=seed)))
    start, cpu_start = time.time(), time.process_time()
    chunks = range(0, len(images), batch_size)
    bar = tqdm(total=len(chunks) * max(steps, 1), desc="invert", disable=not progress)
    latents, initial_errors = [], []
    for first in chunks:
        target = images[first:first + batch_size]
        with torch.no_grad():
            if encoder is not None:
                starts = encoder(target)[:, None]
                if restarts > 1:
                    starts = torch.cat([starts, _closest_prior_samples(generator, target, num_starts, restarts - 1,
                                                                       seed)], 1)
            else:
                starts = _closest_prior_samples(generator, target, num_starts, restarts, seed)
            initial_errors.append(_per_image_mse(generator(starts[:, 0]), target))
            starts = starts.flatten(0, 1)  # image-major: image i's starts are rows i*restarts ...
            if per_layer:
                starts = generator.styles(starts)
        repeated = target.repeat_interleave(restarts, 0)
        latent = starts.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([latent], lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
        for _ in range(steps):
            pixel = _pyramid_mse(generator(latent), repeated, scales)
            prior = ((latent - mean) / spread).pow(2).flatten(1).mean(1)
            # Summed over images: each image's latent gets its own gradient, unscaled by the batch size.
            loss = (pixel + prior_weight * prior).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update(1)
            bar.set_postfix(pixel_mse=f"{pixel.mean().item():.4f}", refresh=False)
        if steps == 0:
            bar.update(1)
        latent = latent.detach()
        if restarts > 1:
            with torch.no_grad():
                final = _per_image_mse(generator(latent), repeated).view(len(target), restarts)
            latent = latent.view(len(target), restarts, *latent.shape[1:])[torch.arange(len(target)), final.argmin(1)]
        latents.append(latent)
    bar.close()
    latents = torch.cat(latents)
    with torch.no_grad():
        reconstructions = torch.cat([generator(latents[i:i + batch_size]) for i in chunks]).clamp(-1, 1)
    return InversionResult(latents, reconstructions, _per_image_mse(reconstructions, images),
                           torch.cat(initial_errors), (time.time() - start) / len(images),
                           (time.process_time() - cpu_start) / len(images),
                           {"encoder": encoder is not None, "steps": steps, "lr": lr, "prior_weight": prior_weight,
                            "num_starts": None if encoder is not None else num_starts, "seed": seed,
                            "per_layer": per_layer, "scales": scales, "restarts": restarts})


def can_invert_per_layer(generator: Generator) -> bool:
    """True where per-layer (W+) inversion applies: a style-based generator in its w or w+ space."""
    from .generators.base import StyleSpaceGenerator
    return isinstance(generator, StyleSpaceGenerator) and generator.latent_space != "z"


def resolve_per_layer(generator: Generator, per_layer: bool | None) -> bool:
    """``None`` (auto): per-layer wherever it applies, as it keeps more factors (docs/editing.md); else checked."""
    if per_layer is None:
        return can_invert_per_layer(generator)
    if per_layer:
        check_per_layer(generator)
    return per_layer


def check_per_layer(generator: Generator) -> None:
    """Per-layer (W+) inversion needs a style-based generator in its W or W+ space; a clear error otherwise."""
    from .generators.base import StyleSpaceGenerator
    if not isinstance(generator, StyleSpaceGenerator):
        raise InversionError(f"per-layer inversion needs a style-based generator (StyleGAN2, the shapes3d "
                             f"dcgan-w); {generator.name} has one latent per image: drop per_layer / --per-layer")
    if generator.latent_space == "z":
        raise InversionError(f"per-layer inversion optimizes styles, so {generator.name} must be in its w or w+ "
                             "space (directions found in Z cannot move per-layer styles): use directions found "
                             "with --space w or w+, or drop per_layer / --per-layer")
