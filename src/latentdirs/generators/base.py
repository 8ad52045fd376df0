"""The frozen-generator protocol.

Everything in latentdirs talks to a generator through :class:`Generator`: a latent size,
a way to sample latents, and ``forward(latent) -> images`` in [-1, 1], NCHW, 1 or 3
channels. The *latent* is the space where directions live: Z for SN-GAN/ProgGAN/BigGAN,
and Z, W or W+ (a layer range) for StyleGAN2, chosen when the adapter is built.

Hooks with a default that every generator gets:
- ``shifted(latent, shift)``: images of ``latent`` moved by ``shift`` along directions; the
  default is ``G(latent + shift)``. Every stage that moves along a direction (discovery, RCA,
  charts, importance, web explorer, saliency, diversity) calls it, so an adapter whose
  directions act on part of the network (StyleGAN2 W+ with a layer range) overrides only this.
- ``with_classes(classes)``: the generator restricted to some classes; the default refuses
  (not class-conditional).

Optional hooks (return ``None`` when not available):
- ``first_layer_weight()``: the weight W (out x latent_dim) of the first affine map that
  consumes the latent, for SeFa;
- ``early_features(latent)``: activations of an early layer, for GANSpace;
- ``factor_directions()``: known ground-truth directions (d x F), planted generators only;
- ``ground_truth()``: a :class:`GroundTruth` (real data with known factors) for the
  MIG / DCI / modularity protocol, for generators trained on procedural data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..configs import is_number


class GeneratorError(ValueError):
    """A generator does not behave as the protocol requires."""


@dataclass(frozen=True)
class GroundTruth:
    """Real images with known, discrete factors: what ground-truth metrics score codes against.

    A generator trained on procedural data (or one that renders its own scenes) returns this
    from :meth:`Generator.ground_truth`; ``latentdirs compare`` and the sweep then add MIG,
    DCI and modularity without being told which dataset belongs to which generator.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    """Number of values of each factor; factor i takes the values 0 .. factor_sizes[i] - 1."""
    sample: Callable[[int, int], tuple[torch.Tensor, np.ndarray | torch.Tensor]]
    """``sample(num, seed) -> (images (num, C, H, W) in [-1, 1], integer factors (num, F))``;
    the same seed gives the same data."""

    def __post_init__(self) -> None:
        if len(self.factor_names) != len(self.factor_sizes):
            raise GeneratorError(f"GroundTruth: {len(self.factor_names)} factor names but "
                                 f"{len(self.factor_sizes)} factor sizes")


