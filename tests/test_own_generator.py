"""Your own generator on the command line: ``--generator package.module:factory`` and kinds that an
installed package registers in the entry-point group ``latentdirs.generators``.

The package is a throwaway one, "installed" by putting a folder with the package and its
``.dist-info`` (METADATA + entry_points.txt) on sys.path: importlib.metadata finds it there just as
it finds what pip installs into site-packages, with no network and no venv.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from latentdirs.cli import main

GENS = '''
import torch
from torch import nn

import latentdirs

TOKEN = 3  # not a function


class Tiny(nn.Module):
    def __init__(self, latent_dim=8):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 3 * 32 * 32)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 3, 32, 32)


def make(path, latent_dim=8):
    """The documented form: weights from --checkpoint, wrap's arguments as a dict."""
    net = Tiny(latent_dim)
    net.load_state_dict(torch.load(path, weights_only=True))
    return dict(module=net, latent_dim=latent_dim, name="tiny")


def load_tiny(path=None):
    """An entry-point loader returning a Generator; seeded, so every call builds the same one."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Tiny()
    return latentdirs.wrap(net, latent_dim=8, name="tiny-ep")


def wrong(path=None):
    return torch.zeros(2, 3, 32, 32)


def no_dim(path=None):
    return dict(module=Tiny())


def typo(path=None):
    return dict(module=Tiny(), latent_dim=8, latent_dims=8)


def fails(path=None):
    raise RuntimeError("Error(s) in loading state_dict for Tiny")
'''

ENTRY_POINTS = """
[latentdirs.generators]
tiny = mypkg.gens:load_tiny
broken = mypkg.missing:load
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path holding the package ``mypkg`` and its dist-info (as pip would install it)."""
    site = tmp_path / "site"
    (site / "mypkg").mkdir(parents=True)
    (site / "mypkg" / "__init__.py").write_text("")
    (site / "mypkg" / "gens.py").write_text(GENS)
    info = site / "mypkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]


@pytest.fixture
def weights(tmp_path, site):
    from mypkg.gens import Tiny
    with torch.random.fork_rng():
        torch.manual_seed(1)
        net = Tiny()
    path = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), path)
    return path


def discover(runs, *generator):
    assert main(["discover", *generator, "-k", "3", "--steps", "4", "--batch-size", "8", "--log-every", "2",
                 "--runs-dir", str(runs), "--no-render", "--threads", "1"]) == 0
    (run,) = runs.iterdir()
    return run


def test_a_factory_on_the_command_line_is_recorded_and_reloaded_by_later_commands(tmp_path, site, weights):
    run = discover(tmp_path / "runs", "--generator", "mypkg.gens:make", "--checkpoint", str(weights),
                   "-O", "latent_dim=8")
    assert run.name.startswith("00000-discover-tiny")
    spec = json.loads((run / "directions" / "directions.json").read_text())["generator"]["spec"]
    assert spec == {"kind": "mypkg.gens:make", "path": str(weights), "options": {"latent_dim": 8}}

    # No --generator: render and rca reload the factory from the set's metadata.
    assert main(["render", str(run), "--directions", "0,1", "--shifts=-2:2:3", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "direction_001.png").exists()
    assert main(["rca", str(run), "--steps", "2", "--batch-size", "8", "--threads", "1",
                 "--json", str(tmp_path / "rca.json")]) == 0
    assert set(json.loads((tmp_path / "rca.json").read_text())) == {str(run), "random", "coordinate"}

    # The same from a fresh process, where only the set (and PYTHONPATH) says what the generator is.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "latentdirs.cli", "rca", str(run), "--steps", "2", "--batch-size",
                           "8", "--no-baselines", "--threads", "1"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert str(run) in done.stdout


def test_an_entry_point_kind_is_listed_loaded_and_reloaded(tmp_path, site, capsys):
    assert main(["generators"]) == 0
    listed = capsys.readouterr().out
    assert "tiny" in listed and "mypkg.gens:load_tiny (entry point of the installed package mypkg 0.1)" in listed
    run = discover(tmp_path / "runs", "--generator", "tiny")
    spec = json.loads((run / "directions" / "directions.json").read_text())["generator"]["spec"]
    assert spec["kind"] == "tiny"
    assert main(["render", str(run), "--directions", "0", "--shifts=-2:2:3", "--out", str(tmp_path / "c")]) == 0

    import latentdirs
    a, b = latentdirs.load_generator("tiny"), latentdirs.load_generator("tiny")
    z = a.sample_latents(2, torch.Generator().manual_seed(0))
    assert torch.equal(a(z), b(z))


@pytest.mark.parametrize("kind, message", [
    ("nopkg.gens:make", "there is no module 'nopkg' to import.*PYTHONPATH"),
    ("mypkg.nothere:make", "the package 'mypkg' .* has no module 'nothere'"),
    ("mypkg.gens:nothing", "has no 'nothing'; functions it defines: .*load_tiny.*make"),
    ("mypkg.gens:TOKEN", "is a int, not a function"),
    ("mypkg.gens:wrong", "returned a Tensor; it must return a latentdirs Generator.*dict\\(module=net"),
    ("mypkg.gens:no_dim", "dict of wrap's arguments without latent_dim"),
    ("mypkg.gens:typo", "with keys wrap does not take: latent_dims"),
    ("mypkg.gens:fails", "generator factory 'mypkg.gens:fails' raised RuntimeError: Error\\(s\\) in loading"),
    ("broken", "entry point `broken = mypkg.missing:load`.*mypkg 0.1.*cannot be loaded: ModuleNotFoundError"),
    ("mypkg.gens", "unknown generator kind 'mypkg.gens'.*package.module:factory"),
    (":make", "expected package.module:factory"),
])
def test_what_is_wrong_with_a_generator_is_named(tmp_path, site, capsys, kind, message):
    import re
    assert main(["discover", "--generator", kind, "-k", "2", "--steps", "1", "--batch-size", "4",
                 "--runs-dir", str(tmp_path / "runs"), "--no-render"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


def test_a_set_whose_factory_is_gone_says_which_module_to_make_importable(tmp_path, site, weights, monkeypatch, capsys):
    run = discover(tmp_path / "runs", "--generator", "mypkg.gens:make", "--checkpoint", str(weights))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["render", str(run), "--out", str(tmp_path / "c")]) == 2
    assert "generator factory 'mypkg.gens:make': there is no module 'mypkg'" in capsys.readouterr().err


def _images(z):
    return torch.tanh(z[:, :3, None, None].expand(-1, 3, 16, 16))


@pytest.mark.parametrize("module, options, message", [
    (_images, dict(latent_dim=True), "latent_dim must be a positive int, got True"),
    (None, dict(latent_dim=8), "module must be an nn.Module or a callable"),
    (_images, dict(latent_dim=8, output_range=(1, 1)), "output_range=\\(1, 1\\): expected \\(low, high\\)"),
    (_images, dict(latent_dim=8, output_range="0,1"), "output_range='0,1'"),
    (_images, dict(latent_dim=8, latent_shape=(3, 1, 1)), "product is latent_dim=8"),
    (_images, dict(latent_dim=8, first_layer="fc.weight"), "needs an nn.Module with parameters"),
    (lambda z: (_images(z) * 127.5 + 127.5).byte(), dict(latent_dim=8), "got uint8.*out.float\\(\\) / 127.5 - 1"),
    (lambda z: _images(z).double(), dict(latent_dim=8), "must be float32.*got float64"),
    (lambda z: _images(z) * 127.5 + 127.5, dict(latent_dim=8), "must be in \\[-1, 1\\].*output_range=\\(0, 255\\)"),
])
def test_wrap_names_what_is_wrong_with_its_arguments_or_the_images(module, options, message):
    import latentdirs
    with pytest.raises(latentdirs.GeneratorError, match=message):
        latentdirs.wrap(module, **options)


def test_wrap_first_layer_must_name_a_parameter():
    import latentdirs
    net = torch.nn.Sequential(torch.nn.Linear(8, 768), torch.nn.Unflatten(1, (3, 16, 16)), torch.nn.Tanh())
    with pytest.raises(latentdirs.GeneratorError, match="first_layer='fc.weight' is not a parameter.*0.weight"):
        latentdirs.wrap(net, latent_dim=8, first_layer="fc.weight")
    assert latentdirs.wrap(net, latent_dim=8, latent_shape=(-1,), first_layer="0.weight").first_layer_weight().shape \
        == (768, 8)


def test_a_checkpoint_given_to_a_factory_without_one_or_missing_for_one_that_needs_it(tmp_path, site, capsys):
    import latentdirs
    with pytest.raises(latentdirs.GeneratorError, match="'mypkg.gens:make' needs a checkpoint.*--checkpoint PATH"):
        latentdirs.load_generator("mypkg.gens:make")
    with pytest.raises(latentdirs.GeneratorError, match="a generator kind is a string"):
        latentdirs.load_generator(None)
    assert main(["discover", "--generator", "planted", "--checkpoint", str(tmp_path), "-k", "2", "--steps", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--no-render"]) == 2
    assert "'planted' takes no checkpoint file" in capsys.readouterr().err


@pytest.mark.parametrize("spec, message", [
    ({"kind": "planted", "options": [1]}, "generator record is damaged"),
    ({"kind": 5}, "generator record is damaged"),
    ({"kind": "shapes3d", "path": 5}, "generator record is damaged"),
    ({"kind": "planted", "options": {"nope": 1}}, "records the generator 'planted' with options \\{'nope': 1\\}"),
])
def test_a_damaged_generator_record_is_named_not_a_type_error(tmp_path, spec, message):
    import latentdirs
    with pytest.raises(latentdirs.GeneratorError, match=message):
        latentdirs.generators.generator_from_spec(spec, {"name": "planted"})
