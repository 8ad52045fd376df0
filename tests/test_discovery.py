import json

import pytest
import torch
from torch import nn

import latentdirs
from latentdirs import DirectionError, DirectionSet, GeneratorError
from latentdirs.directions import orthonormality_error
from latentdirs.discovery import load_snapshots


def tiny_run(gen, out_dir=None, **kw):
    opts = dict(num_directions=5, steps=12, batch_size=16, seed=0, lr=1e-3, progress=False, log_every=4,
                importance_latents=4)
    opts.update(kw)
    return latentdirs.discover(gen, out_dir=out_dir, **opts)


def test_discovery_end_to_end_writes_a_complete_run(planted, tmp_path):
    run = tmp_path / "run"
    result = tiny_run(planted, run, checkpoint_every=6)
    assert result.directions.matrix.shape == (16, 5)
    assert torch.allclose(result.directions.matrix.norm(dim=0), torch.ones(5), atol=1e-5)
    assert result.directions.scores is not None and (result.directions.scores > 0).all()
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.jsonl", "log.txt", "checkpoint.pt", "directions", "snapshots.safetensors"} <= files
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8, 12]
    assert {"loss", "accuracy", "shift_error", "sec_per_step"} <= set(metrics[0])
    config = json.loads((run / "config.json").read_text())
    assert config["discovery"]["num_directions"] == 5 and config["generator"]["spec"]["kind"] == "planted"
    loaded = DirectionSet.load(run)
    assert torch.equal(loaded.matrix, result.directions.matrix)
    assert loaded.meta["method"] == "ld-unit" and loaded.meta["steps"] == 12
    snaps = load_snapshots(run)
    assert sorted(snaps) == [0, 3, 6, 9, 12]
    assert torch.allclose(snaps[0], torch.eye(16)[:, :5])  # A starts at the coordinate axes
    assert not torch.allclose(snaps[12], snaps[0])


def test_discovery_is_deterministic_and_seeded(planted):
    a = tiny_run(planted, steps=6).directions.matrix
    b = tiny_run(planted, steps=6).directions.matrix
    c = tiny_run(planted, steps=6, seed=1).directions.matrix
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_resume_gives_the_same_result_as_an_uninterrupted_run(planted, tmp_path):
    full = tiny_run(planted, tmp_path / "full", steps=12, checkpoint_every=4)
    tiny_run(planted, tmp_path / "part", steps=8, checkpoint_every=4)  # "interrupted" at step 8
    cfg = json.loads((tmp_path / "part" / "config.json").read_text())
    assert cfg["discovery"]["steps"] == 8
    resumed = tiny_run(planted, tmp_path / "part", steps=12, checkpoint_every=4, resume=True)
    assert torch.allclose(resumed.directions.matrix, full.directions.matrix, atol=1e-6)
    assert [h["step"] for h in resumed.history] == [4, 8, 12]


@pytest.mark.parametrize("kind", ["unit", "ortho", "cayley", "linear", "identity", "random"])
def test_every_parametrization_trains(planted, kind):
    # 30 steps: every kind's R is well above chance (5 directions: 0.2); measured 0.36-0.52 over
    # seeds 0-2 (the frozen random basis is the lowest), and every trainable A moved by >= 0.26.
    from latentdirs.directions import DirectionMatrix
    result = tiny_run(planted, steps=30, batch_size=32, lr=3e-3, log_every=10, parametrization=kind,
                      importance_latents=0)
    m = result.directions.matrix
    start = DirectionMatrix(planted.latent_dim, 5, kind, seed=0).matrix().detach()
    if kind in ("ortho", "cayley", "identity", "random"):
        assert (m.t() @ m - torch.eye(5)).abs().max() < 1e-4
    if kind in ("identity", "random"):  # frozen baselines: only R learns
        assert torch.equal(m, start)
    else:
        assert (m - start).norm() > 0.1, f"A did not move from its start ({(m - start).norm():.4f})"
    assert result.accuracy > 0.3, f"accuracy {result.accuracy:.3f}: no better than chance (0.2)"
    assert result.directions.meta["parametrization"] == kind


