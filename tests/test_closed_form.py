import pytest
import torch
from torch import nn

import latentdirs
from latentdirs.closed_form import ganspace, sefa, sefa_from_weight
from latentdirs.directions import DirectionError, orthonormality_error
from latentdirs.generators.base import GeneratorError

LATENT_DIM = 8


def tiny_network(seed=0):
    """Linear first layer -> 4x4 grid -> upsampled 16x16 RGB image."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(LATENT_DIM, 4 * 4 * 4), nn.Unflatten(1, (4, 4, 4)), nn.ReLU(),
                         nn.Upsample(scale_factor=4), nn.Conv2d(4, 3, 3, padding=1), nn.Tanh())


class TinyWithFeatures(latentdirs.Generator):
    """A Z-space generator whose early features are the first layer's output."""

    name, latent_space, latent_dim = "tiny", "z", LATENT_DIM

    def __init__(self):
        super().__init__()
        self.network = tiny_network()
        self.freeze()

    def synthesize(self, latent):
        return self.network(latent)

    def early_features(self, latent):
        return self.network[2](self.network[1](self.network[0](latent))).flatten(1)


def test_sefa_recovers_top_right_singular_vectors():
    network = tiny_network()
    generator = latentdirs.wrap(network, LATENT_DIM)
    found = sefa(generator, num_directions=3, normalize=False)
    _, singular, vh = torch.linalg.svd(network[0].weight.detach().double())
    cosines = (found.matrix.double().t() @ vh[:3].t()).diagonal().abs()
    assert torch.allclose(cosines, torch.ones(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(found.scores.double(), singular[:3] ** 2, rtol=1e-4)
    assert found.meta["method"] == "sefa" and found.meta["normalize"] is False


def test_sefa_normalize_flag_changes_the_result():
    weight = torch.randn(32, LATENT_DIM) * torch.linspace(0.1, 3.0, 32).unsqueeze(1)  # rows of unequal norm
    plain, _ = sefa_from_weight(weight, 2, normalize=False)
    normalized, _ = sefa_from_weight(weight, 2, normalize=True)
    assert (plain.t() @ normalized).diagonal().abs().min() < 0.99
    row_normalized = weight / weight.norm(dim=1, keepdim=True)
    expected, _ = sefa_from_weight(row_normalized, 2, normalize=False)
    assert torch.allclose(expected, normalized, atol=1e-5)


def test_sefa_directions_are_orthonormal_with_descending_scores():
    directions, eigenvalues = sefa_from_weight(torch.randn(40, LATENT_DIM), LATENT_DIM)
    assert orthonormality_error(directions) < 1e-5
    assert (eigenvalues[:-1] >= eigenvalues[1:]).all()


def test_sefa_without_first_layer_explains_how_to_provide_one():
    generator = latentdirs.wrap(lambda z: torch.tanh(z.view(-1, 1, 1, LATENT_DIM).expand(-1, 3, 16, -1).repeat(1, 1, 1, 2)),
                                LATENT_DIM)
    with pytest.raises(GeneratorError, match="first_layer="):
        sefa(generator)
    with pytest.raises(DirectionError, match="at most"):
        sefa_from_weight(torch.randn(5, LATENT_DIM), LATENT_DIM + 1)


def test_ganspace_gives_unit_directions_with_decreasing_scores():
    found = ganspace(TinyWithFeatures(), num_directions=4, num_samples=2_000, seed=0)
    assert found.matrix.shape == (LATENT_DIM, 4)
    assert torch.allclose(found.matrix.norm(dim=0), torch.ones(4), atol=1e-5)
    assert (found.scores[:-1] >= found.scores[1:]).all() and found.scores.sum() <= 1
    gram = found.matrix.t() @ found.matrix
    assert (gram - torch.eye(4)).abs().max() < 0.5  # regression-mapped axes: near, not exactly, orthogonal
    again = ganspace(TinyWithFeatures(), num_directions=4, num_samples=2_000, seed=0)
    assert torch.equal(found.matrix, again.matrix)


def test_ganspace_on_a_linear_generator_finds_its_principal_axes():
    # Features = z @ M: the top PCA axis of the features maps back to the top right singular vector of M.
    class Linear(TinyWithFeatures):
        def early_features(self, latent):
            return latent @ self.mixing

    generator = Linear()
    generator.mixing = torch.diag(torch.tensor([5.0, 3, 1, 1, 1, 1, 1, 1]))
    found = ganspace(generator, num_directions=2, num_samples=4_000)
    assert found.matrix[:, 0].abs().argmax() == 0 and found.matrix[0, 0].abs() > 0.99
    assert found.matrix[1, 1].abs() > 0.99


def test_ganspace_in_w_space_is_pca_of_the_latents():
    class WSpace(TinyWithFeatures):
        latent_space = "w"

        def sample_latents(self, num, generator=None, device=None):
            return torch.randn(num, LATENT_DIM, generator=generator) * torch.linspace(3, 1, LATENT_DIM)

    found = ganspace(WSpace(), num_directions=2, num_samples=4_000)
    assert found.matrix[0, 0].abs() > 0.99 and found.meta["pca_on"] == "latents"


def test_ganspace_without_features_is_a_clear_error():
    generator = latentdirs.wrap(tiny_network(), LATENT_DIM)
    with pytest.raises(GeneratorError, match="early_features"):
        ganspace(generator, num_directions=2, num_samples=100)


def test_sefa_refuses_a_weight_with_nan_and_ganspace_too_few_samples(planted):
    weight = torch.randn(8, 4)
    weight[0, 0] = float("nan")
    with pytest.raises(DirectionError, match="NaN or inf"):  # was linalg.eigh's "ill-conditioned"
        sefa_from_weight(weight, 2)
    for samples in (0, 3):  # 3 centred samples span 2 axes: a third came back with zero variance
        with pytest.raises(DirectionError, match="raise num_samples"):
            ganspace(planted, 3, num_samples=samples)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ganspace(planted, 2, num_samples=10, batch_size=0)
