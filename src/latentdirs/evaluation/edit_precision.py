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


def _check_changed(changed, shifts) -> np.ndarray:
    """``changed`` as a (K, S, N, F) array with S = len(shifts) and no empty axis; a clear error otherwise."""
    changed = np.asarray(changed)
    if changed.ndim != 4 or 0 in changed.shape:
        raise ValueError(f"changed must be a non-empty (directions, shifts, images, factors) array as factor_changes() "
                         f"returns, got shape {changed.shape}")
    if changed.shape[1] != len(shifts):  # shifts[j] would name another shift than the one measured
        raise ValueError(f"changed holds {changed.shape[1]} shifts but {len(shifts)} shifts were given: pass the "
                         "shifts factor_changes() was run with")
    return changed


def choose_edits(changed: np.ndarray, shifts: list[float]) -> list[dict]:
    """Per factor, the (direction, shift) with the highest precision on these (calibration) images."""
    changed = _check_changed(changed, shifts)
    choices = []
    for f in range(changed.shape[-1]):
        table = precision(changed, f)
        k, j = np.unravel_index(np.argmax(table), table.shape)
        choices.append({"direction": int(k), "shift": float(shifts[j]), "calibration_precision": float(table[k, j])})
    return choices


def edit_precision_table(changed: np.ndarray, shifts: list[float], choices: list[dict]) -> list[dict]:
    """Test precision of each chosen edit, and along its direction and sign at every shift magnitude."""
    changed = _check_changed(changed, shifts)
    shifts = list(shifts)
    if len(choices) > changed.shape[-1]:
        raise ValueError(f"{len(choices)} choices for {changed.shape[-1]} factors: pass choose_edits()'s, "
                         "one per factor")
    for choice in choices:
        if not 0 <= choice["direction"] < changed.shape[0] or choice["shift"] not in shifts:
            raise ValueError(f"choice {choice} names no direction (0..{changed.shape[0] - 1}) or shift ({shifts}) of "
                             "these test images: choose on the same directions and shifts")
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


@torch.no_grad()
def labelled_directions(generator: Generator, classifier, num_samples: int = 20000, threshold: float = 0.9,
                        ridge: float = 1e-3, batch_size: int = 250, seed: int = 0,
                        factor_names: tuple[str, ...] | None = None) -> DirectionSet:
    """A reference that USES LABELS: per factor, the straight line that best separates its values.

    Samples latents from the prior, reads ``G(latent)`` with the classifier and keeps, per factor,
    the samples it reads with confidence > ``threshold``. The direction for that factor is the
    leading axis of Fisher's discriminant: it maximizes the spread between the factor's class
    means relative to the spread within a class, which is where the other factors vary. So it
    moves the factor and as little else as any straight line can, by this measure.

    Not a discovery method (it needs the factor labels): it estimates what the latent space
    allows, so a label-free set can be read against it. One unit-norm direction per factor, in
    factor order; a factor with fewer than two confidently read values gets none (with a warning).
    """
    from .quality import classify
    rng = torch.Generator().manual_seed(seed)
    latents, readings, confidence = [], [], []
    for start in range(0, num_samples, batch_size):
        latent = generator.sample_latents(min(batch_size, num_samples - start), generator=rng)
        _, probs = classify(classifier, generator(latent).clamp(-1, 1))
        latents.append(latent.cpu())
        readings.append(torch.stack([p.argmax(1) for p in probs], 1))
        confidence.append(torch.stack([p.max(1).values for p in probs], 1))
    latents = torch.cat(latents).double()
    if latents.dim() != 2:
        raise ValueError(f"labelled_directions needs flat latents (N, d); the generator gives {tuple(latents.shape)}")
    readings, confidence = torch.cat(readings), torch.cat(confidence)
    dim = latents.shape[1]
    columns, scores, kept, skipped = [], [], [], []
    for f in range(readings.shape[1]):
        sure = confidence[:, f] > threshold
        x, y = latents[sure], readings[sure, f]
        classes = [c for c in y.unique().tolist() if (y == c).sum() >= 2]
        if len(classes) < 2:  # the generator never draws this factor readably: no line to estimate
            skipped.append(f)
            continue
        mean = x.mean(0)
        between = torch.zeros(dim, dim, dtype=torch.float64)
        within = torch.zeros(dim, dim, dtype=torch.float64)
        for c in classes:
            xc = x[y == c]
            offset = (xc.mean(0) - mean)[:, None]
            between += len(xc) * offset @ offset.T
            centred = xc - xc.mean(0)
            within += centred.T @ centred
        within += ridge * within.diagonal().mean() * torch.eye(dim, dtype=torch.float64)
        # generalized eigenproblem between v = lambda within v, through within's Cholesky factor
        chol = torch.linalg.cholesky(within)
        inv = torch.linalg.solve_triangular(chol, torch.eye(dim, dtype=torch.float64), upper=False)
        values, vectors = torch.linalg.eigh(inv @ between @ inv.T)
        direction = inv.T @ vectors[:, -1]
        columns.append(direction / direction.norm())
        scores.append(values[-1].item())
        kept.append(int(sure.sum()))
    names = list(factor_names) if factor_names is not None else [f"factor {f}" for f in range(readings.shape[1])]
    if not columns:
        raise ValueError(f"the classifier reads fewer than two values of every factor with confidence > {threshold} "
                         f"on {num_samples} samples: raise num_samples or lower threshold")
    if skipped:
        import warnings
        warnings.warn(f"labelled_directions: no direction for {', '.join(names[f] for f in skipped)}: fewer than two "
                      f"of its values are read with confidence > {threshold} on {num_samples} samples", stacklevel=2)
    return DirectionSet(torch.stack(columns, 1).float(), scores=torch.tensor(scores),
                        names=[n for f, n in enumerate(names) if f not in skipped],
                        meta={"method": "labelled-lda", "uses_labels": True, "num_samples": num_samples,
                              "threshold": threshold, "confident_samples_per_factor": kept,
                              "skipped_factors": [names[f] for f in skipped],
                              "generator": generator.describe()})
