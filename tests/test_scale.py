"""Speed paths must not change the maths: micro-batches, shared pairs, the fast exponential."""
import copy

import pytest
import torch

import latentdirs
from latentdirs.directions import DirectionMatrix, expm_columns
from latentdirs.discovery import DiscoveryConfig, _Trainable, sample_pairs, step_rng, train_step
from latentdirs.reconstructors import make_reconstructor


@pytest.mark.parametrize("d,k,scale", [(16, 5, 0.0), (16, 16, 0.5), (64, 20, 2.0)])
def test_expm_columns_matches_matrix_exp_in_value_and_gradient(d, k, scale):
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(d, d, generator=g, dtype=torch.float64) * scale
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    grads = []
    for fn in (expm_columns, lambda s, k: torch.linalg.matrix_exp(s)[:, :k]):
        p = p0.clone().requires_grad_(True)
        a = fn(p - p.t(), k)
        (a * w).sum().backward()
        grads.append((a.detach(), p.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-10)
    a32 = expm_columns((p0 - p0.t()).float(), k)
    assert (a32.t() @ a32 - torch.eye(k)).abs().max() < 1e-5


def _one_update(planted, parametrization, shifts_per_latent, micro_batches):
    """A and R after one plain-SGD step (update = -gradient), R's batch norm in eval mode."""
    image_shape = planted.image_shape  # computed once from random latents: before seeding
    torch.manual_seed(0)
    cfg = DiscoveryConfig(num_directions=5, parametrization=parametrization, batch_size=32,
                          shifts_per_latent=shifts_per_latent, micro_batches=micro_batches)
    matrix = DirectionMatrix(planted.latent_dim, 5, parametrization)
    if parametrization == "ortho":
        with torch.no_grad():
            matrix.skew.normal_(0, 0.1)  # away from S = 0, where the gradient is special
    trainable = _Trainable(matrix, make_reconstructor("lenet", image_shape, 5), planted, False)
    # Batch norm in train mode normalizes each micro-batch by its own statistics, so only with
    # fixed statistics is accumulation over chunks exactly the full-batch gradient.
    trainable.eval()
    opt = torch.optim.SGD(trainable.parameters(), lr=1.0)
    z, index, shift = sample_pairs(planted, cfg, cfg.batch_size, step_rng(3, 0, 0), torch.device("cpu"))
    stats = train_step(trainable, planted, opt, cfg, z, index, shift)
    return copy.deepcopy(trainable.state_dict()), stats


@pytest.mark.parametrize("parametrization,shifts_per_latent", [("unit", 1), ("ortho", 2)])
def test_micro_batches_give_the_full_batch_update(planted, parametrization, shifts_per_latent):
    full, full_stats = _one_update(planted, parametrization, shifts_per_latent, 1)
    for chunks in (2, 4):
        split, split_stats = _one_update(planted, parametrization, shifts_per_latent, chunks)
        for name, value in full.items():
            assert torch.allclose(split[name], value, atol=1e-5, rtol=1e-4), name
        assert split_stats["loss"] == pytest.approx(full_stats["loss"], rel=1e-5)
        assert split_stats["accuracy"] == pytest.approx(full_stats["accuracy"])


def test_shared_pairs_pair_each_base_image_with_its_own_shifted_partners(planted):
    # M = 2: rows 2i and 2i+1 of R's input share G(z_i); their shifted halves use z_i + eps A e_k.
    cfg = DiscoveryConfig(num_directions=5, batch_size=8, shifts_per_latent=2)
    z, index, shift = sample_pairs(planted, cfg, 8, step_rng(0, 0, 0), torch.device("cpu"))
    assert z.shape == (4, planted.latent_dim) and index.shape == shift.shape == (8,)
    seen = {}

    def recon(pair):
        seen["pair"] = pair
        return torch.zeros(8, 5), torch.zeros(8)

    matrix = DirectionMatrix(planted.latent_dim, 5, "random", seed=1)
    trainable = _Trainable(matrix, recon, planted, False)
    with torch.no_grad():
        trainable(z, index, shift, planted(z))
    c = planted.image_shape[0]
    pair = seen["pair"]
    a = matrix.matrix()
    for row in range(8):
        zi = z[row // 2]
        assert torch.allclose(pair[row, :c], planted(zi[None])[0], atol=1e-6)
        moved = zi + shift[row] * a[:, index[row]]
        assert torch.allclose(pair[row, c:], planted(moved[None])[0], atol=1e-5)


def test_bf16_autocast_runs_and_keeps_directions_fp32(planted):
    result = latentdirs.discover(planted, num_directions=5, parametrization="ortho", steps=3, batch_size=16,
                                 progress=False, importance_latents=0, amp=True)
    m = result.directions.matrix
    assert m.dtype == torch.float32 and (m.t() @ m - torch.eye(5)).abs().max() < 1e-5


def test_micro_batches_compute_a_once_per_step(planted, monkeypatch):
    import latentdirs.directions as directions
    calls = []
    original = directions.expm_columns
    monkeypatch.setattr(directions, "expm_columns", lambda s, k: calls.append(1) or original(s, k))
    _one_update(planted, "ortho", 1, 4)
    assert len(calls) == 1