def test_generator_weights_are_frozen_and_stay_in_eval_mode():
    net = nn.Sequential(nn.Linear(8, 3 * 16 * 16), nn.Tanh(), nn.Unflatten(1, (3, 16, 16)))
    before = [p.clone() for p in net.parameters()]
    gen = latentdirs.wrap(net, latent_dim=8)
    gen.train()
    assert not gen.training and not any(p.requires_grad for p in gen.parameters())
    tiny_run(gen, steps=3, num_directions=3, importance_latents=0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_wrap_accepts_a_plain_callable_and_reshapes_latents():
    seen = {}

    def conv_generator(z):
        seen["shape"] = tuple(z.shape)
        return torch.tanh(z.mean(1, keepdim=True).expand(-1, 1, 20, 20))

    gen = latentdirs.wrap(conv_generator, latent_dim=6, latent_shape=(6, 1, 1))
    assert gen.image_shape == (1, 20, 20) and seen["shape"][1:] == (6, 1, 1)


def test_wrong_latent_size_is_a_clear_error():
    net = nn.Sequential(nn.Linear(8, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
    with pytest.raises(GeneratorError, match="latent_dim=10"):
        latentdirs.wrap(net, latent_dim=10)


def test_nan_output_is_a_clear_error():
    with pytest.raises(GeneratorError, match="non-finite"):
        latentdirs.wrap(lambda z: torch.full((z.shape[0], 3, 16, 16), float("nan")), latent_dim=4)


def test_nan_appearing_during_training_is_a_clear_error():
    def blows_up_far_away(z):  # finite near the origin, NaN after a large shift
        img = torch.tanh(z[:, :1, None, None].expand(-1, 3, 16, 16))
        return torch.where(z.abs().max(1).values.view(-1, 1, 1, 1) > 5, torch.nan, img)

    gen = latentdirs.wrap(blows_up_far_away, latent_dim=4, check=False)
    with pytest.raises(GeneratorError, match="non-finite"):
        latentdirs.discover(gen, num_directions=2, steps=3, batch_size=16, progress=False, importance_latents=0)


def test_bad_images_are_clear_errors():
    with pytest.raises(GeneratorError, match="1 or 3 channels"):
        latentdirs.wrap(lambda z: torch.zeros(z.shape[0], 4, 16, 16), latent_dim=4)
    with pytest.raises(GeneratorError, match="at least 16x16"):
        latentdirs.wrap(lambda z: torch.zeros(z.shape[0], 3, 8, 8), latent_dim=4)
    with pytest.raises(GeneratorError, match=r"\(batch, channels, H, W\)"):
        latentdirs.wrap(lambda z: torch.zeros(z.shape[0], 16, 16), latent_dim=4)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(batch_size=-1), dict(lr=0.0), dict(shift_weight=-1.0),
                                 dict(batch_size=10, shifts_per_latent=4)])
def test_bad_options_are_rejected(planted, bad):
    with pytest.raises(ValueError):
        tiny_run(planted, **bad)


@pytest.mark.parametrize("options", [dict(batch_size=1), dict(batch_size=4, micro_batches=4)])
def test_a_forward_pass_of_one_pair_is_refused_before_training(planted, options):
    # R's BatchNorm cannot train on a single pair: named here, not torch's "more than 1 value per channel"
    with pytest.raises(ValueError, match="at least 2 pairs"):
        tiny_run(planted, **options)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        latentdirs.rca(planted, latentdirs.DirectionSet.random(planted.latent_dim, 3, seed=0), steps=1,
                       batch_size=1)


def test_rca_api_with_baselines(planted):
    d, k = planted.latent_dim, 4
    for ds in (DirectionSet.random(d, k, seed=0), DirectionSet.identity(d, k)):
        acc = latentdirs.rca(planted, ds, steps=5, batch_size=16, seed=0, eval_batches=2)
        assert acc == latentdirs.rca(planted, ds, steps=5, batch_size=16, seed=0, eval_batches=2)  # seeded
    # RCA must tell apart what differs and not what is the same: x vs hue is easy, a direction vs itself
    # cannot beat a coin toss.
    x, hue = planted.factor_directions()[:, 0], planted.factor_directions()[:, 3]
    settings = dict(steps=40, batch_size=16, seed=0, eval_batches=8, lr=3e-3)
    assert latentdirs.rca(planted, DirectionSet(torch.stack([x, hue], 1)), **settings) > 0.8
    assert abs(latentdirs.rca(planted, DirectionSet(torch.stack([x, x], 1)), **settings) - 0.5) < 0.12
    with pytest.raises(ValueError, match="latent space"):
        latentdirs.rca(planted, DirectionSet.identity(8, 4), steps=2)


def test_shared_pairs_and_micro_batches_run(planted):
    result = tiny_run(planted, steps=4, shifts_per_latent=2, micro_batches=2, importance_latents=0)
    assert result.history[-1]["step"] == 4


def test_resnet18_reconstructor_takes_any_image_size():
    from latentdirs.reconstructors import make_reconstructor
    for shape in ((1, 32, 32), (3, 64, 48), (3, 128, 128)):
        r = make_reconstructor("resnet18", shape, 7).eval()
        logits, shift = r(torch.randn(2, 2 * shape[0], *shape[1:]))
        assert logits.shape == (2, 7) and shift.shape == (2,)
        r = make_reconstructor("lenet", shape, 7).eval()
        assert r(torch.randn(2, 2 * shape[0], *shape[1:]))[0].shape == (2, 7)


@pytest.mark.parametrize("parametrization", ["unit", "ortho"])
def test_discovery_can_start_at_given_directions_and_resume_there(planted, tmp_path, parametrization):
    start = latentdirs.sefa(planted, 4)
    kwargs = dict(num_directions=4, parametrization=parametrization, steps=6, batch_size=16, seed=0,
                  progress=False, importance_latents=0, checkpoint_every=3, snapshot_every=1)
    whole = latentdirs.discover(planted, start=start, **kwargs)
    assert torch.allclose(whole.snapshots[0], start.matrix, atol=1e-5)  # step 0 is the given start
    assert not torch.allclose(whole.directions.matrix, start.matrix, atol=1e-4)  # and LD moved it
    if parametrization == "ortho":
        assert orthonormality_error(whole.directions.matrix) < 1e-4
    # interrupted after step 3, resumed without passing start again: the same result
    latentdirs.discover(planted, start=start, out_dir=tmp_path, **{**kwargs, "steps": 3})
    resumed = latentdirs.discover(planted, out_dir=tmp_path, resume=True, **kwargs)
    assert torch.allclose(resumed.directions.matrix, whole.directions.matrix, atol=1e-5)


def test_bad_starting_directions_are_named(planted):
    with pytest.raises(DirectionError, match="starting directions are"):
        latentdirs.discover(planted, num_directions=4, steps=1, start=torch.randn(16, 3), progress=False)
    with pytest.raises(DirectionError, match="must start at orthonormal"):
        latentdirs.discover(planted, num_directions=4, parametrization="ortho", steps=1, start=torch.randn(16, 4),
                            progress=False)


def test_make_reconstructor_refuses_shapes_it_cannot_take():
    from latentdirs.reconstructors import make_reconstructor
    for args, match in ((((32, 32), 3), r"\(channels, height, width\)"), (((0, 32, 32), 3), "each >= 1"),
                        (((3, 32, 32), 0), "num_directions >= 1"),
                        (((3, 8, 8), 3), "at least 12x12"),  # was torch's "Kernel size can't be greater" at step 1
                        ):
        with pytest.raises(ValueError, match=match):
            make_reconstructor("lenet", *args)
    with pytest.raises(ValueError, match="width >= 1"):  # width=0 silently built the default width
        make_reconstructor("lenet", (3, 32, 32), 3, width=0)
    assert make_reconstructor("lenet", (3, 12, 12), 3).eval()(torch.randn(2, 6, 12, 12))[0].shape == (2, 3)


def test_a_resume_with_fewer_steps_than_its_checkpoint_is_refused(planted, tmp_path):
    # It returned the checkpoint's directions labelled with the smaller steps.
    tiny_run(planted, tmp_path, steps=8, importance_latents=0)
    with pytest.raises(ValueError, match="checkpoint is at step 8, past steps=4"):
        tiny_run(planted, tmp_path, steps=4, importance_latents=0, resume=True)


def test_a_resume_that_lost_its_given_start_is_refused(planted, tmp_path):
    # No checkpoint yet (or deleted): the resume used to start afresh at the axes, not at the given directions.
    start = latentdirs.sefa(planted, 5)
    tiny_run(planted, tmp_path, steps=2, importance_latents=0, start=start, checkpoint_every=100)
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match="started at given directions"):
        tiny_run(planted, tmp_path, steps=4, importance_latents=0, resume=True)
    again = tiny_run(planted, tmp_path, steps=4, importance_latents=0, resume=True, start=start)
    assert torch.allclose(again.snapshots[0], start.matrix, atol=1e-5)


@pytest.mark.parametrize("device, message", [("garbage", "unknown device 'garbage'"), ("CPU", "unknown device"),
                                             ("meta", "holds no data"), ("mps", "not available here")])
def test_unusable_devices_are_named(planted, device, message):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ValueError, match=message):  # were torch RuntimeErrors (meta: an error mid-step)
        tiny_run(planted, steps=1, device=device)
