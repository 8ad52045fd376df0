import json
import os

import pytest
import torch

from latentdirs.gan.networks import DCGANGenerator, NetworkConfig, recalibrate_batchnorm
from latentdirs.cli import build_parser
from latentdirs.cli.train_gan import resolved_config
from latentdirs.gan.train import GANTrainConfig, export_from_checkpoint, train_gan
from latentdirs.generators.shapes3d import load

TINY = dict(batch_size=4, latent_dim=8, base_channels=4, num_train_images=32, sample_every=2,
            checkpoint_every=2, log_every=1, bn_calibration_batches=1)


def test_train_resume_export_and_load(tmp_path):
    out = tmp_path / "run"
    final = train_gan(GANTrainConfig(steps=3, **TINY), out, progress=False)
    assert (out / "checkpoint.pt").exists() and (out / "samples" / "ema_000002.png").exists()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3] and all("loss_d" in r for r in lines)

    stale = out / ".checkpoint.pt.k2x9.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    train_gan(GANTrainConfig(steps=5, **TINY), out, progress=False)  # resumes at step 3
    assert not stale.exists()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 5

    generator = load(final)
    assert json.loads((final / "config.json").read_text())["training"]["steps"] == 5
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()
    assert generator.first_layer_weight().shape == (4 * 4 * 32, 8)

    exported = export_from_checkpoint(out, tmp_path / "from_ckpt")
    assert load(exported).latent_dim == 8
    # Written through a temporary file, but readable like any file the user writes (not mkstemp's 0600):
    # exported weights get copied into packages.
    umask = os.umask(0)
    os.umask(umask)
    assert {(p.stat().st_mode & 0o777) for p in exported.iterdir()} == {0o666 & ~umask}


def test_recalibrated_batchnorm_is_per_sample():
    generator = DCGANGenerator(NetworkConfig(latent_dim=8, base_channels=4))
    recalibrate_batchnorm(generator, num_batches=1, batch_size=8)
    z = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(generator(z)[:1], generator(z[:1]))


def test_cli_parser_defaults_and_help():
    parser = build_parser()
    args = parser.parse_args(["train-gan", "--out", "x", "--steps", "10", "--with-fade"])
    assert resolved_config(args) == GANTrainConfig(steps=10, with_fade=True)
    assert resolved_config(parser.parse_args(["train-gan", "--out", "x", "--amp", "--no-amp"])).amp is False
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    text = sub.choices["train-gan"].format_help()
    assert "example" in text and "(default: 32)" in text and "--max-cpu-minutes" in text


@pytest.mark.parametrize("field, value", [("lr_generator", 0.0), ("lr_discriminator", -1e-4), ("beta1", 1.0),
                                          ("beta2", 1.5), ("ema_decay", 1.01), ("style_mixing", 2.0)])
def test_an_impossible_optimizer_setting_cannot_be_made(field, value):
    with pytest.raises(ValueError, match=field):
        GANTrainConfig(**{field: value})


@pytest.mark.parametrize("widths", [{3: 8}, {32: 0}, {128: 16}])
def test_widths_at_no_blocks_resolution_are_refused_with_the_config(widths):
    with pytest.raises(ValueError, match="keys must be resolutions of the network"):
        GANTrainConfig(architecture="dcgan-w", widths=widths)
    GANTrainConfig(architecture="dcgan-w", widths={32: 64, 64: 32})  # the shipped widening passes
