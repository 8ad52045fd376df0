"""``load_generator(kind, path)`` and ``available_generators()``.

Each kind maps to ``"module:function"`` so that importing latentdirs never imports every
adapter (BigGAN's code is large, and a user of SN-GAN should not pay for it).
"""
from __future__ import annotations

import importlib

from .base import Generator, GeneratorError

# kind -> (loader "module:function", one-line description)
_KINDS: dict[str, tuple[str, str]] = {
    "planted": ("latentdirs.generators.planted:load", "procedural renderer with known (planted) factor directions; no file"),
    "shapes3d": ("latentdirs.generators.shapes3d:load", "DCGAN with a mapping network (Z, W, W+ spaces) trained on procedural 3D-Shapes scenes (known factors); weights ship with the package"),
    "shapes3d-dcgan": ("latentdirs.generators.shapes3d:load_dcgan", "the first shipped shapes3d GAN, a plain DCGAN (Z only; blob objects); weights ship with the package"),
    "shapes3d-fade": ("latentdirs.generators.shapes3d_fade:load", "the shapes3d-dcgan trained with the background_fade factor (a background-removal direction exists); weights ship with the package"),
    # public checkpoint formats (docs/generators.md)
    "sngan-mnist": ("latentdirs.generators.sngan:load_mnist",
                    "GanLatentDiscovery SN-GAN ResNet MNIST 32x32 (folder with args.json + generator.pt)"),
    "sngan-anime": ("latentdirs.generators.sngan:load_anime",
                    "GanLatentDiscovery SN-GAN ResNet AnimeFaces 64x64 (folder with args.json + generator.pt)"),
    "proggan": ("latentdirs.generators.proggan:load",
                "ProgGAN: pytorch_GAN_zoo PGAN .pth (config/netG/avgG) or the ptrblck 1024 CelebA-HQ state dict"),
    "biggan": ("latentdirs.generators.biggan:load",
               "pytorch-pretrained-biggan BigGAN-deep (folder with config.json + pytorch_model.bin); class-conditional"),
    "stylegan2": ("latentdirs.generators.stylegan2:load",
                  "rosinality/stylegan2-pytorch .pt (g_ema); space z, w or w+ with a layer range"),
    "nvlabs-pickle": ("latentdirs.generators.nvlabs:load",
                      "NVlabs stylegan2-ada/stylegan3 .pkl; runs pickled code, needs trust_pickle=True"),
}


def register_generator(kind: str, loader: str, description: str) -> None:
    """Add a generator kind: ``loader`` is ``"package.module:function(path=None, **options)"``."""
    _KINDS[kind] = (loader, description)


def available_generators() -> dict[str, str]:
    """Kinds that :func:`load_generator` accepts, with a one-line description each."""
    return {kind: desc for kind, (_, desc) in sorted(_KINDS.items())}


def load_generator(kind: str, path: str | None = None, **options) -> Generator:
    """Load a generator of a known ``kind`` (see :func:`available_generators`) from ``path``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown generator kind {kind!r}; available: {', '.join(sorted(_KINDS))}. "
                         "For your own model use latentdirs.wrap(module, latent_dim=...).")
    module_name, func_name = _KINDS[kind][0].split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    gen = loader(path, **options) if path is not None else loader(**options)
    # Remember how it was loaded, so a run folder can reload the same generator later.
    gen.load_spec = {"kind": kind, "path": None if path is None else str(path), "options": options}
    return gen.freeze()


# (kind, architecture) of packaged weights that a kind no longer loads -> the kind that does
_MOVED_WEIGHTS = {("shapes3d", "dcgan"): "shapes3d-dcgan"}


def generator_from_spec(spec: dict, described: dict | None = None) -> Generator:
    """Reload a generator from the ``spec`` stored in a direction set's metadata.

    ``described`` is the rest of that record (``Generator.describe()``): a set found on packaged
    weights that have since moved to another kind reloads them from there, and a generator that
    no longer matches the record (other architecture or training steps) is refused, not used.
    """
    if not spec or "kind" not in spec:
        raise ValueError("this direction set does not record how its generator was loaded; "
                         "pass the generator explicitly (--generator KIND [--checkpoint PATH])")
    described = described or {}
    kind = spec["kind"]
    if spec.get("path") is None:
        kind = _MOVED_WEIGHTS.get((kind, described.get("architecture")), kind)
    generator = load_generator(kind, spec.get("path"), **spec.get("options", {}))
    now = generator.describe()
    for key in ("architecture", "training_steps", "latent_dim"):
        if key in described and key in now and described[key] != now[key]:
            raise GeneratorError(
                f"these directions were found on a {spec['kind']} generator with {key}={described[key]!r}, but "
                f"{kind}{' from ' + str(spec['path']) if spec.get('path') else ''} now loads one with "
                f"{key}={now[key]!r}; pass the generator they belong to (--generator KIND --checkpoint PATH)")
    return generator
