"""Edit precision: did moving along a direction change the intended factor, and only it?

Factors are read by a classifier (``evaluation.quality.FactorClassifier``, 100% accurate on
real scenes). For a latent ``w`` (an inverted real image) the reference is the classifier's
reading of ``G(w)``, so an inversion error does not count against the direction. An edit of
factor ``f`` succeeds when the reading of ``G.shifted(w, s h)`` differs from the reference at
``f`` and agrees on every other factor.

Choosing the best direction per factor is a selection over many (direction, shift)
candidates; done on the reported images it would be optimistic. :func:`choose_edits` picks
on a calibration split and :func:`edit_precision_table` reports on a separate test split.
"""
from __future__ import annotations

import numpy as np
import torch

from ..directions import DirectionSet
from ..generators.base import Generator


@torch.no_grad()
def read_factors(classifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """(N, F) argmax factor indices of images in [-1, 1]."""
    out = []
    for start in range(0, len(images), batch_size):
        logits = classifier(images[start:start + batch_size].clamp(-1, 1))
        out.append(torch.stack([head.argmax(1) for head in logits], 1))
    return torch.cat(out)


@torch.no_grad()
def factor_changes(generator: Generator, classifier, latents: torch.Tensor, directions: DirectionSet,
                   shifts: list[float], batch_size: int = 250, progress: bool = False) -> np.ndarray:
    """Boolean array (K, S, N, F): factor f of image n read differently after shift s along direction k."""
    from tqdm.auto import tqdm
    reference = torch.cat([read_factors(classifier, generator(latents[i:i + batch_size]))
                           for i in range(0, len(latents), batch_size)])
    changed = np.zeros((directions.num_directions, len(shifts), len(latents), reference.shape[1]), dtype=bool)
    for k in tqdm(range(directions.num_directions), desc=directions.meta.get("method", "directions"),
                  disable=not progress, leave=False):
        h = directions[k].to(latents)
        for j, s in enumerate(shifts):
            for i in range(0, len(latents), batch_size):
                chunk = latents[i:i + batch_size]
                edited = generator.shifted(chunk, float(s) * h.expand(len(chunk), -1))
                changed[k, j, i:i + batch_size] = (read_factors(classifier, edited) != reference[i:i + batch_size]).numpy()
    return changed


def precision(changed: np.ndarray, factor: int) -> np.ndarray:
    """Share of images whose edit changed ``factor`` and no other: (K, S, N, F) -> (K, S)."""
    others = np.delete(changed, factor, axis=-1).any(-1)
    return (changed[..., factor] & ~others).mean(-1)


def choose_edits(changed: np.ndarray, shifts: list[float]) -> list[dict]:
    """Per factor, the (direction, shift) with the highest precision on these (calibration) images."""
    choices = []
    for f in range(changed.shape[-1]):
        table = precision(changed, f)
        k, j = np.unravel_index(np.argmax(table), table.shape)
        choices.append({"direction": int(k), "shift": float(shifts[j]), "calibration_precision": float(table[k, j])})
    return choices


def edit_precision_table(changed: np.ndarray, shifts: list[float], choices: list[dict]) -> list[dict]:
    """Test precision of each chosen edit, and along its direction and sign at every shift magnitude."""
    rows = []
    for f, choice in enumerate(choices):
        table = precision(changed, f)
        k, sign = choice["direction"], np.sign(choice["shift"])
        j = shifts.index(choice["shift"])
        same_sign = [(abs(s), float(table[k, i])) for i, s in enumerate(shifts) if np.sign(s) == sign]
        rows.append({**choice, "test_precision": float(table[k, j]),
                     "test_changed": float(changed[k, j, :, f].mean()),
                     "test_others_kept": float((~np.delete(changed[k, j], f, axis=-1).any(-1)).mean()),
                     "test_precision_by_magnitude": sorted(same_sign)})
    return rows
