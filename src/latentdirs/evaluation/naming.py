"""Name each direction by the factor it moves, read by a factor classifier.

For a direction h, latents z are moved along it over a range of shifts s and a classifier
trained on real scenes with known factors reads every image. For each factor f the change is
how far the classifier's reading of f at G.shifted(z, s h) moved from its reading at G(z),
averaged over latents and shifts, on a scale where 1 is the largest change the factor allows:

  - ordinal factors (scale, orientation): the change of the expected value, over (size - 1);
  - circular factors (hues): the angle between the expected hue vectors, over 180 degrees;
  - categorical factors (shape): the total-variation distance between the two distributions.

Expected values, not the top class: a generated object halfway between two scale values moves
probability between neighbours at the slightest change, which would count as a full change of
a category (total variation) but is a small change of the expected scale. For the same reason a
factor's change is averaged over the images whose unshifted reading of it is confident (top
probability >= 0.9: on the shipped GAN 97-100% of images for the hues, 88% for shape, 62-69% for
scale and orientation). Even so, scale and shape readings move a little under any change of the
image, a floor of about 0.15-0.25 in every row's shares: a purity of 0.35-0.7 already marks a
direction that clearly moves one factor. Each direction gets

  - ``shares[k, f]``: the share of its read change that falls on factor f (a row sums to 1);
  - its dominant factor (the largest share) and ``purity``, that share: 1 = it changes one
    factor only, 1/F = it changes all of them alike;
  - ``change[k]``: its whole read change, so a direction that barely changes anything is
    labelled as such rather than by the factor that happens to lead its tiny change.

No labels of the generator's own images are used: the classifier only reads them. Shifts are
by default those the charts draw (:func:`latentdirs.render.manifold_shifts`): up to three
standard deviations of the latent distribution along each direction, so the images read stay
on the image manifold.

    >>> import latentdirs
    >>> G = latentdirs.load_generator("shapes3d", space="w")
    >>> names = latentdirs.name_directions(G, latentdirs.sefa(G, 10))
    >>> names.label(0), names.factor(0), names.purity[0]          # ('floor hue 0.93', 'floor_hue', 0.93)

The shipped classifier (``weights/factor_classifier``, made by ``benchmarks/factor_classifier.py``)
reads the six factors of the procedural 3D-Shapes scenes; another one can be passed as a module
whose forward returns one logit tensor per factor, with its ``factor_names``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..directions import DirectionSet
from ..generators.base import Generator, GeneratorError
from ..runs import read_json_object

CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "weights" / "factor_classifier"
CONFIDENT = 0.9
"""A factor's change is averaged over the images whose unshifted reading of it has a top probability >= this."""
WEAK_CHANGE = 0.05
"""A direction whose read change, summed over factors, stays under this is 'little change'."""


