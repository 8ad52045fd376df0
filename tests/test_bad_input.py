"""Every file latentdirs reads, broken every way we know, gets a clean error (docs/promises.md).

One table: the files (generator checkpoints of every kind, direction sets, the files of a run folder,
the ratings database) x the corruptions (empty, truncated at several points, random bytes, a valid
container with wrong keys / shapes / dtypes / NaN, another latent size). The contract for each:
the Python API raises a ValueError (every refusal of the package is one: DirectionError,
CheckpointError, RatingError, ...) whose message names the file; the command line prints one
``error: ...`` line naming it and exits 2; nothing prints a traceback. The web app's requests are
covered the same way in test_web_hostile.py.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from latentdirs import DirectionSet, load_generator
from latentdirs.cli import main
from latentdirs.generators.registry import _KINDS, available_generators

# -- how a file is broken -------------------------------------------------------------------------
BYTES = ["empty", "truncated-at-16", "truncated-at-half", "truncated-by-1", "random-bytes"]
TENSORS = ["wrong-keys", "wrong-shapes", "wrong-dtype", "nan", "not-a-mapping"]
JSON = ["not-an-object", "empty-object", "wrong-types", "not-utf8"]


def break_bytes(path: Path, how: str) -> None:
    data = path.read_bytes()
    # truncated-by-1: the last byte that is not a trailing newline (a JSON file without its newline is whole)
    cut = {"empty": 0, "truncated-at-16": 16, "truncated-at-half": len(data) // 2,
           "truncated-by-1": len(data.rstrip(b"\n")) - 1}
    if how in cut:
        path.write_bytes(data[:cut[how]])
    else:  # the same length of noise, fixed by a seed
        path.write_bytes(torch.randint(0, 256, (len(data),), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8).numpy().tobytes())


def _map_tensors(value, fn):
    """``fn`` applied to every tensor of a nested container of dicts and lists."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _rename_keys(value):
    if isinstance(value, dict):
        holds_tensors = any(isinstance(v, torch.Tensor) for v in value.values())
        return {(f"renamed.{k}" if holds_tensors else k): _rename_keys(v) for k, v in value.items()}
    return value


def _grown(t: torch.Tensor) -> torch.Tensor:
    return torch.zeros((t.shape[0] + 1,) + tuple(t.shape[1:]), dtype=t.dtype) if t.dim() else t


def transform_tensors(container, how: str):
    if how == "wrong-keys":
        return _rename_keys(container)
    if how == "wrong-shapes":
        return _map_tensors(container, lambda t: _grown(t) if t.is_floating_point() else t)
    if how == "wrong-dtype":
        return _map_tensors(container, lambda t: t.round().long() if t.is_floating_point() else t)
    if how == "nan":
        return _map_tensors(container, lambda t: torch.full_like(t, float("nan")) if t.is_floating_point() else t)
    if how == "not-a-mapping":
        return [1, 2, 3]
    raise KeyError(how)


def break_tensor_file(path: Path, how: str) -> None:
    """A valid file of the same format (safetensors or torch.save) holding the wrong tensors."""
    if path.suffix == ".safetensors":
        tensors = transform_tensors(load_file(str(path)), how)
        if not isinstance(tensors, dict):  # safetensors holds only a flat mapping: no keys at all instead
            tensors = {}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    else:
        torch.save(transform_tensors(torch.load(path, weights_only=True), how), path)


def break_json(path: Path, how: str) -> None:
    if how == "not-utf8":
        path.write_bytes(b"\xff\xfe" + path.read_bytes())
        return
    data = json.loads(path.read_text())
    broken = {"not-an-object": [data], "empty-object": {},
              "wrong-types": {k: [v] for k, v in data.items()} if isinstance(data, dict) else [data]}[how]
    path.write_text(json.dumps(broken))


def break_file(path: Path, how: str) -> None:
    if how in BYTES:
        break_bytes(path, how)
    elif how in TENSORS:
        break_tensor_file(path, how)
    else:
        break_json(path, how)


