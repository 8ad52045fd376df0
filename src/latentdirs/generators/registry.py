"""``load_generator(kind, path)`` and ``available_generators()``.

Each kind maps to ``"module:function"`` so that importing latentdirs never imports every
adapter (BigGAN's code is large, and a user of SN-GAN should not pay for it).
"""
from __future__ import annotations

import importlib

from .base import Generator

# kind -> (loader "module:function", one-line description)
_KINDS: dict[str, tuple[str, str]] = {
    "planted": ("latentdirs.generators.planted:load", "procedural renderer with known (planted) factor directions; no file"),
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
    return gen.freeze()
