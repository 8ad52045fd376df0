"""The levers of LD's objective: an annealed shift weight and the image-change overlap penalty."""
import math

import pytest
import torch

import latentdirs
from latentdirs.directions import orthonormality_error
from latentdirs.discovery import DiscoveryConfig, shift_weight_at
from latentdirs.importance import image_change_overlap


def test_shift_weight_schedules_anneal_to_zero_at_the_last_step():
    constant = DiscoveryConfig(steps=101, shift_weight=0.5)
    assert [shift_weight_at(constant, s) for s in (0, 50, 100)] == [0.5, 0.5, 0.5]
    linear = DiscoveryConfig(steps=101, shift_weight=0.5, shift_weight_schedule="linear")
    assert [shift_weight_at(linear, s) for s in (0, 50, 100)] == pytest.approx([0.5, 0.25, 0.0])
    cosine = DiscoveryConfig(steps=101, shift_weight=0.5, shift_weight_schedule="cosine")
    assert [shift_weight_at(cosine, s) for s in (0, 50, 100)] == pytest.approx([0.5, 0.25, 0.0])
    assert shift_weight_at(cosine, 25) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)))


def test_an_annealed_run_logs_its_shift_weight(planted):
    result = latentdirs.discover(planted, num_directions=4, steps=8, batch_size=16, log_every=4, progress=False,
                                 shift_weight_schedule="linear", importance_latents=0)
    logged = [row["shift_weight"] for row in result.history]
    assert logged[0] > logged[1] > 0  # mean lambda of steps 0-3, then 4-7 (the last one is 0)


def test_overlap_penalty_needs_two_shifts_per_latent(planted):
    with pytest.raises(ValueError, match="shifts_per_latent >= 2"):
        latentdirs.discover(planted, num_directions=4, steps=2, overlap_weight=1.0, progress=False)
    with pytest.raises(ValueError, match="overlap_weight must be a finite number >= 0"):
        latentdirs.discover(planted, num_directions=4, steps=2, overlap_weight=-1.0, progress=False)
    with pytest.raises(ValueError, match="shift_weight_schedule"):
        latentdirs.discover(planted, num_directions=4, steps=2, shift_weight_schedule="exp", progress=False)