# -- what a clean error is --------------------------------------------------------------------------
def assert_clean_cli(argv: list[str], named: str, capsys) -> str:
    """``latentdirs ARGV`` exits 2 with one ``error:`` line naming ``named``."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse and `raise SystemExit("error: ...")`
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err[-2000:]}"
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert named in err.splitlines()[0], f"{named!r} not named in: {err}"
    return err


def assert_clean_api(call: Callable, named: str) -> ValueError:
    with pytest.raises(ValueError) as info:  # every refusal of the package is a ValueError
        call()
    assert named in str(info.value), f"{named!r} not named in: {info.value}"
    return info.value


# -- the files, built small, once per module ---------------------------------------------------------
@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Small valid files of every kind the package reads."""
    root = tmp_path_factory.mktemp("originals")
    base = ["--generator", "planted", "--steps", "2", "--batch-size", "8", "--checkpoint-every", "1",
            "--importance-latents", "0", "--no-render", "--threads", "1"]
    assert main(["discover", "-k", "3", "--out", str(root / "run"), *base]) == 0
    assert main(["discover", "-k", "4", "--out", str(root / "run-k4"), *base]) == 0
    from latentdirs.web.ratings import RatingStore
    store = RatingStore(root / "ratings.sqlite")
    store.record("ann", "run", 0, True, True, "colour", "hue")
    return root


@pytest.fixture()
def work(originals, tmp_path):
    """A fresh copy of the originals for one test to break."""
    target = tmp_path / "files"
    shutil.copytree(originals, target)
    return target


@dataclass(frozen=True)
class Case:
    file: str            # path inside the copied originals
    how: str
    argv: Callable[[Path], list[str]]  # the command that reads it

    def __str__(self) -> str:
        return f"{self.file}:{self.how}"


def _export(root: Path) -> list[str]:
    return ["export", str(root / "run"), str(root / "out.npy")]


def _resume(root: Path) -> list[str]:
    return ["discover", "--resume", str(root / "run"), "--steps", "3", "--no-render", "--threads", "1"]


def _render(root: Path) -> list[str]:
    return ["render", str(root / "run"), "--out", str(root / "charts"), "--num-latents", "1", "--shifts", "0",
            "--directions", "0", "--threads", "1"]


def _mos(root: Path) -> list[str]:
    return ["mos", str(root / "run"), "--db", str(root / "ratings.sqlite")]


RUN_FILES = (
    [Case("run/directions/directions.safetensors", how, _export) for how in BYTES + TENSORS]
    # an empty directions.json is a set without metadata, which is valid (hand-made sets have none)
    + [Case("run/directions/directions.json", how, _export) for how in BYTES + JSON if how != "empty-object"]
    + [Case("run/checkpoint.pt", how, _resume) for how in BYTES + TENSORS]
    + [Case("run/config.json", how, _resume) for how in BYTES + JSON]
    + [Case("run/snapshots.safetensors", how, _render) for how in BYTES + TENSORS]
    # a 0-byte file is a new, empty SQLite database; one byte short, SQLite still reads every whole page
    + [Case("ratings.sqlite", how, _mos) for how in BYTES if how not in ("empty", "truncated-by-1")]
)


@pytest.mark.parametrize("case", RUN_FILES, ids=str)
def test_a_broken_file_of_a_run_gets_a_clean_error(case, work, capsys):
    path = work / case.file
    break_file(path, case.how)
    assert_clean_cli(case.argv(work), path.name, capsys)


def test_a_direction_set_is_refused_where_its_two_files_disagree(work, capsys):
    meta = work / "run" / "directions" / "directions.json"
    record = json.loads(meta.read_text())
    for key, value in [("latent_dim", 17), ("num_directions", 5), ("names", ["a"]), ("generator", "planted")]:
        meta.write_text(json.dumps({**record, key: value}))
        err = assert_clean_cli(_export(work), "directions.json", capsys)
        assert key in err
    meta.write_text(json.dumps(record))
    # the same set read by the API: the named exception
    from latentdirs.directions import DirectionError
    meta.write_text(json.dumps({**record, "latent_dim": 17}))
    assert isinstance(assert_clean_api(lambda: DirectionSet.load(work / "run"), "directions.json"), DirectionError)


