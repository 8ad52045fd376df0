"""The DCGAN-tutorial generator kind: architecture read from the file, outputs equal to the tutorial's code.

The reference networks below are written as the PyTorch DCGAN tutorial writes them (and as the
cDCGAN of the eye generator does, Dropout included), at small widths so the tests stay fast;
``test_zoo.py`` compares with the real published files and their own code.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from latentdirs import DirectionSet
from latentdirs.closed_form import ganspace, sefa
from latentdirs.generators import load_generator
from latentdirs.generators.base import GeneratorError
from latentdirs.generators.checkpoints import CheckpointError
from latentdirs.generators.dcgan_tutorial import from_state_dict

TOLERANCE = 1e-6


def tutorial_generator(nz: int = 12, ngf: int = 4, nc: int = 3, size: int = 32, dropout_after_first: bool = False,
                       seed: int = 0) -> nn.Sequential:
    """``Generator.main`` of the tutorial for ``size`` px (4x4 seed, one doubling per layer), random weights."""
    torch.manual_seed(seed)
    doublings = {32: 3, 64: 4, 128: 5, 256: 6}[size]
    widths = [ngf * 2 ** i for i in reversed(range(doublings))]
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]),
                               nn.ReLU(True)]
    if dropout_after_first:
        layers.append(nn.Dropout(0.2))
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
    main = nn.Sequential(*layers)
    with torch.no_grad():  # trained-looking batch-norm statistics, not the constructor's 0 / 1
        for m in main:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return main.eval()


class TutorialG(nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.main = tutorial_generator(**kwargs)

    def forward(self, x):
        return self.main(x)


def save(obj, path):
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("size", [32, 64, 128])
def test_outputs_equal_the_tutorial_network(tmp_path, size):
    reference = TutorialG(nz=12, ngf=2 if size == 128 else 4, size=size)
    path = save({"netG_state_dict": reference.state_dict()}, tmp_path / "weights.tar")
    G = load_generator("dcgan-tutorial", path)
    assert G.latent_dim == 12 and G.image_shape == (3, size, size)
    assert G.describe()["image_size"] == size and G.describe()["spec"]["kind"] == "dcgan-tutorial"
    z = torch.randn(3, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (G(z) - reference(z[:, :, None, None])).abs().max() <= TOLERANCE
    weight = G.first_layer_weight()  # (C * 16, nz), SeFa's (out_features, latent_dim)
    assert weight.shape == (16 * reference.main[0].out_channels, 12)
    assert torch.equal(weight, reference.main[0].weight.detach().flatten(1).t())
    assert sefa(G, 5).matrix.shape == (12, 5)


@pytest.mark.parametrize("wrapper", [None, "netG_state_dict", "generator", "state_dict", "G", "model"])
def test_bare_state_dict_and_wrappers_load(tmp_path, wrapper):
    reference = TutorialG(nz=8, ngf=2)
    state = reference.state_dict()
    path = save(state if wrapper is None else {wrapper: state, "epoch": 3, "optimizerG": {}}, tmp_path / "g.pth")
    G = load_generator("dcgan-tutorial", path)
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert (G(z) - reference(z[:, :, None, None])).abs().max() <= TOLERANCE
    # a DataParallel save (ngpu > 1 in the tutorial) prefixes module.
    parallel = save({"module." + k: v for k, v in state.items()}, tmp_path / "dp.pth")
    with torch.no_grad():
        assert (load_generator("dcgan-tutorial", parallel)(z) - G(z)).abs().max() <= TOLERANCE


def test_class_conditional_with_dropout_matches_and_takes_classes(tmp_path):
    nz, labels = 10, 4
    reference = TutorialG(nz=nz + labels, ngf=2, dropout_after_first=True)
    assert "main.4.weight" in reference.state_dict() and "main.3.weight" not in reference.state_dict()
    path = save(reference.state_dict(), tmp_path / "cgan.pth")
    G = load_generator("dcgan-tutorial", path, label_dim=labels, classes=[2, 0])
    assert G.latent_dim == nz and G.num_classes == labels
    assert isinstance(G.network.main[3], nn.Identity)  # the Dropout slot: the identity in eval mode
    z = torch.randn(4, nz, generator=torch.Generator().manual_seed(2))
    one_hot = torch.nn.functional.one_hot(torch.tensor([2, 0, 2, 0]), labels).float()
    with torch.no_grad():
        expected = reference(torch.cat([z, one_hot], 1)[:, :, None, None])
        assert (G(z) - expected).abs().max() <= TOLERANCE
        # latent_dim= says the same as label_dim=
        same = load_generator("dcgan-tutorial", path, latent_dim=nz, classes=[2, 0])
        assert (same(z) - expected).abs().max() <= TOLERANCE
    # SeFa sees only the z rows of the first layer, not the label rows
    assert torch.equal(G.first_layer_weight(), reference.main[0].weight.detach()[:nz].flatten(1).t())
    assert sefa(G, 3).matrix.shape == (nz, 3)
    assert ganspace(G, 3, num_samples=64).matrix.shape == (nz, 3)
    # restricting the classes keeps the load spec, so the restricted generator reloads the same
    only = G.with_classes([3])
    assert only.classes.tolist() == [3] and only.load_spec["options"]["classes"] == [3]
    with torch.no_grad():
        assert (only(z) - reference(torch.cat([z, torch.eye(labels)[[3, 3, 3, 3]]], 1)[:, :, None, None])).abs().max() \
            <= TOLERANCE
    # by default every class, cycled over the batch
    everyone = load_generator("dcgan-tutorial", path, label_dim=labels)
    assert everyone.classes.tolist() == [0, 1, 2, 3] and everyone.describe()["num_classes"] == labels


def test_classes_by_name_and_bad_classes(tmp_path):
    path = save(TutorialG(nz=9, ngf=2).state_dict(), tmp_path / "c.pth")
    names = ["red", "green", "blue"]
    G = load_generator("dcgan-tutorial", path, class_names=names, classes=["blue", "red"])
    assert G.latent_dim == 6 and G.classes.tolist() == [2, 0] and G.describe()["class_names"] == names
    assert load_generator("dcgan-tutorial", path, class_names=names, classes="green").classes.tolist() == [1]
    with pytest.raises(GeneratorError, match="unknown class 'pink'; the classes are red, green, blue"):
        load_generator("dcgan-tutorial", path, class_names=names, classes="pink")
    with pytest.raises(GeneratorError, match=r"classes must be in \[0, 3\)"):
        load_generator("dcgan-tutorial", path, label_dim=3, classes=[5])
    with pytest.raises(GeneratorError, match="not class-conditional.*drop classes"):
        load_generator("dcgan-tutorial", path, classes=[1])
    with pytest.raises(GeneratorError, match="not class-conditional"):
        load_generator("dcgan-tutorial", path).with_classes([1])
    with pytest.raises(CheckpointError, match="latent_dim=5 \\+ label_dim=3 = 8, but the first layer main.0 takes 9"):
        load_generator("dcgan-tutorial", path, latent_dim=5, label_dim=3)
    with pytest.raises(CheckpointError, match="takes 9 channels"):
        load_generator("dcgan-tutorial", path, label_dim=9)


def test_leaky_relu_option(tmp_path):
    reference = TutorialG(nz=8, ngf=2)
    for i, m in enumerate(reference.main):
        if isinstance(m, nn.ReLU):
            reference.main[i] = nn.LeakyReLU(0.1)
    path = save(reference.state_dict(), tmp_path / "g.pth")
    z = torch.randn(2, 8)
    with torch.no_grad():
        leaky = load_generator("dcgan-tutorial", path, activation="leaky_relu", negative_slope=0.1)
        assert (leaky(z) - reference(z[:, :, None, None])).abs().max() <= TOLERANCE
        assert (load_generator("dcgan-tutorial", path)(z) - reference(z[:, :, None, None])).abs().max() > 1e-4
    with pytest.raises(GeneratorError, match="activation='gelu'"):
        load_generator("dcgan-tutorial", path, activation="gelu")


def test_a_file_of_another_layout_says_what_it_found(tmp_path):
    # an SN-GAN (Linear first layer) is not this layout
    sngan_like = {"model.0.weight": torch.zeros(64, 8), "model.0.bias": torch.zeros(64)}
    with pytest.raises(CheckpointError, match=r"not a dcgan-tutorial checkpoint.*main.0.weight.*Found \{model.0.weight \[64, 8\]"):
        load_generator("dcgan-tutorial", save(sngan_like, tmp_path / "a.pth"))
    # a file of a known other format is named
    with pytest.raises(CheckpointError, match=r"Found \{g_ema \(dict\)\}\. It looks like a stylegan2 checkpoint"):
        load_generator("dcgan-tutorial", save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, tmp_path / "s.pt"))
    # a container without any known wrapper key
    with pytest.raises(CheckpointError, match=r"wrapper keys netG_state_dict, generator.*Found \{netD \(dict\)"):
        load_generator("dcgan-tutorial", save({"netD": {"x": torch.zeros(1)}}, tmp_path / "b.pth"))
    state = TutorialG(nz=8, ngf=2).state_dict()
    # a 3x3 kernel is not the tutorial's
    odd = dict(state, **{"main.3.weight": torch.zeros(8, 4, 3, 3)})  # widths 8, 4, 2
    with pytest.raises(CheckpointError, match=r"main.3 has a 3x3 kernel.*Found main.0: weight \[8, 8, 4, 4\]"):
        load_generator("dcgan-tutorial", save(odd, tmp_path / "c.pth"))
    # widths that do not chain
    broken = dict(state, **{"main.6.weight": torch.zeros(5, 2, 4, 4)})
    with pytest.raises(CheckpointError, match="main.6 takes 5 channels but the layer before gives 4"):
        load_generator("dcgan-tutorial", save(broken, tmp_path / "d.pth"))
    # a last layer that does not make an image
    last = max(int(k.split(".")[1]) for k in state)
    wide = dict(state, **{f"main.{last}.weight": torch.zeros(2, 5, 4, 4)})
    with pytest.raises(CheckpointError, match="makes 5 channels; images have 1 or 3"):
        load_generator("dcgan-tutorial", save(wide, tmp_path / "e.pth"))
    # a missing batch-norm tensor is named
    partial = {k: v for k, v in state.items() if k != "main.4.running_var"}
    with pytest.raises(CheckpointError, match="main.4 is neither a ConvTranspose2d.*running_mean"):
        load_generator("dcgan-tutorial", save(partial, tmp_path / "f.pth"))


def test_truncated_and_empty_files_are_refused(tmp_path):
    path = save(TutorialG(nz=8, ngf=2).state_dict(), tmp_path / "g.pth")
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
        load_generator("dcgan-tutorial", tmp_path / "cut.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator("dcgan-tutorial", tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_generator("dcgan-tutorial", tmp_path / "missing.pth")


def test_grayscale_and_batch_size_independence(tmp_path):
    reference = TutorialG(nz=8, ngf=2, nc=1)
    G = from_state_dict(reference.state_dict())
    assert G.image_shape == (1, 32, 32)
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole, parts = G(z), torch.cat([G(z[:2]), G(z[2:])])
    assert torch.allclose(whole, parts, atol=1e-6)  # eval-mode batch norm: no batch statistics
    assert whole.abs().max() <= 1


def test_set_found_on_it_reloads_from_its_metadata(tmp_path):
    path = save(TutorialG(nz=9, ngf=2).state_dict(), tmp_path / "c.pth")
    G = load_generator("dcgan-tutorial", path, label_dim=3, classes=[1])
    ds = sefa(G, 3)
    ds.save(tmp_path / "set")
    from latentdirs.generators import generator_from_spec
    meta = DirectionSet.load(tmp_path / "set").meta["generator"]
    again = generator_from_spec(meta["spec"], meta)
    z = torch.randn(2, 6)
    with torch.no_grad():
        assert torch.equal(again(z), G(z))
    assert again.classes.tolist() == [1]



@pytest.mark.filterwarnings("ignore:no direction gives masks")  # random weights: no background direction
def test_every_command_runs_on_the_kind_and_reloads_it_from_the_set(tmp_path):
    """discover, rca, render, compare, sweep, serve, edit, saliency and demo on a class-conditional file."""
    checkpoint = save({"generator": TutorialG(nz=11, ngf=2).state_dict()}, tmp_path / "cgan.pth")
    kind = ["--generator", "dcgan-tutorial", "--checkpoint", str(checkpoint), "-O", "label_dim=3", "--classes", "0,2"]
    run = run_every_command(kind, tmp_path, image_size=32)
    spec = DirectionSet.load(run).meta["generator"]["spec"]
    assert spec == {"kind": "dcgan-tutorial", "path": str(checkpoint), "options": {"classes": [0, 2], "label_dim": 3}}


def run_every_command(kind: list[str], tmp_path, image_size: int, batch: int = 6):
    """Every command with tiny settings on the generator ``kind`` names; later commands reload it from the set."""
    from latentdirs.cli import main
    from latentdirs.cli.options import add_generator_options, generator_from_args
    fast = ["--threads", "1"]
    runs = tmp_path / "runs"
    assert main(["discover", *kind, "-k", "3", "--steps", "3", "--batch-size", str(batch), "--runs-dir", str(runs),
                 "--log-every", "3", *fast]) == 0
    (run,) = runs.iterdir()
    # without --generator, each command reloads it from the set's metadata
    assert main(["rca", str(run), "--steps", "2", "--batch-size", str(batch), "--json", str(tmp_path / "rca.json"),
                 *fast]) == 0
    assert main(["render", str(run), "--directions", "0", "--shifts=-4:4:3", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "direction_000.png").exists()
    assert main(["compare", *kind, "-k", "2", "--seeds", "0", "--methods", "sefa,ganspace,random", "--rca-steps", "2",
                 "--ganspace-samples", "64", "--batch-size", str(batch), "--out", str(tmp_path / "cmp"), *fast]) == 0
    assert (tmp_path / "cmp" / "report.md").exists()
    assert main(["sweep", *kind, "--grid", "k=2", "--set", "steps=2", "--set", f"batch_size={batch}", "--rca-steps", "0",
                 "--eval-latents", "4", "--no-render", "--out", str(tmp_path / "sweep"), *fast]) == 0
    assert (tmp_path / "sweep" / "report.md").exists()
    from latentdirs.web.app import create_app
    client = create_app([str(run)], db_path=tmp_path / "answers.sqlite").test_client()
    assert client.get("/api/sets").get_json()["generator"]["image_shape"] == [3, image_size, image_size]
    image = client.get(f"/api/image?set={run.name}&seed=1&shifts=0:3&scale=1")
    assert image.status_code == 200 and image.content_type == "image/png"
    import argparse
    parser = argparse.ArgumentParser()
    add_generator_options(parser)
    G = generator_from_args(parser.parse_args(kind))
    from latentdirs.render import to_pil
    with torch.no_grad():
        to_pil(G(G.sample_latents(1, generator=torch.Generator().manual_seed(4))).clamp(-1, 1))[0].save(tmp_path / "x.png")
    assert main(["edit", str(tmp_path / "x.png"), "--directions", str(run), "--direction", "1", "--shift", "-3..3",
                 "--num-shifts", "3", "--steps", "2", "--num-starts", "4", "--out", str(tmp_path / "edit"), *fast]) == 0
    assert (tmp_path / "edit" / "x_d1.png").exists()
    assert main(["saliency", "find-direction", str(run), "--num-latents", "4", "--shifts", "6",
                 "--out", str(tmp_path / "find"), "--no-progress"]) == 0
    assert (tmp_path / "find" / "ranking.json").exists()
    assert main(["demo", *kind, "-k", "2", "--steps", "3", "--rca-steps", "2", "--batch-size", str(batch),
                 "--runs-dir", str(tmp_path / "demo"), *fast]) == 0
    (demo,) = (tmp_path / "demo").iterdir()
    assert (demo / "report.md").exists()
    return run


@pytest.mark.parametrize("options, message", [
    (dict(label_dim=3, classes=[1.5]), "a class is an index \\(an int\\) or a class name, got 1.5"),
    (dict(label_dim=3, classes=True), "got True"),
    (dict(latent_dim=True), "latent_dim=True: expected an int"),
    (dict(label_dim="3"), "label_dim='3': expected an int"),
    (dict(class_names="abc"), "class_names='abc': expected a list of names"),
    (dict(label_dim=3, activation="leaky_relu", negative_slope="x"), "negative_slope='x'"),
])
def test_dcgan_options_of_the_wrong_kind_are_named(tmp_path, options, message):
    path = save(TutorialG(nz=15).state_dict(), tmp_path / "cond.pt")
    with pytest.raises(GeneratorError, match=message):
        load_generator("dcgan-tutorial", path, **options)
    with pytest.raises(GeneratorError, match="'dcgan-tutorial' needs a checkpoint"):
        load_generator("dcgan-tutorial")
