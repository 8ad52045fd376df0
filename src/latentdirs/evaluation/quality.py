"""Sample quality of a generator trained on procedural 3D-Shapes scenes, measured with known factors.

A small CNN is trained (supervised) to predict the six factors of real scenes. It then gives
two numbers for a generator:

- a Frechet distance between real and generated images in the CNN's penultimate-feature
  space (FID with a domain-specific network instead of Inception), reported next to the
  distance between two independent real sets of the same size, its noise floor;
- the fraction of images whose every factor is predicted with confidence > 0.9, on generated
  and on real images: a generated scene that the classifier reads unambiguously is a clean one;
- beside it, the fraction whose every factor is read within one step of a grid value (the
  probability of the best three neighbouring values > 0.9: one size, one orientation, one hue
  step around the circle; shape has no neighbours). The gap between the two tells off-grid
  scenes (an object between two sizes) from wrong ones.

    >>> from latentdirs.evaluation.quality import evaluate_generator_quality
    >>> report = evaluate_generator_quality(load_generator("shapes3d"), num_images=5000)
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.shapes3d import FACTOR_NAMES, FACTOR_SIZES, make_dataset, to_tensor


class FactorClassifier(nn.Module):
    """Four stride-2 conv layers -> 128-d features -> one classification head per factor."""

    def __init__(self, factor_sizes: tuple[int, ...] = FACTOR_SIZES, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        layers, channels = [], 3
        for out in (width, 2 * width, 4 * width, 4 * width):  # 64 -> 32 -> 16 -> 8 -> 4
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 16, feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList(nn.Linear(feature_dim, size) for size in factor_sizes)
        self.factor_sizes = tuple(factor_sizes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(images)
        return [head(features) for head in self.heads]


def train_factor_classifier(num_images: int = 20000, steps: int = 1500, batch_size: int = 64, lr: float = 3e-3,
                            seed: int = 1, progress: bool = True) -> FactorClassifier:
    """Fit the classifier on ``num_images`` fresh scenes (a seed range apart from the GAN's data)."""
    torch.manual_seed(seed)
    images, factors, _ = make_dataset(num_images, seed=seed + 1000)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    targets = torch.from_numpy(factors)
    model = FactorClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    rng = np.random.default_rng(seed)
    from tqdm.auto import tqdm
    model.train()
    for _ in tqdm(range(steps), desc="factor classifier", disable=not progress):
        index = torch.from_numpy(rng.integers(0, num_images, batch_size))
        logits = model(images[index].float().div_(127.5).sub_(1.0))
        loss = sum(nn.functional.cross_entropy(out, targets[index, i]) for i, out in enumerate(logits))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def classify(model: FactorClassifier, images: torch.Tensor, batch_size: int = 500):
    """Penultimate features (N, D) and per-factor probabilities [(N, size_i)] of images in [-1, 1]."""
    if len(images) < 1 or batch_size < 1:
        raise ValueError(f"need at least one image and batch_size >= 1, got {len(images)} and {batch_size}")
    feats, probs = [], [[] for _ in model.heads]
    for start in range(0, len(images), batch_size):
        f = model.features(images[start:start + batch_size])
        feats.append(f)
        for i, head in enumerate(model.heads):
            probs[i].append(head(f).softmax(1))
    return torch.cat(feats), [torch.cat(p) for p in probs]


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the Frechet distance of two Gaussians."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be two (N, D) arrays with the same D, got shapes {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:  # a covariance of one point is NaN
        raise ValueError(f"each feature set needs at least 2 rows, got {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features hold NaN or inf")
    mu_a, mu_b = a.mean(0), b.mean(0)
    # atleast_2d: np.cov of one feature is a 0-d array, which eigh refuses
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # Tr((S_a S_b)^1/2) = sum of sqrt eigenvalues of the symmetric S_a^1/2 S_b S_a^1/2.
    eigval, eigvec = np.linalg.eigh(cov_a)
    sqrt_a = (eigvec * np.sqrt(np.clip(eigval, 0, None))) @ eigvec.T
    cross = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def confident_fraction(probabilities: list[torch.Tensor], threshold: float = 0.9) -> float:
    """Fraction of images whose every factor's top class has probability > ``threshold``."""
    if not probabilities or len(probabilities[0]) == 0:
        raise ValueError("confident_fraction needs one (N, size) probability tensor per factor, N >= 1")
    confident = torch.stack([p.max(1).values > threshold for p in probabilities]).all(0)
    return confident.float().mean().item()


# How the values of each factor neighbour each other: hues lie on the colour circle, sizes and
# orientations on a line; the four shapes are unordered.
FACTOR_ORDER = {"floor_hue": "circular", "wall_hue": "circular", "object_hue": "circular",
                "scale": "linear", "orientation": "linear", "background_fade": "linear", "shape": None}


def within_one_step(probabilities: torch.Tensor, order: str | None) -> torch.Tensor:
    """Per image, the largest probability of three neighbouring values (k-1, k, k+1); the top one if unordered."""
    if order not in (None, "circular", "linear"):  # anything else would silently count as linear
        raise ValueError(f"order must be 'circular', 'linear' or None (unordered), got {order!r}")
    if order is None:
        return probabilities.max(1).values
    if order == "circular":
        window = probabilities + probabilities.roll(1, 1) + probabilities.roll(-1, 1)
    else:
        padded = nn.functional.pad(probabilities, (1, 1))
        window = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return window.max(1).values


def within_one_step_fractions(probabilities: list[torch.Tensor], names=FACTOR_NAMES,
                              threshold: float = 0.9) -> tuple[float, dict[str, float]]:
    """Fraction of images whose every factor is read within one step (> ``threshold``), and per factor."""
    names = tuple(names)
    if len(names) != len(probabilities) or not names:  # zip would silently drop the extra factors
        raise ValueError(f"{len(probabilities)} probability tensors for {len(names)} factor names: give one per factor")
    unknown = [name for name in names if name not in FACTOR_ORDER]
    if unknown:
        raise ValueError(f"no neighbour order known for factors {unknown}; known: {', '.join(FACTOR_ORDER)}")
    near = torch.stack([within_one_step(p, FACTOR_ORDER[name]) > threshold for name, p in zip(names, probabilities)])
    return near.all(0).float().mean().item(), {name: row.float().mean().item() for name, row in zip(names, near)}


@torch.no_grad()
def generate(generator, num_images: int, seed: int = 0, batch_size: int = 250) -> torch.Tensor:
    if num_images < 1 or batch_size < 1:
        raise ValueError(f"need num_images >= 1 and batch_size >= 1, got {num_images} and {batch_size}")
    rng = torch.Generator().manual_seed(seed)
    out = [generator(generator.sample_latents(min(batch_size, num_images - start), generator=rng))
           for start in range(0, num_images, batch_size)]
    return torch.cat(out).clamp(-1, 1)


def evaluate_generator_quality(generator, num_images: int = 5000, classifier: FactorClassifier | None = None,
                               seed: int = 0, threshold: float = 0.9, progress: bool = True) -> dict:
    """Frechet distances and confident-factor fractions for ``generator`` vs real scenes."""
    if num_images < 2:  # before training the classifier: a Frechet distance needs two images a side
        raise ValueError(f"num_images must be >= 2, got {num_images}")
    classifier = classifier or train_factor_classifier(progress=progress)
    real_a, factors_a, _ = make_dataset(num_images, seed=seed + 2000)
    real_b, _, _ = make_dataset(num_images, seed=seed + 3000)
    feats_a, probs_a = classify(classifier, to_tensor(real_a))
    feats_b, probs_b = classify(classifier, to_tensor(real_b))
    feats_g, probs_g = classify(classifier, generate(generator, num_images, seed=seed))
    accuracy = {name: (p.argmax(1).numpy() == factors_a[:, i]).mean().item()
                for i, (name, p) in enumerate(zip(FACTOR_NAMES, probs_a))}
    # How evenly generated images cover each factor's values (1 = uniform, as in the real data).
    coverage = {}
    for name, size, p in zip(FACTOR_NAMES, FACTOR_SIZES, probs_g):
        counts = np.bincount(p.argmax(1).numpy(), minlength=size) / len(p)
        nonzero = counts[counts > 0]
        coverage[name] = float(np.exp(-(nonzero * np.log(nonzero)).sum()) / size)  # normalised perplexity
    near_generated, near_per_factor = within_one_step_fractions(probs_g, threshold=threshold)
    return {
        "num_images": num_images,
        "frechet_distance_real_vs_generated": frechet_distance(feats_a.numpy(), feats_g.numpy()),
        "frechet_distance_real_vs_real": frechet_distance(feats_a.numpy(), feats_b.numpy()),
        "confident_fraction_generated": confident_fraction(probs_g, threshold),
        "confident_fraction_real": confident_fraction(probs_a, threshold),
        "confidence_threshold": threshold,
        # which factors a generated scene fails to show clearly
        "confident_fraction_generated_per_factor": {
            name: (p.max(1).values > threshold).float().mean().item() for name, p in zip(FACTOR_NAMES, probs_g)},
        # the same, a neighbouring value allowed: are the misses off-grid scenes or wrong ones?
        "within_one_step_fraction_generated": near_generated,
        "within_one_step_fraction_real": within_one_step_fractions(probs_a, threshold=threshold)[0],
        "within_one_step_fraction_generated_per_factor": near_per_factor,
        "classifier_accuracy_real": accuracy,
        "generated_factor_coverage": coverage,
    }
