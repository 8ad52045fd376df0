"""Warm starts for the capacity study (issue 27): widening and spectral-norm folding keep the function."""
import json

import pytest
import torch

from latentdirs.gan.augment import augment, cutout, parse_policy, translate
from latentdirs.gan.networks import DCGANDiscriminator, NetworkConfig
from latentdirs.gan.stylegan import MappedDCGANGenerator, StyleNetworkConfig
from latentdirs.gan.train import GANTrainConfig, export_from_checkpoint, train_gan
from latentdirs.gan.widen import fold_spectral_norm, widen_adam_state, widen_state_dict
from latentdirs.generators.shapes3d import load

TINY = dict(architecture="dcgan-w", batch_size=4, latent_dim=8, base_channels=4, num_train_images=32,
            sample_every=2, checkpoint_every=2, log_every=1, bn_calibration_batches=1)
WIDER = {32: 12, 64: 8}  # base 4 has 8 and 4 channels there


def _trained_looking(generator: torch.nn.Module) -> torch.nn.Module:
    """Random weights plus non-trivial BatchNorm statistics, so the check is not about an init."""
    torch.manual_seed(1)
    generator.train()
    with torch.no_grad():
        for _ in range(3):
            generator(torch.randn(16, generator.config.latent_dim))
    return generator.eval()


def test_widened_generator_draws_the_same_images():
    torch.manual_seed(0)  # the small network's init drew from whatever RNG state the worker's earlier tests left
    small = _trained_looking(MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4)))
    wide = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4, widths=WIDER))
    assert wide.convs[-1].out_channels == 8 and wide.convs[-2].out_channels == 12
    wide.load_state_dict(widen_state_dict(small.state_dict(), wide.state_dict()))
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(z), small(z), atol=1e-5, rtol=0)
        # Training mode too: BatchNorm is per channel, so batch statistics of the old channels do not change.
        torch.testing.assert_close(wide.train()(z), small.train()(z), atol=1e-5, rtol=0)
    # The new channels are alive (random, not zero) and reach the image through zero weights only.
    assert wide.convs[-1].weight[4:].abs().sum() > 0
    assert wide.to_rgb.weight[:, 4:].abs().sum() == 0 and wide.convs[-1].weight[:4, 8:].abs().sum() == 0


def test_widening_refuses_to_shrink_or_change_layers():
    wide = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4, widths=WIDER))
    small = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4))
    with pytest.raises(ValueError, match="cannot widen"):
        widen_state_dict(wide.state_dict(), small.state_dict())
    deeper = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4, mapping_layers=5))
    with pytest.raises(ValueError, match="differ in layers"):
        widen_state_dict(small.state_dict(), deeper.state_dict())


def test_widened_adam_state_keeps_old_moments():
    small = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4))
    opt = torch.optim.Adam(small.parameters())
    small.train()(torch.randn(4, 8)).square().mean().backward()
    opt.step()
    wide = MappedDCGANGenerator(StyleNetworkConfig(latent_dim=8, base_channels=4, widths=WIDER))
    state = widen_adam_state(opt.state_dict(), list(wide.parameters()))
    wide_opt = torch.optim.Adam(wide.parameters())
    wide_opt.load_state_dict(state)  # shapes fit the widened parameters
    index = [name for name, _ in wide.named_parameters()].index("to_rgb.weight")
    old, new = opt.state_dict()["state"][index], state["state"][index]
    torch.testing.assert_close(new["exp_avg"][:, :4], old["exp_avg"])
    assert new["exp_avg"][:, 4:].abs().sum() == 0
    assert torch.allclose(new["exp_avg_sq"][:, 4:], old["exp_avg_sq"].mean())


