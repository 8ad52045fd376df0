"""The shapes3d DCGAN trained with the 7th factor ``background_fade`` on (floor and walls blend
to white while the object stays): a generator with a real background-removal factor, shipped
so the saliency pipeline (docs/saliency.md) can be shown end to end without BigGAN weights.

Same architecture and file format as :mod:`latentdirs.generators.shapes3d`; only the default
weights folder differs (``weights/shapes3d_fade/``, written by ``latentdirs train-gan --with-fade``).
"""
from __future__ import annotations

from pathlib import Path

from .shapes3d import Shapes3DGenerator, load as load_shapes3d


def packaged_weights_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "weights" / "shapes3d_fade"


def load(path: str | Path | None = None, **options) -> Shapes3DGenerator:
    gen = load_shapes3d(packaged_weights_dir() if path is None else path, **options)
    gen.name = "shapes3d-fade"
    return gen
