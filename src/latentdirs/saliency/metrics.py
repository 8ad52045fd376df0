"""Saliency metrics, as the salient-object-detection literature reports them.

- MAE: mean |prediction - truth| over pixels, prediction = the object probability in [0, 1]
  (no thresholding), averaged per image and then over images.
- max F-measure: for each of 255 thresholds t = 1/255 ... 255/255 the prediction is binarised
  (p >= t); precision and recall are computed per image and averaged over images; then
  F = (1 + beta^2) P R / (beta^2 P + R) with beta^2 = 0.3, and the maximum over thresholds.
- IoU: |pred & truth| / |pred | truth| with the prediction binarised at 0.5 (1 when both are empty).
Truth masks are binarised at 0.5.
"""
from __future__ import annotations

import torch

from ..configs import is_integer

BETA2 = 0.3
NUM_THRESHOLDS = 255


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).float() if x.dim() > 2 else x.reshape(1, -1).float()  # flatten: also for 0 images


def _pair(prediction: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both flattened to (N, pixels), or a ValueError: a mismatch broadcast silently (1 mask against N
    predictions) or failed with torch's size message; a prediction outside [0, 1] gave numbers of another scale."""
    p, t = _flat(prediction), _flat(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} must hold the same "
                         "number of images of the same size; resize the prediction to its mask first")
    if p.numel() and not ((p >= -1e-4) & (p <= 1 + 1e-4)).all():  # NaN fails too
        raise ValueError(f"predictions must be object probabilities in [0, 1], got values in "
                         f"[{p.min().item():.4g}, {p.max().item():.4g}] (a 0-255 mask: divide by 255)")
    return p, t


def mae(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image MAE (N,) for predictions in [0, 1] and masks (N, [1,] H, W)."""
    p, t = _pair(prediction, truth)
    return (p - (t >= 0.5).float()).abs().mean(1)


def iou(prediction: torch.Tensor, truth: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image IoU (N,) of the prediction binarised at ``threshold``."""
    p, t = _pair(prediction, truth)
    p, t = p >= threshold, t >= 0.5
    inter, union = (p & t).sum(1).float(), (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def precision_recall_curve(prediction: torch.Tensor, truth: torch.Tensor,
                           num_thresholds: int = NUM_THRESHOLDS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(thresholds (T,), precision (N, T), recall (N, T)) per image."""
    p, t = _pair(prediction, truth)
    t = t >= 0.5
    thresholds = torch.arange(1, num_thresholds + 1, dtype=torch.float32) / num_thresholds
    above = p.unsqueeze(1) >= thresholds.view(1, -1, 1)  # (N, T, P)
    tp = (above & t.unsqueeze(1)).sum(2).float()
    predicted = above.sum(2).float()
    positives = t.sum(1, keepdim=True).float()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(positives > 0, tp / positives.clamp_min(1), torch.zeros_like(tp))
    return thresholds, precision, recall


class SaliencyScores:
    """Accumulates per-image MAE, IoU and the precision/recall curve; :meth:`summary` gives the numbers."""

    def __init__(self, num_thresholds: int = NUM_THRESHOLDS) -> None:
        if not is_integer(num_thresholds) or num_thresholds < 1:
            raise ValueError(f"num_thresholds must be a positive integer, got {num_thresholds!r}")
        self.num_thresholds = num_thresholds
        self.mae: list[float] = []
        self.iou: list[float] = []
        self.precision_sum = torch.zeros(num_thresholds)
        self.recall_sum = torch.zeros(num_thresholds)
        self.count = 0

    def update(self, prediction: torch.Tensor, truth: torch.Tensor) -> None:
        """One batch of the same size, or one image: prediction and truth (N, [1,] H, W) or (H, W)."""
        if prediction.dim() == 2:
            prediction, truth = prediction[None], truth[None]
        self.mae += mae(prediction, truth).tolist()
        self.iou += iou(prediction, truth).tolist()
        _, precision, recall = precision_recall_curve(prediction, truth, self.num_thresholds)
        self.precision_sum += precision.sum(0)
        self.recall_sum += recall.sum(0)
        self.count += precision.shape[0]

    def f_curve(self, beta2: float = BETA2) -> torch.Tensor:
        p, r = self.precision_sum / max(self.count, 1), self.recall_sum / max(self.count, 1)
        return torch.where(beta2 * p + r > 0, (1 + beta2) * p * r / (beta2 * p + r).clamp_min(1e-12), torch.zeros_like(p))

    def summary(self) -> dict:
        f = self.f_curve()
        best = int(f.argmax())
        return {"num_images": self.count, "mae": sum(self.mae) / max(len(self.mae), 1),
                "max_f": float(f[best]), "max_f_threshold": (best + 1) / self.num_thresholds,
                "iou": sum(self.iou) / max(len(self.iou), 1), "beta2": BETA2}


def max_f_measure(prediction: torch.Tensor, truth: torch.Tensor, beta2: float = BETA2) -> float:
    """Max F over 255 thresholds for one batch (see the module docstring)."""
    scores = SaliencyScores()
    scores.update(prediction, truth)
    return float(scores.f_curve(beta2).max())