def test_a_selected_set_records_its_own_size_and_older_ones_still_load(tmp_path):
    trained = DirectionSet.random(16, 6, seed=0)
    trained.meta["num_directions"] = 6  # as discover's metadata says
    trained.select([4, 1, 2]).save(tmp_path / "top3")
    assert json.loads((tmp_path / "top3" / "directions.json").read_text())["num_directions"] == 3
    record = json.loads((tmp_path / "top3" / "directions.json").read_text())
    (tmp_path / "top3" / "directions.json").write_text(json.dumps({**record, "num_directions": 6}))  # as saved before
    assert DirectionSet.load(tmp_path / "top3").num_directions == 3  # its selected_from says why


def test_a_set_of_another_latent_size_is_refused_by_render(work, capsys):
    DirectionSet.random(32, 3).save(work / "d32")
    err = assert_clean_cli(["render", str(work / "d32"), "--generator", "planted", "--out", str(work / "c")],
                           "d32", capsys)
    assert "32-d" in err and "16-d" in err


def test_a_checkpoint_of_another_run_is_refused_on_resume(work, capsys):
    shutil.copy(work / "run-k4" / "checkpoint.pt", work / "run" / "checkpoint.pt")  # A is 16 x 4, the run's 16 x 3
    assert "does not fit this run" in assert_clean_cli(_resume(work), "checkpoint.pt", capsys)


def test_a_broken_resume_never_suggests_trust_pickle(work, capsys):
    # resume reads its own checkpoint weights-only and has no --trust-pickle: it must not advise one
    for how in BYTES:
        shutil.copy(work / "run-k4" / "checkpoint.pt", work / "run" / "checkpoint.pt")
        break_file(work / "run" / "checkpoint.pt", how)
        assert "trust" not in assert_clean_cli(_resume(work), "checkpoint.pt", capsys).lower()