def test_folded_spectral_norm_is_the_same_critic():
    config = NetworkConfig(latent_dim=8, base_channels=4)
    spectral = DCGANDiscriminator(config)
    images = torch.randn(5, 3, 64, 64)
    for _ in range(5):  # let the power iteration settle on non-trivial u, v
        spectral(images)
    plain = DCGANDiscriminator(config, spectral=False)
    plain.load_state_dict(fold_spectral_norm(spectral.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(plain(images), spectral.eval()(images), atol=1e-5, rtol=1e-5)


def test_augmentations_keep_shape_and_pass_gradients():
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("color")
    images = torch.randn(8, 3, 64, 64, requires_grad=True)
    out = augment(images, ("translation", "cutout"))
    assert out.shape == images.shape
    out.sum().backward()
    assert images.grad.abs().sum() > 0
    torch.testing.assert_close(translate(images, ratio=0.0), images)
    kept = (cutout(images.detach().abs() + 1) != 0).float().mean((1, 2, 3))
    assert (kept >= 0.75 - 1e-6).all() and (kept < 1).any()  # at most a quarter of each image is cut


def test_warm_start_runs_resume_and_keep_the_function(tmp_path):
    source = tmp_path / "source"
    train_gan(GANTrainConfig(steps=3, **TINY), source, progress=False)
    before = load(export_from_checkpoint(source, tmp_path / "source_export"))

    # Warm start at the source's step: no training, so the export must be the source's generator.
    wide = tmp_path / "wide"
    options = dict(widths=WIDER, r1_gamma=0.05, augment="translation,cutout")
    train_gan(GANTrainConfig(steps=3, **TINY, **options), wide, progress=False, warm_start=source / "checkpoint.pt")
    after = load(wide / "final")
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(after(z), before(z), atol=1e-5, rtol=0)
    assert after.network.to_rgb.in_channels == 8

    # Then training starts from it; a second call resumes its own checkpoint, not the warm start.
    train_gan(GANTrainConfig(steps=5, **TINY, **options), wide, progress=False, warm_start=source / "checkpoint.pt")
    train_gan(GANTrainConfig(steps=6, **TINY, **options), wide, progress=False, warm_start=source / "checkpoint.pt")
    state = torch.load(wide / "checkpoint.pt", weights_only=True)
    assert state["step"] == 6 and state["config"]["widths"] == WIDER
    assert not any("parametrizations" in k for k in state["discriminator"])  # R1 critic: plain weights
    history = [json.loads(line) for line in (wide / "commands.jsonl").read_text().splitlines()]
    assert [h["from_step"] for h in history] == [0, 3, 3, 5] and "warm_start" in history[1]
    assert "warm_start" in history[2] and "warm_start" not in history[3]
    assert json.loads((wide / "final" / "config.json").read_text())["widths"] == {"32": 12, "64": 8}


def test_cli_parses_widths_and_warm_start():
    from latentdirs.cli import build_parser
    from latentdirs.cli.train_gan import resolved_config
    root = build_parser()
    args = root.parse_args(["train-gan", "--out", "x", "--architecture", "dcgan-w", "--widths", "32=64,64=32",
                            "--warm-start", "ckpt.pt", "--augment", "translation,cutout"])
    assert resolved_config(args).widths == {32: 64, 64: 32} and args.warm_start == "ckpt.pt"
    assert resolved_config(args).augment == "translation,cutout"
    assert resolved_config(root.parse_args(["train-gan", "--out", "x"])).widths == {}
    with pytest.raises(SystemExit):
        root.parse_args(["train-gan", "--out", "x", "--widths", "32:64"])


def test_snapshots_are_taken_at_cpu_marks(tmp_path, monkeypatch):
    """benchmarks/gan_snapshots.py copies a run's checkpoint once it has used the marked CPU time."""
    import runpy
    import sys
    from pathlib import Path
    run = tmp_path / "run"
    train_gan(GANTrainConfig(steps=2, **TINY), run, progress=False)
    train_gan(GANTrainConfig(steps=4, **TINY), run, progress=False)  # a (re)start at step 2 to count from
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gan_snapshots.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(run), "--from-step", "2", "--marks", "0",
                                      "--out", str(tmp_path / "snaps"), "--poll", "0"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    snap = tmp_path / "snaps" / "run_0min"
    assert torch.load(snap / "checkpoint.pt", weights_only=True)["step"] == 4 and (snap / "commands.jsonl").exists()