def test_image_change_overlap_tells_shared_pixels_from_separate_ones(planted):
    truth = planted.factor_directions()
    x, hue = truth[:, 0], truth[:, 3]
    overlap = image_change_overlap(planted, torch.stack([x, x, hue], 1), num_latents=16)
    assert overlap[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert overlap[0, 2] < 0.5 * overlap[0, 1]
    assert torch.allclose(overlap, overlap.t())


def test_overlap_penalty_pushes_directions_to_move_different_pixels(planted):
    def mean_overlap(weight):
        found = latentdirs.discover(planted, num_directions=5, steps=100, batch_size=32, lr=3e-3, seed=0,
                                    shifts_per_latent=2, overlap_weight=weight, progress=False, importance_latents=0)
        overlap = image_change_overlap(planted, found.directions.matrix, num_latents=32, seed=1)
        return overlap[~torch.eye(5, dtype=torch.bool)].mean().item(), found.history
    without, _ = mean_overlap(0.0)
    with_penalty, history = mean_overlap(10.0)
    assert "overlap" in history[-1]
    # measured (seeds 0/1/2): 0.146 -> 0.071, 0.103 -> 0.075, 0.097 -> 0.070
    assert with_penalty < 0.8 * without, (with_penalty, without)


def test_recognizability_ranks_near_copies_last(planted):
    truth = planted.factor_directions()
    x, y, hue = truth[:, 0], truth[:, 1], truth[:, 3]
    found = latentdirs.discover(planted, num_directions=4, steps=100, batch_size=32, lr=3e-3, seed=0, progress=False,
                                fixed_matrix=torch.stack([x, hue, x, y], 1), rank_by="recognizability",
                                importance_latents=32)
    scores = found.directions.scores  # measured, seeds 0/1/2: copies of x 0.41-0.49, hue and y 0.77-0.90
    assert min(scores[1], scores[3]) > 0.65 and max(scores[0], scores[2]) < 0.55  # R can at best split the copies
    top = found.directions.top(2).matrix
    assert {int(torch.argmax(top[:, i] @ truth)) for i in range(2)} == {1, 3}  # y and hue come first
    assert "recognizability" in found.directions.meta["scores"]


def _overlap_on_one_batch(generator, cfg, steps=5):
    """The penalty's own measure (mean squared cosine between the image changes of different
    directions at one latent) on one fixed batch, at the start and after ``steps`` optimizer steps
    of ``train_step`` on that batch; measured whether or not ``cfg`` puts it in the loss."""
    from latentdirs.discovery import sample_pairs, starting_directions, step_rng, train_step
    from latentdirs.discovery.train import _build
    cpu = torch.device("cpu")
    model, optimizer = _build(generator, cfg, tuple(generator.image_shape), cpu, starting_directions(generator, cfg), None)
    model.overlap_penalty = True
    z, index, shift = sample_pairs(generator, cfg, cfg.batch_size, step_rng(cfg.seed, 0, 0), cpu)

    def overlap():
        with torch.no_grad():
            return model(z, index, shift, generator(z))[2].item()

    start = overlap()
    for _ in range(steps):
        train_step(model, generator, optimizer, cfg, z, index, shift)
    return start, overlap()


def test_levers_run_on_the_shipped_convolutional_gan():
    # Its images are channels-last on CPU, where flattening needs reshape, not view.
    generator = latentdirs.load_generator("shapes3d")
    options = dict(num_directions=4, batch_size=16, shifts_per_latent=2, start="sefa", shift_weight_schedule="cosine",
                   rank_by="recognizability", lr=1e-2)
    result = latentdirs.discover(generator, steps=2, overlap_weight=10.0, importance_latents=2, progress=False, **options)
    assert result.directions.scores.shape == (4,) and "overlap" in result.history[-1]
    # The penalty lowers what it measures: 5 steps on one batch from SeFa's directions, with and
    # without it (measured, seeds 0/1/2: 0.015 / 0.084 / 0.048 with, 0.166 / 0.191 / 0.149 without).
    _, without = _overlap_on_one_batch(generator, DiscoveryConfig(**options, overlap_weight=0.0))
    _, with_penalty = _overlap_on_one_batch(generator, DiscoveryConfig(**options, overlap_weight=10.0))
    assert with_penalty < 0.6 * without, (with_penalty, without)


def test_a_run_starts_at_sefa_or_ganspace_directions(planted):
    sefa = latentdirs.sefa(planted, 4).matrix
    found = latentdirs.discover(planted, num_directions=4, steps=2, batch_size=16, lr=1e-7, start="sefa",
                                parametrization="ortho", importance_latents=0, progress=False)
    assert (found.direction_matrix.matrix().detach() * sefa).sum(0).abs().min() > 0.999  # lr 1e-7: still SeFa's
    # GANSpace's Z directions are not orthogonal: ortho A starts at them orthonormalized in order.
    ganspace = latentdirs.ganspace(planted, 4).matrix  # the same samples as the start: seed 0
    start = latentdirs.discovery.starting_directions(planted, DiscoveryConfig(num_directions=4, start="ganspace",
                                                                              parametrization="ortho"))
    assert torch.allclose(start.matrix.T @ start.matrix, torch.eye(4), atol=1e-5)
    assert torch.dot(start.matrix[:, 0], ganspace[:, 0]) > 0.999  # the first direction is kept as it is
    for k in range(4):  # and each leading set spans what GANSpace's does
        q = torch.linalg.qr(ganspace[:, :k + 1])[0]
        assert torch.allclose(q @ (q.T @ start.matrix[:, k]), start.matrix[:, k], atol=1e-4)


def test_a_start_that_cannot_apply_is_refused(planted):
    with pytest.raises(ValueError, match="not trained: use start=axes"):
        DiscoveryConfig(parametrization="random", start="sefa").validate()
    with pytest.raises(ValueError, match="at most latent_dim"):
        latentdirs.discover(planted, num_directions=planted.latent_dim + 1, steps=2, start="sefa", progress=False)


def test_the_disentangle_preset_runs_on_the_shipped_gan():
    generator = latentdirs.load_generator("shapes3d")
    config = latentdirs.discovery.preset("disentangle", steps=2, batch_size=8, importance_latents=2)
    result = latentdirs.discover(generator, config, progress=False)
    assert result.directions.num_directions == 10 and "overlap" in result.history[-1]
    assert orthonormality_error(result.directions.matrix) < 1e-4
    # The preset's penalty lowers the overlap against the same preset without it (5 steps on one
    # batch of 16 pairs; measured, seeds 0/1/2: 0.010 / 0.146 / 0.003 with, 0.031 / 0.184 / 0.007
    # without, from 0.029 / 0.212 / 0.006 at SeFa's directions; the test runs seed 0).
    batch = dict(batch_size=16, importance_latents=2)
    start, with_penalty = _overlap_on_one_batch(generator, latentdirs.discovery.preset("disentangle", **batch))
    _, without = _overlap_on_one_batch(generator, latentdirs.discovery.preset("disentangle", overlap_weight=0.0, **batch))
    assert with_penalty < 0.6 * without and with_penalty < start, (start, with_penalty, without)


def test_an_annealed_run_cannot_be_resumed_with_other_steps(planted, tmp_path):
    # lambda anneals over `steps`: extending the run would jump lambda back up midway.
    opts = dict(num_directions=3, batch_size=8, progress=False, shift_weight_schedule="cosine", importance_latents=0,
                out_dir=tmp_path)
    latentdirs.discover(planted, steps=4, **opts)
    with pytest.raises(ValueError, match="anneals lambda"):
        latentdirs.discover(planted, steps=8, resume=True, **opts)
    assert latentdirs.discover(planted, steps=4, resume=True, **opts).history[-1]["step"] == 4
