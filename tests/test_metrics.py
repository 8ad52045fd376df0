import numpy as np
import pytest

from latentdirs.evaluation import metrics

FACTOR_SIZES = (10, 8, 4, 6)


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, size, 2_000) for size in FACTOR_SIZES], axis=1)


def disentangled(factors, seed=1):
    """One code per factor (standardized + small noise), in shuffled order."""
    rng = np.random.default_rng(seed)
    codes = (factors - factors.mean(0)) / factors.std(0) + 0.05 * rng.standard_normal(factors.shape)
    return codes[:, rng.permutation(factors.shape[1])]


def evenly_mixed(codes):
    """Rotation by a normalized 4x4 Hadamard matrix: every code carries every factor equally."""
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    return codes @ hadamard


def test_disentangled_code_scores_near_one(factors):
    scores = metrics.all_metrics(disentangled(factors), factors)
    assert scores["mig"] > 0.9
    assert scores["modularity"] > 0.95
    assert scores["dci_disentanglement"] > 0.9
    assert scores["dci_completeness"] > 0.9
    assert scores["dci_informativeness"] > 0.9


def test_rotated_code_scores_clearly_lower(factors):
    codes = disentangled(factors)
    rotation, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((4, 4)))
    random_rotation = codes @ rotation
    assert metrics.mig(random_rotation, factors) < 0.5
    assert metrics.dci(random_rotation, factors)["disentanglement"] < 0.5
    # Modularity is lenient to random rotations (a code mostly about one factor still counts as
    # modular), so it is tested on a rotation that mixes all factors evenly.
    mixed = evenly_mixed(codes)
    assert metrics.modularity(mixed, factors) < 0.5
    assert metrics.mig(mixed, factors) < 0.2


def test_constant_code_scores_zero(factors):
    codes = np.zeros((len(factors), 4))
    assert metrics.mig(codes, factors) == pytest.approx(0.0, abs=1e-9)
    assert metrics.modularity(codes, factors) == pytest.approx(0.0, abs=1e-9)
    scores = metrics.dci(codes, factors)
    assert scores["disentanglement"] == pytest.approx(0.0, abs=1e-9)
    assert scores["completeness"] == pytest.approx(0.0, abs=1e-9)


def test_mutual_information_of_a_copy_is_the_entropy(factors):
    info = metrics.mutual_information_matrix(factors[:, :1].astype(float), factors[:, :1])
    assert info[0, 0] == pytest.approx(metrics.factor_entropies(factors[:, :1])[0])


def test_bad_inputs_are_refused(factors):
    with pytest.raises(ValueError, match="integer"):
        metrics.mig(np.zeros((len(factors), 2)), factors.astype(float))
    with pytest.raises(ValueError, match="N ="):
        metrics.mig(np.zeros((5, 2)), factors)
    with pytest.raises(ValueError, match="NaN"):
        metrics.modularity(np.full((len(factors), 2), np.nan), factors)
