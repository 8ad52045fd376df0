import json
import shutil

import pytest
import torch

from pathlib import Path

from latentdirs.directions import DirectionSet
from latentdirs.generators import available_generators, generator_from_spec, load_generator
from latentdirs.generators.base import GeneratorError
from latentdirs.generators.checkpoints import CheckpointError
from latentdirs.generators.shapes3d import CONFIG_FILE, WEIGHTS_FILE, load, packaged_weights_dir


@pytest.fixture(scope="module")
def generator():
    return load_generator("shapes3d")


def test_packaged_weights_load_offline(generator):
    assert "shapes3d" in available_generators()
    assert generator.name == "shapes3d" and generator.latent_dim == 64
    assert not any(p.requires_grad for p in generator.parameters())
    config = json.loads((packaged_weights_dir() / CONFIG_FILE).read_text())
    assert config["training"]["steps"] > 0
    assert (packaged_weights_dir() / WEIGHTS_FILE).stat().st_size < 5_000_000
    assert (packaged_weights_dir("shapes3d-dcgan") / WEIGHTS_FILE).stat().st_size < 5_000_000


def test_images_finite_right_shape_and_deterministic(generator):
    z = generator.sample_latents(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images, again = generator(z), generator(z)
    assert images.shape == (4, 3, 64, 64)
    assert torch.isfinite(images).all() and images.abs().max() <= 1
    torch.testing.assert_close(images, again)
    # per-sample: an image does not depend on the rest of the batch (BN is in eval mode); batched
    # convolutions round differently, by ~3e-5, where batch statistics would move pixels by ~0.1
    torch.testing.assert_close(generator(z[:1]), images[:1], atol=1e-4, rtol=1e-3)
    assert images.std() > 0.05  # not a constant image


def test_sefa_and_ganspace_hooks(generator):
    weight = generator.first_layer_weight()
    assert weight.shape[1] == generator.latent_dim and weight.shape[0] % 16 == 0
    features = generator.early_features(torch.zeros(3, generator.latent_dim))
    assert features.shape == (3, weight.shape[0])
    # The hook is the layer that touches the latent: along W^T W's top eigenvector the image changes
    # more than along its bottom one (what SeFa relies on); a wrong or transposed weight would not say so.
    _, vectors = torch.linalg.eigh(weight.t() @ weight)
    z = generator.sample_latents(16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        change = [(generator(z + 3 * v) - generator(z)).abs().mean().item() for v in (vectors[:, -1], vectors[:, 0])]
    assert change[0] > 5 * change[1]  # measured: 0.85 vs 0.017; a random weight gives 0.17 vs 0.15


def test_load_from_folder_and_file(tmp_path, generator):
    shutil.copytree(packaged_weights_dir(), tmp_path / "g")
    z = torch.randn(2, generator.latent_dim)
    torch.testing.assert_close(load(tmp_path / "g")(z), generator(z))
    torch.testing.assert_close(load(tmp_path / "g" / WEIGHTS_FILE)(z), generator(z))


def test_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such folder"):
        load(tmp_path / "missing")
    folder = tmp_path / "g"
    shutil.copytree(packaged_weights_dir(), folder)
    data = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load(folder)
    (folder / WEIGHTS_FILE).write_bytes(data)
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "base_channels": config["base_channels"] * 2}))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load(folder)
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "architecture": "stylegan2"}))
    with pytest.raises(CheckpointError, match="dcgan"):
        load(folder)
    (folder / CONFIG_FILE).unlink()
    with pytest.raises(CheckpointError, match=CONFIG_FILE):
        load(folder)


def test_the_first_shipped_gan_stays_loadable_and_old_sets_find_it(generator):
    assert generator.describe()["architecture"] == "dcgan-w"  # the default kind: Z, W and W+
    assert load_generator("shapes3d", space="w").latent_space == "w"
    old = load_generator("shapes3d-dcgan")
    assert (old.name, old.describe()["architecture"], old.latent_space) == ("shapes3d-dcgan", "dcgan", "z")
    # A set found on the old packaged weights (kind "shapes3d" then) reloads them, not the new default.
    found = DirectionSet.load(Path(__file__).parent.parent / "docs/compare/shapes3d/sefa/seed0/directions")
    described = found.meta["generator"]
    assert described["spec"]["kind"] == "shapes3d" and described["architecture"] == "dcgan"
    reloaded = generator_from_spec(described["spec"], described)
    z = torch.randn(2, 64)
    torch.testing.assert_close(reloaded(z), old(z))
    # Weights that no longer match the record are refused rather than silently used.
    with pytest.raises(GeneratorError, match="training_steps"):
        generator_from_spec({"kind": "shapes3d", "path": None, "options": {}},
                            {**generator.describe(), "training_steps": 5})


@pytest.mark.parametrize("options, message", [
    (dict(space="w+", layers=[0.5, 2.7]), "expected \\(START, STOP\\), two ints"),
    (dict(space="w+", layers=3), "expected \\(START, STOP\\), two ints"),
    (dict(space="w", truncation="0.5"), "truncation='0.5': expected a number in \\(0, 1\\]"),
    (dict(space="w", truncation=None), "truncation=None"),
])
def test_style_options_of_the_wrong_kind_are_named(options, message):
    with pytest.raises(GeneratorError, match=message):
        load_generator("shapes3d", **options)
