"""Which classes a class-conditional generator should sample for a target image set.

The paper: run an ImageNet classifier (ResNet-18) over the *unlabelled* target images,
count how often each class appears in a top-5, keep the top 25% most frequent classes.
"25%" is of the classes that appear in at least one top-5 (rounded up, at least one).

Any callable ``images -> logits`` works as the classifier (images in [-1, 1], NCHW, as
loaded by :func:`latentdirs.saliency.masks.load_image`); no ImageNet classifier ships here.
Wrap a torchvision one, for instance, with its own normalisation:

    >>> import torchvision
    >>> net = torchvision.models.resnet18(weights="IMAGENET1K_V1").eval()
    >>> mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    >>> classifier = lambda x: net(((x + 1) / 2 - mean) / std)
    >>> picked = select_classes(classifier, image_folder_batches("ECSSD/images", size=224))
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..configs import is_integer
from .masks import IMAGE_SUFFIXES, load_image

Classifier = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def count_top_classes(classifier: Classifier, batches: Iterable[torch.Tensor], top_k: int = 5) -> Counter:
    """How many images have each class among their ``top_k`` predictions."""
    # top_k 0 was reported as "no target images were classified"
    if not is_integer(top_k) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    counts: Counter = Counter()
    for images in batches:
        logits = classifier(images)
        if logits.dim() != 2:
            raise ValueError(f"the classifier must return logits of shape (batch, classes), got {tuple(logits.shape)}")
        if not torch.isfinite(logits).all():  # topk of NaN logits picks arbitrary classes
            raise ValueError("the classifier returned NaN or inf logits; check its weights and input scaling")
        k = min(top_k, logits.shape[1])
        counts.update(logits.topk(k, dim=1).indices.flatten().tolist())
    return counts


def select_classes(classifier: Classifier, batches: Iterable[torch.Tensor], top_k: int = 5,
                   keep_fraction: float = 0.25) -> tuple[list[int], Counter]:
    """(classes to keep, most frequent first; all counts). See the module docstring."""
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    counts = count_top_classes(classifier, batches, top_k)
    if not counts:
        raise ValueError("no target images were classified")
    ranked = sorted(counts, key=lambda c: (-counts[c], c))  # ties: lower class index first, deterministic
    keep = max(1, math.ceil(keep_fraction * len(ranked)))
    return ranked[:keep], counts


def image_folder_batches(folder: str | Path, size: int = 224, batch_size: int = 32) -> Iterable[torch.Tensor]:
    """Batches of the images in ``folder`` (shorter side resized then centre-cropped to ``size``), [-1, 1] NCHW."""
    if size < 1 or batch_size < 1:  # size 0 gave 0x0 images, batch_size 0 range()'s error
        raise ValueError(f"size and batch_size must be at least 1, got {size} and {batch_size}")
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    for start in range(0, len(paths), batch_size):
        batch = []
        for p in paths[start:start + batch_size]:
            x = load_image(p, size)
            top, left = (x.shape[1] - size) // 2, (x.shape[2] - size) // 2
            batch.append(x[:, top:top + size, left:left + size])
        yield torch.stack(batch)