def test_resume_removes_what_a_kill_during_a_write_left_behind(work):
    run = work / "run"
    stale = [run / ".checkpoint.pt.k2j4a9.tmp", run / "directions" / ".directions.json.x81bq.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    assert main(_resume(work)) == 0
    assert not any(p.exists() for p in stale)
    assert not list(run.rglob("*.tmp"))


def test_a_ratings_database_of_another_schema_or_damaged_is_refused(work, capsys):
    db = work / "ratings.sqlite"
    db.unlink()
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE answers (who TEXT, what TEXT)")
    assert "not a ratings database" in assert_clean_cli(_mos(work), "ratings.sqlite", capsys)
    from latentdirs.web.ratings import RatingStore
    assert_clean_api(lambda: RatingStore(db), "ratings.sqlite")
    (work / "folder.sqlite").mkdir()
    assert_clean_cli(["mos", str(work / "run"), "--db", str(work / "folder.sqlite")], "folder.sqlite", capsys)


@pytest.mark.parametrize("how", BYTES + JSON)
def test_a_broken_cell_result_of_a_sweep_or_comparison_names_the_file(tmp_path, how):
    from latentdirs.cells import read_result, write_result
    write_result(tmp_path, {"method": "sefa", "seed": 0, "rca": 0.5})
    break_file(tmp_path / "result.json", how)
    if how in ("empty-object", "wrong-types"):  # a JSON object: what it holds is the job's to check
        assert isinstance(read_result(tmp_path), dict)
        return
    assert_clean_api(lambda: read_result(tmp_path), "result.json")


ENCODER_CASES = ([("encoder.safetensors", how) for how in BYTES + TENSORS]
                 + [("encoder.json", how) for how in BYTES + JSON])


@pytest.mark.parametrize("file, how", ENCODER_CASES, ids=[f"{f}:{h}" for f, h in ENCODER_CASES])
def test_a_broken_inversion_encoder_gets_a_clean_error(tmp_path, file, how):
    from latentdirs.inversion import Encoder, EncoderConfig
    torch.manual_seed(0)
    Encoder(EncoderConfig(latent_dim=16, image_channels=3, image_size=32, width=4)).save_pretrained(tmp_path)
    break_file(tmp_path / file, how)
    assert_clean_api(lambda: Encoder.from_pretrained(tmp_path), file)


UNET_CASES = [("unet.safetensors", how) for how in BYTES + TENSORS] + [("unet.json", how) for how in BYTES + JSON]


@pytest.fixture(scope="module")
def unet_folder(tmp_path_factory):
    from latentdirs.saliency import UNet, UNetConfig
    torch.manual_seed(0)
    return UNet(UNetConfig(base_channels=2, depth=2)).save(tmp_path_factory.mktemp("unet") / "unet")


@pytest.mark.parametrize("file, how", UNET_CASES, ids=[f"{f}:{h}" for f, h in UNET_CASES])
def test_a_broken_saliency_unet_gets_a_clean_error(unet_folder, tmp_path, file, how):
    from latentdirs.saliency import UNet
    folder = tmp_path / "unet"
    shutil.copytree(unet_folder, folder)
    break_file(folder / file, how)
    # an empty unet.json means the default settings, which the small weights do not fit
    named = "unet.safetensors" if (file, how) == ("unet.json", "empty-object") else file
    assert_clean_api(lambda: UNet.load(folder), named)


@pytest.mark.parametrize("how", [h for h in BYTES if h != "truncated-by-1"])  # a byte of IEND's CRC: pixels whole
def test_a_broken_image_to_edit_or_of_a_saliency_data_set_names_the_file(tmp_path, how):
    import numpy as np

    from latentdirs.inversion import load_image as load_photo
    from latentdirs.saliency.masks import load_image, load_mask, save_png
    path = tmp_path / "00000.png"
    save_png(np.zeros((32, 32, 3), dtype=np.uint8), path)
    break_file(path, how)
    planted = load_generator("planted")
    for load in (load_image, load_mask, lambda p: load_photo(p, planted)):
        assert_clean_api(lambda: load(path), path.name)


def test_jsonl_records_name_the_file_and_line(tmp_path):
    from latentdirs.runs import read_jsonl
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    assert "line 2" in str(assert_clean_api(lambda: read_jsonl(path), "metrics.jsonl"))


# -- generator checkpoints: every kind of the registry ------------------------------------------------
def _tiny_stylegan2(folder: Path) -> Path:
    from latentdirs.generators.stylegan2 import StyleGAN2Network
    torch.manual_seed(0)
    path = folder / "stylegan2.pt"
    torch.save({"g_ema": StyleGAN2Network(16, 8, 2, {4: 16, 8: 16, 16: 8}).state_dict(),
                "latent_avg": torch.zeros(8)}, path)
    return path


def _tiny_sngan(folder: Path) -> Path:
    from latentdirs.generators.sngan import SNGANGenerator
    torch.manual_seed(0)
    (folder / "SN_MNIST").mkdir()
    path = folder / "SN_MNIST" / "generator.pt"
    torch.save(SNGANGenerator("sn_resnet32", 128, 1).state_dict(), path)
    (folder / "SN_MNIST" / "args.json").write_text(json.dumps({"model": "sn_resnet32", "latent_dim": 128,
                                                                "image_channels": 1}))
    return path


def _tiny_proggan(folder: Path) -> Path:
    from latentdirs.generators.proggan import PtrblckGenerator
    torch.manual_seed(0)
    path = folder / "proggan.pth"
    torch.save(PtrblckGenerator([8, 8], latent_dim=8).state_dict(), path)
    return path


def _tiny_biggan(folder: Path) -> Path:
    from latentdirs.generators.biggan import BigGANDeep, _FlatView
    config = {"attention_layer_position": 1, "channel_width": 2, "class_embed_dim": 4, "eps": 1e-4,
              "layers": [[True, 16, 8], [True, 8, 1]], "n_stats": 51, "num_classes": 1000, "output_dim": 16,
              "z_dim": 8}
    torch.manual_seed(0)
    (folder / "biggan").mkdir()
    path = folder / "biggan" / "pytorch_model.bin"
    torch.save(_FlatView(BigGANDeep(config)).state_dict(), path)
    (folder / "biggan" / "config.json").write_text(json.dumps(config))
    return path


def _tiny_dcgan_tutorial(folder: Path) -> Path:
    layers = [torch.nn.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), torch.nn.BatchNorm2d(16), torch.nn.ReLU(True)]
    for c_in, c_out in [(16, 8), (8, 4)]:
        layers += [torch.nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(c_out),
                   torch.nn.ReLU(True)]
    layers += [torch.nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False), torch.nn.Tanh()]
    torch.manual_seed(0)
    path = folder / "netG.pth"
    torch.save({"netG_state_dict": {f"main.{k}": v for k, v in torch.nn.Sequential(*layers).state_dict().items()}},
               path)
    return path