class Generator(nn.Module):
    """Base class of every frozen generator adapter.

    Subclasses set ``latent_dim`` and ``name`` and implement :meth:`synthesize`.
    Parameters are frozen and the module stays in eval mode whatever ``train()`` is called with.
    """

    latent_dim: int
    name: str = "generator"
    latent_space: str = "z"
    load_spec: dict | None = None
    """How :func:`~latentdirs.generators.registry.load_generator` built it (kind, path, options), so
    a run folder or a worker process can reload the same generator; None for generators built directly."""

    def __init__(self) -> None:
        super().__init__()
        self._image_shape: tuple[int, int, int] | None = None

    # -- what subclasses implement -------------------------------------------------
    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample_latents(self, num: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        """Latents from the generator's prior, N(0, I) unless an adapter says otherwise."""
        device = device if device is not None else self.device
        gen_device = generator.device if generator is not None else device
        z = torch.randn(num, self.latent_dim, generator=generator, device=gen_device)
        return z.to(device)

    def shifted(self, latent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Images of ``latent`` moved by ``shift`` in the space where directions live.

        ``latent`` is (batch, latent_dim); ``shift`` is (batch, latent_dim) or one (latent_dim,)
        vector for the whole batch. Every stage that moves along a direction goes through here.
        The default adds the shift to the latent; adapters whose directions act on part of the
        network (W+ with a layer range) override it.
        """
        return self(latent + self.check_shift(latent, shift))

    def with_classes(self, classes: list[int]) -> "Generator":
        """This generator sampling only ``classes`` (a new adapter or ``self``).

        Class-conditional adapters override it; the default refuses."""
        raise GeneratorError(
            f"{self.name} is not class-conditional: drop --classes, or implement with_classes(classes) in its "
            "adapter (returning the generator restricted to those class indices).")

    def ground_truth(self) -> GroundTruth | None:
        """Real data with known factors for ground-truth metrics, or None (the default: factors unknown)."""
        return None

    def first_layer_weight(self) -> torch.Tensor | None:
        return None

    def early_features(self, latent: torch.Tensor) -> torch.Tensor | None:
        return None

    def factor_directions(self) -> torch.Tensor | None:
        return None

    def respecified(self, other: "Generator", **options) -> "Generator":
        """``other`` (an adapter derived from this one) with this load spec plus ``options``, so it reloads the same."""
        if self.load_spec:
            other.load_spec = {**self.load_spec, "options": {**self.load_spec.get("options", {}), **options}}
        return other

    def describe(self) -> dict:
        """JSON-able identity of this generator, stored with every direction set."""
        info = {"name": self.name, "latent_space": self.latent_space, "latent_dim": self.latent_dim}
        if self.load_spec:
            info["spec"] = self.load_spec
        return info

    # -- shared machinery ----------------------------------------------------------
    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.synthesize(self.check_latent(latent))

    def check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.dim() != 2 or latent.shape[1] != self.latent_dim:
            raise GeneratorError(
                f"{self.name}: expected latents of shape (batch, {self.latent_dim}), got "
                f"{tuple(latent.shape)}. Check the latent size you gave (latent_dim=...).")
        return latent

    def check_shift(self, latent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """``shift`` as (batch, latent_dim), matching ``latent``; a clear error otherwise."""
        self.check_latent(latent)
        if shift.dim() not in (1, 2) or shift.shape[-1] != self.latent_dim or (
                shift.dim() == 2 and shift.shape[0] not in (1, latent.shape[0])):
            raise GeneratorError(
                f"{self.name}: a shift must be (batch={latent.shape[0]}, {self.latent_dim}) or ({self.latent_dim},) "
                f"for latents of shape {tuple(latent.shape)}; got {tuple(shift.shape)}.")
        return shift.expand_as(latent)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def freeze(self) -> "Generator":
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "Generator":
        # A frozen generator never leaves eval mode: batch-norm statistics must not move.
        return super().train(False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width), found by one forward pass and cached."""
        if self._image_shape is None:
            self._image_shape = tuple(check_generator(self).shape[1:])
        return self._image_shape


def style_space_layers(space: str, layers, num_layers: int, truncation: float = 1.0) -> tuple[int, int]:
    """Validate a style-based adapter's options; the W+ layer range as a half-open (start, stop).

    ``layers``: ``(start, stop)``, ``"0-4"`` or a ``range``; only for ``space="w+"`` (None = all layers).
    """
    if space not in ("z", "w", "w+"):
        raise GeneratorError(f"space={space!r}: expected 'z', 'w' or 'w+'.")
    if layers is not None and space != "w+":
        raise GeneratorError(f"layers={layers!r} only applies to space='w+' (got space={space!r}).")
    if not is_number(truncation) or not 0.0 < truncation <= 1.0:
        raise GeneratorError(f"truncation={truncation!r}: expected a number in (0, 1].")
    if layers is None:
        return 0, num_layers
    if isinstance(layers, str):
        parts = layers.replace(":", "-").split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise GeneratorError(f"layers={layers!r}: expected 'START-STOP' such as '0-4' (layers 0..3).")
        start, stop = (int(p) for p in parts)
    elif isinstance(layers, range):
        if layers.step != 1:
            raise GeneratorError(f"layers={layers!r}: expected a contiguous range")
        start, stop = layers.start, layers.stop
    else:
        # two ints: floats would be cut silently ((0.5, 2.7) -> layers 0..1), anything else is a TypeError deep inside
        try:
            pair = list(layers)
        except TypeError:
            pair = []
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
            raise GeneratorError(f"layers={layers!r}: expected (START, STOP), two ints such as (0, 4), or 'START-STOP' "
                                 "such as '0-4' (layers 0..3).")
        start, stop = (int(v) for v in pair)
    if not 0 <= start < stop <= num_layers:
        raise GeneratorError(f"layers=({start}, {stop}): need 0 <= start < stop <= {num_layers} (this generator has "
                             f"{num_layers} style layers; the range is half-open, (0, 4) means layers 0..3).")
    return start, stop


class StyleSpaceGenerator(Generator):
    """What the style-based adapters share: the z, w or w+ space, truncation, and W+ shifts.

    An adapter calls :meth:`set_style_space` and implements ``synthesis(ws)`` (images from per-layer
    styles ``(batch, num_ws, latent_dim)``), ``mapping(z)`` (untruncated w) and ``mean_w()`` (the
    centre truncation pulls toward); one whose network truncates by itself overrides ``mapped``.
    In w+ the latent is one base w, and :meth:`shifted` moves only the styles of ``layers``.

    In w and w+ a latent may also be per-layer styles ``(batch, num_ws, latent_dim)``, one w per
    layer: what inversion into W+ (``invert(..., per_layer=True)``) returns, as in Image2StyleGAN.
    Shifts stay ``latent_dim`` vectors and move the same layers as for a single w.
    """

    def check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.dim() != 3:
            return super().check_latent(latent)
        if self.latent_space == "z":
            raise GeneratorError(f"{self.name}: per-layer styles {tuple(latent.shape)} are latents of the w or w+ "
                                 "space only; load the generator with space='w' or 'w+'.")
        if latent.shape[1:] != (self.num_ws, self.latent_dim):
            raise GeneratorError(f"{self.name}: per-layer styles must be (batch, {self.num_ws}, {self.latent_dim}), "
                                 f"got {tuple(latent.shape)}.")
        return latent

    def check_shift(self, latent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        if latent.dim() != 3:
            return super().check_shift(latent, shift)
        return super().check_shift(self.check_latent(latent)[:, 0], shift)  # one latent_dim shift per image

    def set_style_space(self, space: str, layers, num_ws: int, truncation: float) -> None:
        self.layers = style_space_layers(space, layers, num_ws, truncation)
        self.latent_space, self.num_ws, self.truncation = space, num_ws, float(truncation)

    def truncate(self, w: torch.Tensor) -> torch.Tensor:
        if self.truncation >= 1.0:
            return w
        centre = self.mean_w()
        return centre + self.truncation * (w - centre)  # rosinality's formula, to match its outputs exactly

    def mapped(self, z: torch.Tensor) -> torch.Tensor:
        """z -> w, truncated."""
        return self.truncate(self.mapping(z))

    def sample_latents(self, num: int, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        z = super().sample_latents(num, generator=generator, device=device)
        if self.latent_space == "z":
            return z
        with torch.no_grad():  # in w / w+ a latent is the w of a z from the prior
            return self.mapped(z.to(self.device)).to(z.device)

    def styles(self, latent: torch.Tensor) -> torch.Tensor:
        """Per-layer styles (batch, num_ws, latent_dim) of an unshifted latent: its w at every layer."""
        if latent.dim() == 3:  # already per-layer (W+ inversion)
            return latent
        w = self.mapped(latent) if self.latent_space == "z" else latent
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.styles(latent))

    def shifted(self, latent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Images of ``latent`` moved by ``shift``; in w+ only the style layers in ``self.layers`` move."""
        if self.latent_space != "w+" and latent.dim() == 2:
            return super().shifted(latent, shift)
        shift = self.check_shift(latent, shift)
        base = self.styles(latent)
        start, stop = self.layers  # all layers in w
        # Layers outside the range get the base style itself (not base + 0 * shift): bit-identical
        # whatever the shift holds, and no gradient path through them.
        return self.synthesis(torch.cat([base[:, :start], base[:, start:stop] + shift[:, None, :], base[:, stop:]], 1))

    def early_features(self, latent: torch.Tensor) -> torch.Tensor:
        # GANSpace works on W for style-based generators: the mapping output (the latent itself in w / w+)
        return self.mapped(latent) if self.latent_space == "z" else latent


class WrappedGenerator(Generator):
    """Any ``nn.Module`` or callable ``latent -> image`` behind the protocol."""

    def __init__(self, module: nn.Module | Callable, latent_dim: int, name: str = "wrapped",
                 latent_shape: tuple[int, ...] | None = None, output_range: tuple[float, float] = (-1.0, 1.0),
                 first_layer: str | None = None) -> None:
        super().__init__()
        if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
            raise GeneratorError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if not callable(module):
            raise GeneratorError(f"module must be an nn.Module or a callable latent -> images, got "
                                 f"{type(module).__name__}")
        _check_output_range(output_range)
        if latent_shape is not None:
            _check_latent_shape(latent_shape, latent_dim)
        if first_layer is not None:
            # named here, not when SeFa asks for it: a typo is a KeyError deep inside SeFa otherwise
            names = [n for n, _ in module.named_parameters()] if isinstance(module, nn.Module) else []
            if first_layer not in names:
                raise GeneratorError(f"first_layer={first_layer!r} is not a parameter of the module; "
                                     + (f"its parameters: {_preview_names(names)}" if names else
                                        "first_layer needs an nn.Module with parameters (not a plain function)")
                                     + ".")
        self.latent_dim = latent_dim
        self.name = name
        self.latent_shape = latent_shape
        self.output_range = output_range
        self._first_layer = first_layer
        if isinstance(module, nn.Module):
            self.module = module
        else:
            self._fn = module
        self.freeze()

    def synthesize(self, latent: torch.Tensor) -> torch.Tensor:
        x = latent if self.latent_shape is None else latent.view(latent.shape[0], *self.latent_shape)
        fn = self.module if hasattr(self, "module") else self._fn
        out = fn(x)
        lo, hi = self.output_range
        if (lo, hi) != (-1.0, 1.0):
            out = (out - lo) / (hi - lo) * 2 - 1
        return out

    def first_layer_weight(self) -> torch.Tensor | None:
        if self._first_layer is None:
            return _first_linear_weight(self.module, self.latent_dim) if hasattr(self, "module") else None
        return dict(self.module.named_parameters())[self._first_layer].detach()


def _check_output_range(output_range) -> None:
    try:
        lo, hi = (float(v) for v in output_range)
        ok = all(not isinstance(v, (bool, str)) for v in output_range) and np.isfinite([lo, hi]).all() and lo < hi
    except (TypeError, ValueError):
        ok = False
    if not ok:  # (1, 1) divides by zero and a reversed range flips the images: NaN or silently wrong later
        raise GeneratorError(f"output_range={output_range!r}: expected (low, high), two finite numbers with "
                             "low < high, e.g. (0, 1) for images in [0, 1].")


def _check_latent_shape(latent_shape, latent_dim: int) -> None:
    try:
        dims = [int(v) for v in latent_shape if not isinstance(v, (bool, float, str))]
        known = [v for v in dims if v != -1]  # one -1 is view()'s "the rest"
        ok = (len(dims) == len(latent_shape) > 0 and len(dims) - len(known) <= 1 and min(known, default=1) >= 1
              and (latent_dim % int(np.prod(known)) == 0 if len(known) < len(dims)
                   else int(np.prod(known)) == latent_dim))
    except TypeError:
        ok = False
    if not ok:  # else the reshape fails on the first batch, and the message blames latent_dim
        raise GeneratorError(f"latent_shape={latent_shape!r}: expected a tuple of positive ints whose product is "
                             f"latent_dim={latent_dim}, e.g. ({latent_dim}, 1, 1).")


def _preview_names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _first_linear_weight(module: nn.Module, latent_dim: int) -> torch.Tensor | None:
    """The first Linear / ConvTranspose2d that takes ``latent_dim`` inputs, as (out, latent_dim)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and layer.in_features == latent_dim:
            return layer.weight.detach()
        if isinstance(layer, nn.ConvTranspose2d) and layer.in_channels == latent_dim:
            w = layer.weight.detach()  # (in, out, kh, kw)
            return w.flatten(1).t()
    return None


def wrap(module: nn.Module | Callable, latent_dim: int, name: str = "wrapped",
         latent_shape: tuple[int, ...] | None = None, output_range: tuple[float, float] = (-1.0, 1.0),
         first_layer: str | None = None, check: bool = True) -> Generator:
    """Put any generator behind the latentdirs protocol, without subclassing.

    ``module(latent)`` must return images NCHW with 1 or 3 channels. ``latent_shape`` reshapes
    the flat latent first (e.g. ``(512, 1, 1)`` for ProgGAN-style convolutional inputs);
    ``output_range`` rescales outputs to [-1, 1]; ``first_layer`` names the parameter SeFa
    should factorize (found automatically for a first ``nn.Linear``).
    """
    if isinstance(module, Generator):
        return module
    gen = WrappedGenerator(module, latent_dim, name=name, latent_shape=latent_shape,
                           output_range=output_range, first_layer=first_layer)
    if check:
        check_generator(gen)
    return gen


def check_same_space(generator: Generator, recorded: dict | None, what: str = "these directions") -> None:
    """Refuse to move ``generator`` along directions found in another latent space or W+ layer range.

    ``recorded`` is the ``generator`` entry of a direction set's metadata (``describe()`` of the
    generator it was found on); sets that record none (random, hand-made) are taken as they are.
    """
    if not recorded or recorded.get("latent_space") is None:
        return
    now = generator.describe()

    def where(info: dict) -> tuple:
        layers = info.get("layers")
        return info.get("latent_space"), None if layers is None else [int(v) for v in layers]
    found, here = where(recorded), where(now)
    if found == here:
        return

    def space(info) -> str:
        return info[0] + (f" layers {info[1][0]}-{info[1][1]}" if info[1] else "")
    option = f"--space {found[0]}" + (f" --layers {found[1][0]}-{found[1][1]}" if found[1] else "")
    raise GeneratorError(f"{what} were found in space {space(found)}, but {generator.name} moves in space "
                         f"{space(here)}: load the generator the same way ({option}).")


@torch.no_grad()
def check_generator(gen: Generator, batch: int = 2) -> torch.Tensor:
    """Run one small batch and raise a clear :class:`GeneratorError` if the output is unusable."""
    z = gen.sample_latents(batch)
    try:
        out = gen(z)
    except GeneratorError:
        raise
    except Exception as exc:  # the user's module failed on a latent of our shape
        raise GeneratorError(
            f"{gen.name}: calling the generator on latents of shape {tuple(z.shape)} failed with "
            f"{type(exc).__name__}: {exc}. Is latent_dim={gen.latent_dim} right for this model?") from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise GeneratorError(f"{gen.name}: expected images of shape (batch, channels, H, W), got {shape}.")
    if out.shape[0] != batch:
        raise GeneratorError(f"{gen.name}: asked for {batch} images, got {out.shape[0]}.")
    if out.shape[1] not in (1, 3):
        raise GeneratorError(f"{gen.name}: images must have 1 or 3 channels (NCHW), got {out.shape[1]}. "
                             "If your generator returns NHWC, permute it in a small wrapper.")
    if min(out.shape[2:]) < 16:
        raise GeneratorError(f"{gen.name}: images must be at least 16x16, got {tuple(out.shape[2:])}.")
    if out.dtype != torch.float32:  # the reconstructor and classifiers are float32: later a dtype mismatch
        dtype = str(out.dtype).replace("torch.", "")
        raise GeneratorError(f"{gen.name}: images must be float32 in [-1, 1], got {dtype}"
                             + (" (integer images such as uint8 [0, 255]: return out.float() / 127.5 - 1)"
                                if not out.dtype.is_floating_point else "; return out.float()") + ".")
    check_finite(out, gen.name)
    if out.abs().max() > 10:  # [0, 255] images: everything would run, on images saturated to white
        raise GeneratorError(f"{gen.name}: images must be in [-1, 1], got values in [{out.min().item():.4g}, "
                             f"{out.max().item():.4g}]; rescale them (wrap(..., output_range=(0, 255)) for [0, 255]).")
    return out


def check_finite(images: torch.Tensor, name: str = "generator") -> None:
    if not torch.isfinite(images).all():
        bad = (~torch.isfinite(images)).float().mean().item()
        raise GeneratorError(
            f"{name} produced non-finite values (NaN/inf in {bad:.1%} of pixels). The weights may be "
            "corrupt or the latents far outside the training range; lower the shift range.")
