import numpy as np
import pytest
import torch

from latentdirs.data.shapes3d import FACTOR_SIZES
from latentdirs.evaluation.quality import (FactorClassifier, classify, confident_fraction, frechet_distance,
                                           within_one_step, within_one_step_fractions)


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 4))
    assert abs(frechet_distance(a, rng.normal(size=(20000, 4)))) < 0.02
    shifted = rng.normal(size=(20000, 4)) + np.array([1.0, 0, 0, 0])
    assert abs(frechet_distance(a, shifted) - 1.0) < 0.05
    # N(0, I) vs N(0, 4I) in 4-d: 4 * (1 + 4 - 2*2) = 4
    assert abs(frechet_distance(a, 2 * rng.normal(size=(20000, 4))) - 4.0) < 0.2


def test_confident_fraction():
    sure = torch.tensor([[0.95, 0.05], [0.5, 0.5]])
    also_sure = torch.tensor([[0.02, 0.98], [0.99, 0.01]])
    assert confident_fraction([sure, also_sure]) == 0.5


def test_within_one_step_allows_a_neighbouring_value():
    between_sizes = torch.tensor([[0.0, 0.48, 0.47, 0.05, 0.0]])  # an object between two sizes
    spread = torch.tensor([[0.3, 0.0, 0.3, 0.0, 0.4]])  # no reading at all
    assert within_one_step(between_sizes, "linear").item() == pytest.approx(1.0)
    assert within_one_step(spread, "linear").item() < 0.9
    wrapped = torch.tensor([[0.5, 0.0, 0.0, 0.0, 0.45]])  # hues: the last value neighbours the first
    assert within_one_step(wrapped, "circular").item() > 0.9 and within_one_step(wrapped, "linear").item() < 0.9
    assert within_one_step(between_sizes, None).item() == pytest.approx(0.48)  # shapes are unordered
    overall, per_factor = within_one_step_fractions([torch.cat([between_sizes, spread])] * 2, ("scale", "shape"))
    assert overall == 0.0 and per_factor == {"scale": 0.5, "shape": 0.0}


def test_classifier_shapes():
    model = FactorClassifier().eval()
    features, probs = classify(model, torch.zeros(3, 3, 64, 64))
    assert features.shape == (3, 128)
    assert [p.shape[1] for p in probs] == list(FACTOR_SIZES)
    torch.testing.assert_close(probs[0].sum(1), torch.ones(3))


def test_degenerate_quality_inputs_are_named():
    rng = np.random.default_rng(0)
    assert frechet_distance(rng.normal(size=(50, 1)), rng.normal(size=(50, 1))) >= 0  # one feature was a LinAlgError
    for a, b, match in ((rng.normal(size=(1, 3)), rng.normal(size=(9, 3)), "at least 2 rows"),  # was NaN
                        (rng.normal(size=(9, 3)), rng.normal(size=(9, 4)), "the same D"),
                        (np.full((9, 3), np.nan), rng.normal(size=(9, 3)), "NaN")):
        with pytest.raises(ValueError, match=match):
            frechet_distance(a, b)
    with pytest.raises(ValueError, match="one .* probability tensor per factor"):
        confident_fraction([torch.zeros(0, 3)])  # was NaN
    with pytest.raises(ValueError, match="order must be 'circular', 'linear' or None"):
        within_one_step(torch.rand(4, 3), "circle")  # was counted as linear
    with pytest.raises(ValueError, match="no neighbour order known"):
        within_one_step_fractions([torch.rand(4, 3)], names=("hue",))
    with pytest.raises(ValueError, match="1 probability tensors for 2 factor names"):
        within_one_step_fractions([torch.rand(4, 3)], names=("scale", "shape"))
    with pytest.raises(ValueError, match="at least one image"):
        classify(FactorClassifier(), torch.zeros(0, 3, 64, 64))