def _shipped(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        from latentdirs.generators.shapes3d import packaged_weights_dir
        shutil.copytree(packaged_weights_dir(name), folder / name)
        return folder / name / "generator.safetensors"
    return build


def _nvlabs(folder: Path) -> Path:
    import pickle
    path = folder / "network.pkl"
    path.write_bytes(pickle.dumps({"G_ema": list(range(2000)), "D": None}))  # refused untrusted, never unpickled
    return path


# loader ("module:function") -> (builder of a small valid file, corruptions it is checked against)
BUILDERS = {
    "latentdirs.generators.stylegan2:load": (_tiny_stylegan2, BYTES + TENSORS),
    "latentdirs.generators.sngan:load_mnist": (_tiny_sngan, BYTES + TENSORS),
    "latentdirs.generators.proggan:load": (_tiny_proggan, BYTES + TENSORS),
    "latentdirs.generators.biggan:load": (_tiny_biggan, BYTES + TENSORS),
    "latentdirs.generators.dcgan_tutorial:load": (_tiny_dcgan_tutorial, BYTES + TENSORS),
    "latentdirs.generators.shapes3d:load": (_shipped("shapes3d"), BYTES + TENSORS),
    "latentdirs.generators.shapes3d:load_dcgan": (_shipped("shapes3d_dcgan"), BYTES),
    "latentdirs.generators.shapes3d_fade:load": (_shipped("shapes3d_fade"), BYTES),
    "latentdirs.generators.nvlabs:load": (_nvlabs, BYTES),
    # the zoo: a file given for a pinned entry must be those exact weights (sha256), whatever it holds
    "latentdirs.generators.zoo:load_digiface": (_tiny_dcgan_tutorial, BYTES + ["wrong-shapes"]),
    "latentdirs.generators.zoo:load_omniart_eyes": (_tiny_dcgan_tutorial, BYTES + ["wrong-shapes"]),
}
PINNED = {"latentdirs.generators.zoo:load_digiface", "latentdirs.generators.zoo:load_omniart_eyes"}
# kinds that read no file a user gives: the procedural generator, and the same loader as a covered kind
NO_FILE = {"latentdirs.generators.planted:load"}
SAME_LOADER = {"latentdirs.generators.sngan:load_anime": "the sngan loader (sngan-mnist), 27M parameters"}


def _kind_of(loader: str) -> str:
    return next(kind for kind, (spec, _) in _KINDS.items() if spec == loader)


GENERATOR_CASES = [(loader, how) for loader, (_, kinds) in BUILDERS.items() for how in kinds
                   if any(spec == loader for spec, _ in _KINDS.values())]


def test_every_generator_kind_has_a_broken_file_case():
    loaders = {_KINDS[kind][0] for kind in available_generators() if kind in _KINDS}
    uncovered = sorted(loaders - set(BUILDERS) - NO_FILE - set(SAME_LOADER))
    assert not uncovered, f"add a small valid file of these loaders to BUILDERS: {uncovered}"


@pytest.fixture(scope="module")
def generator_files(tmp_path_factory):
    return tmp_path_factory.mktemp("generators")


@pytest.mark.parametrize("loader, how", GENERATOR_CASES, ids=[f"{_kind_of(loader)}:{how}" for loader, how in GENERATOR_CASES])
def test_a_broken_generator_checkpoint_gets_a_clean_error(loader, how, generator_files, tmp_path):
    kind = _kind_of(loader)
    folder = tmp_path / kind
    folder.mkdir()
    path = BUILDERS[loader][0](folder)
    if how == "empty" and kind != "nvlabs-pickle" and loader not in PINNED:  # the valid file loads (once per kind)
        load_generator(kind, str(path))
    break_file(path, how)
    assert_clean_api(lambda: load_generator(kind, str(path)), path.name)


def test_a_broken_ratings_database_stops_serve_before_it_listens(originals, tmp_path):
    pytest.importorskip("flask")
    from latentdirs.web.app import create_app
    db = tmp_path / "answers.sqlite"
    shutil.copy(originals / "ratings.sqlite", db)
    break_file(db, "truncated-at-half")
    assert_clean_api(lambda: create_app([str(originals / "run")], db_path=db), db.name)


# the config files beside some checkpoints, and the corruptions that leave them valid
CONFIGS = {"latentdirs.generators.shapes3d:load": ("config.json", set()),
           "latentdirs.generators.sngan:load_mnist": ("args.json", {"empty-object"}),  # the kind's defaults
           "latentdirs.generators.biggan:load": ("config.json", set())}
CONFIG_CASES = [(loader, how) for loader, (_, valid) in CONFIGS.items() for how in BYTES + JSON if how not in valid]


@pytest.mark.parametrize("loader, how", CONFIG_CASES, ids=[f"{_kind_of(loader)}:{how}" for loader, how in CONFIG_CASES])
def test_a_broken_config_beside_a_checkpoint_gets_a_clean_error(loader, how, tmp_path):
    path = BUILDERS[loader][0](tmp_path)
    config = path.parent / CONFIGS[loader][0]
    break_file(config, how)
    message = str(assert_clean_api(lambda: load_generator(_kind_of(loader), str(path)), path.parent.name))
    assert config.name in message or path.name in message


def test_a_damaged_pickle_is_called_damaged_not_untrusted(tmp_path):
    path = _nvlabs(tmp_path)
    message = str(assert_clean_api(lambda: load_generator("nvlabs-pickle", str(path)), path.name))
    assert "trust_pickle=True" in message  # whole and untrusted: the refusal says how to open it
    for how in BYTES:
        path = _nvlabs(tmp_path)
        break_file(path, how)
        assert "trust" not in str(assert_clean_api(lambda: load_generator("nvlabs-pickle", str(path)), path.name))


def test_the_command_line_names_a_broken_generator_checkpoint(tmp_path, capsys):
    path = _tiny_stylegan2(tmp_path)
    break_file(path, "truncated-at-half")
    assert_clean_cli(["discover", "--generator", "stylegan2", "--checkpoint", str(path), "--steps", "1",
                      "--out", str(tmp_path / "run")], path.name, capsys)


# -- a property-based pass over the loaders ---------------------------------------------------------
FUZZED = ["directions.safetensors", "directions.json", "checkpoint.pt", "snapshots.safetensors"]


def _any_bytes_give_a_clean_error(originals: Path, work: Path, data: bytes, name: str) -> None:
    shutil.copytree(originals / "run", work / "run")
    path = next((work / "run").rglob(name))
    path.write_bytes(data)
    if name == "checkpoint.pt":
        from latentdirs.discovery.checkpoints import read_checkpoint
        assert_clean_api(lambda: read_checkpoint(path, torch.device("cpu")), name)
    elif name == "snapshots.safetensors":
        from latentdirs.discovery import load_snapshots
        assert_clean_api(lambda: load_snapshots(work / "run"), name)
    else:
        try:
            DirectionSet.load(work / "run")
        except ValueError as exc:
            assert name in str(exc)
        # or it parsed: a JSON object that happens to fit is a valid set


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", FUZZED)
def test_seeded_random_bytes_in_a_run_file_give_a_clean_error(originals, tmp_path, name, seed):
    generator = torch.Generator().manual_seed(seed)
    size = int(torch.randint(1, 2000, (1,), generator=generator))
    data = torch.randint(0, 256, (size,), generator=generator, dtype=torch.uint8).numpy().tobytes()
    _any_bytes_give_a_clean_error(originals, tmp_path, data, name)


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # not a dependency: the seeded pass above always runs
    given = None

if given is not None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.binary(max_size=600), st.sampled_from(FUZZED))
    def test_any_bytes_in_any_run_file_give_a_clean_error(originals, tmp_path_factory, data, name):
        _any_bytes_give_a_clean_error(originals, tmp_path_factory.mktemp("fuzz"), data, name)


# -- no traceback from the real console script ---------------------------------------------------------
@pytest.mark.parametrize("file, how", [("run/directions/directions.safetensors", "truncated-at-half"),
                                       ("ratings.sqlite", "random-bytes"), ("run/checkpoint.pt", "empty")])
def test_the_console_script_prints_no_traceback(file, how, work):
    break_file(work / file, how)
    argv = {"ratings.sqlite": _mos, "run/checkpoint.pt": _resume}.get(file, _export)(work)
    done = subprocess.run([sys.executable, "-m", "latentdirs.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    assert Path(file).name in done.stderr