def load_factor_classifier(folder: str | Path = CLASSIFIER_DIR):
    """The shipped factor classifier (``FactorClassifier`` in eval mode) and its config (factor names, training)."""
    from safetensors.torch import load_file

    from .quality import FactorClassifier
    folder = Path(folder)
    config = read_json_object(folder / "config.json", " (the factor classifier's config)")
    model = FactorClassifier(tuple(config["factor_sizes"]), width=config["width"], feature_dim=config["feature_dim"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / "classifier.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), config


def has_factor_classifier(generator: Generator) -> bool:
    """Whether the shipped classifier reads this generator's factors (its ground truth has the same factors)."""
    truth = generator.ground_truth()
    if truth is None or not (CLASSIFIER_DIR / "config.json").exists():
        return False
    return tuple(truth.factor_names) == tuple(json.loads((CLASSIFIER_DIR / "config.json").read_text())["factor_names"])


def _factor_change(kind: str, p: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(N,) change of one factor's reading, 0..1 (see the module doc), between distributions (N, size)."""
    size = p.shape[1]
    if kind == "ordinal":
        values = torch.arange(size, dtype=p.dtype, device=p.device)
        return ((p - ref) @ values).abs() / max(size - 1, 1)
    if kind == "circular":
        angles = torch.arange(size, dtype=p.dtype, device=p.device) * (2 * torch.pi / size)
        a = torch.atan2(p @ angles.sin(), p @ angles.cos())
        b = torch.atan2(ref @ angles.sin(), ref @ angles.cos())
        return torch.remainder(a - b + torch.pi, 2 * torch.pi).sub(torch.pi).abs() / torch.pi
    if kind == "categorical":
        return 0.5 * (p - ref).abs().sum(1)
    raise ValueError(f"factor kind must be ordinal, circular or categorical, got {kind!r}")


def factor_label(name: str) -> str:
    return name.replace("_", " ")


@dataclass
class DirectionNames:
    """What each direction of a set moves, as read by a factor classifier (see the module doc)."""

    factor_names: tuple[str, ...]
    shares: np.ndarray
    """(K, F) share of direction k's read change that falls on factor f; rows sum to 1."""
    change: np.ndarray
    """(K,) whole read change of direction k: summed over factors, mean over latents and shifts."""
    shifts: np.ndarray
    """(K, S) the shifts each direction was read at."""

    @property
    def num_directions(self) -> int:
        return len(self.shares)

    @property
    def dominant(self) -> np.ndarray:
        """(K,) index of each direction's dominant factor."""
        return self.shares.argmax(1)

    @property
    def purity(self) -> np.ndarray:
        """(K,) the dominant factor's share."""
        return self.shares.max(1)

    def factor(self, k: int) -> str | None:
        """Direction k's dominant factor, or None when it barely changes the classifier's reading."""
        return None if self.change[k] < WEAK_CHANGE else self.factor_names[self.dominant[k]]

    def label(self, k: int) -> str:
        """'wall hue 0.91' (dominant factor and purity), or 'little change'."""
        factor = self.factor(k)
        return "little change" if factor is None else f"{factor_label(factor)} {self.purity[k]:.2f}"

    def factors_named(self, min_purity: float = 0.5) -> list[str]:
        """The factors that are the dominant factor of at least one direction of purity >= ``min_purity``."""
        named = {self.factor(k) for k in range(self.num_directions) if self.purity[k] >= min_purity}
        return [f for f in self.factor_names if f in named]

    def summary(self) -> dict:
        """Mean purity and how many factors have a direction of their own (purity >= 0.5)."""
        return {"purity": float(self.purity.mean()), "factors_named": len(self.factors_named())}

    def to_dict(self) -> dict:
        return {"factor_names": list(self.factor_names), "shares": self.shares.round(4).tolist(),
                "change": self.change.round(4).tolist(), "shifts": self.shifts.round(4).tolist(),
                "labels": [self.label(k) for k in range(self.num_directions)]}

    @classmethod
    def from_dict(cls, data: dict) -> "DirectionNames":
        return cls(tuple(data["factor_names"]), np.asarray(data["shares"]), np.asarray(data["change"]),
                   np.asarray(data["shifts"]))

    def table_rows(self, indices=None) -> tuple[list[str], list[list]]:
        """Header and rows of a direction x factor table (shares), for :func:`latentdirs.report.table`."""
        indices = range(self.num_directions) if indices is None else indices
        header = ["direction"] + [factor_label(f) for f in self.factor_names] + ["read change", "name"]
        rows = []
        for k in indices:
            cells = [f"**{s:.2f}**" if f == self.dominant[k] and self.factor(k) else f"{s:.2f}"
                     for f, s in enumerate(self.shares[k])]
            rows.append([f"#{k}"] + cells + [f"{self.change[k]:.2f}", self.label(k)])
        return header, rows


@torch.no_grad()
def name_directions(generator: Generator, directions: DirectionSet, classifier=None, factor_names=None,
                    factor_kinds=None, *,
                    num_latents: int = 64, shifts=None, sigmas: float = 3.0, seed: int = 0,
                    batch_size: int = 256) -> DirectionNames:
    """Dominant factor, purity and per-factor shares of the read change for every direction (module doc).

    ``classifier`` (default: the shipped one, for generators whose ground truth has its factors)
    maps images in [-1, 1] to one logit tensor per factor; ``factor_kinds`` says per factor how its
    change is measured (ordinal, circular or categorical; default categorical for a given classifier).
    ``shifts``: one sequence for every direction, or None for :func:`~latentdirs.render.manifold_shifts`
    at ``sigmas`` (0 is skipped).
    """
    from ..render import manifold_shifts
    if classifier is None:
        if not has_factor_classifier(generator):
            truth = generator.ground_truth()
            raise GeneratorError(
                f"{generator.name} has no factor classifier: the shipped one reads the procedural 3D-Shapes "
                f"factors, and this generator's ground truth is "
                f"{'missing' if truth is None else ', '.join(truth.factor_names)}. Pass classifier= and factor_names=.")
        classifier, config = load_factor_classifier()
        factor_names, factor_kinds = config["factor_names"], config["factor_kinds"]
    if factor_names is None:
        raise ValueError("a classifier passed to name_directions needs its factor_names")
    factor_kinds = list(factor_kinds or ["categorical"] * len(factor_names))
    if len(factor_kinds) != len(factor_names):
        raise ValueError(f"{len(factor_kinds)} factor_kinds for {len(factor_names)} factor_names: "
                         "give one kind per factor")
    if num_latents < 1 or batch_size < 1:
        raise ValueError(f"need num_latents >= 1 and batch_size >= 1, got {num_latents} and {batch_size}")
    # Zero shifts are skipped below, NaN ones would be too: without a real shift every direction reads 'little change'.
    if shifts is None and not (np.isfinite(sigmas) and sigmas != 0):
        raise ValueError(f"sigmas must be a nonzero number, got {sigmas}")
    if shifts is not None and (not np.isfinite(np.asarray(shifts, dtype=float)).all()
                               or not any(abs(s) > 1e-9 for s in shifts)):
        raise ValueError(f"shifts must be finite numbers, at least one of them nonzero, got {list(shifts)}")
    device = generator.device
    classifier = classifier.to(device).eval()
    latents = generator.sample_latents(num_latents, generator=torch.Generator().manual_seed(seed), device=device)
    if shifts is None:
        per_direction = manifold_shifts(generator, directions, sigmas=sigmas, seed=seed)
    else:
        per_direction = [tuple(shifts)] * directions.num_directions
    per_direction = [[float(s) for s in row if abs(s) > 1e-9] for row in per_direction]

    def read(images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[-1] != 64 or images.shape[-2] != 64:  # the classifier's input size
            images = F.interpolate(images, size=(64, 64), mode="area")
        return [logits.softmax(1) for logits in classifier(images.clamp(-1, 1))]

    reference = [torch.cat(parts) for parts in zip(*(read(generator(latents[i:i + batch_size]))
                                                     for i in range(0, num_latents, batch_size)))]
    if len(reference) != len(factor_names):
        raise ValueError(f"the classifier reads {len(reference)} factors but {len(factor_names)} factor_names were "
                         "given: pass one name per output of the classifier")
    # A factor's change counts on the images whose unshifted reading of it is confident: an object the classifier
    # reads as halfway between two scales moves its reading at any change of the image (all images if none is).
    weights = [(ref.max(1).values >= CONFIDENT).float() for ref in reference]
    weights = [w if w.sum() > 0 else torch.ones_like(w) for w in weights]
    change = np.zeros((directions.num_directions, len(factor_names)))
    for k in range(directions.num_directions):
        h = directions[k].to(latents)
        for s in per_direction[k]:
            for i in range(0, num_latents, batch_size):
                chunk = latents[i:i + batch_size]
                probs = read(generator.shifted(chunk, s * h.expand(len(chunk), -1)))
                for f, (p, ref) in enumerate(zip(probs, reference)):
                    w = weights[f][i:i + batch_size]
                    change[k, f] += (_factor_change(factor_kinds[f], p, ref[i:i + batch_size]) * w).sum().item()
        # Per image, not the mean signed change: a W direction often sets a hue (red from any start), whose
        # signed changes cancel over latents.
        change[k] /= max(len(per_direction[k]), 1) * np.array([w.sum().item() for w in weights])
    total = change.sum(1)
    shares = change / np.maximum(total, 1e-12)[:, None]
    width = max(len(row) for row in per_direction)
    shift_array = np.full((directions.num_directions, width), np.nan)
    for k, row in enumerate(per_direction):
        shift_array[k, :len(row)] = row
    return DirectionNames(tuple(factor_names), shares, total, shift_array)


def names_table(named: dict[str, DirectionNames]) -> str:
    """Markdown: one direction x factor table per method (``{method label: names}``)."""
    from .. import report
    parts = []
    for method, names in named.items():
        header, rows = names.table_rows()
        summary = names.summary()
        parts.append(f"**{method}** (mean purity {summary['purity']:.2f}; factors with a direction of their own, "
                     f"purity >= 0.5: {', '.join(factor_label(f) for f in names.factors_named()) or 'none'})\n\n"
                     + report.table(header, rows))
    return "\n\n".join(parts)
