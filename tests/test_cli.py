import json

import pytest

from latentdirs.cli import main


def test_discover_rca_render_export_from_the_command_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["discover", "--generator", "planted", "-k", "4", "--steps", "8", "--batch-size", "16",
                 "--runs-dir", str(runs), "--log-every", "4", "--threads", "1"]) == 0
    (run,) = runs.iterdir()
    assert run.name == "00000-discover-planted-k4-unit"
    assert (run / "charts" / "overview.png").exists()
    assert len(list((run / "charts").glob("evolution_*.png"))) >= 1
    assert main(["rca", str(run), "--steps", "3", "--batch-size", "16", "--json", str(tmp_path / "rca.json")]) == 0
    result = json.loads((tmp_path / "rca.json").read_text())
    assert set(result) == {str(run), "random", "coordinate"}
    # The command measures what the API measures for the same sets and settings (CLI lr default 1e-3).
    import latentdirs
    from latentdirs import DirectionSet
    G = latentdirs.load_generator("planted")
    expected = {str(run): DirectionSet.load(run), "random": DirectionSet.random(16, 4, seed=0),
                "coordinate": DirectionSet.identity(16, 4)}
    for name, ds in expected.items():
        assert result[name] == latentdirs.rca(G, ds, steps=3, batch_size=16, seed=0, lr=1e-3), name
    assert main(["render", str(run), "--directions", "1,2", "--shifts=-4:4:5", "--out", str(tmp_path / "c")]) == 0
    assert {p.name for p in (tmp_path / "c").iterdir()} >= {"overview.png", "direction_001.png", "direction_002.png"}
    assert main(["export", str(run), str(tmp_path / "d.npy"), "--top", "2"]) == 0
    import numpy as np
    assert np.load(tmp_path / "d.npy").shape == (2, 16)


def test_resume_from_the_command_line_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    import numpy as np
    import latentdirs.discovery
    from latentdirs import DirectionSet
    from latentdirs.runs import read_jsonl

    def args(out):
        return ["discover", "--generator", "planted", "-k", "3", "--steps", "12", "--batch-size", "16", "--out", str(out),
                "--checkpoint-every", "3", "--log-every", "2", "--no-render", "--threads", "1"]

    assert main(args(tmp_path / "full")) == 0

    # Ctrl-C during step 9: the last checkpoint is step 6, but step 8 was already logged.
    real_step, calls = latentdirs.discovery.train_step, []

    def interrupted_step(*a, **kw):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return real_step(*a, **kw)

    monkeypatch.setattr(latentdirs.discovery.train, "train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        main(args(tmp_path / "part"))
    monkeypatch.undo()
    assert not (tmp_path / "part" / "directions").exists()  # really stopped mid-run
    assert main(["discover", "--resume", str(tmp_path / "part"), "--no-render"]) == 0

    full, resumed = DirectionSet.load(tmp_path / "full"), DirectionSet.load(tmp_path / "part")
    np.testing.assert_allclose(resumed.matrix.numpy(), full.matrix.numpy(), atol=1e-6)
    np.testing.assert_allclose(resumed.scores.numpy(), full.scores.numpy(), rtol=1e-5)
    assert not np.allclose(full.matrix.numpy(), np.eye(16)[:, :3], atol=1e-3)  # it trained at all

    def curve(run):  # timing differs between runs; the training curve must not
        return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in read_jsonl(run / "metrics.jsonl")]
    assert [r["step"] for r in curve(tmp_path / "part")] == [2, 4, 6, 8, 10, 12]  # step 8 once, not twice
    for a, b in zip(curve(tmp_path / "part"), curve(tmp_path / "full")):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7) for k in a)
    assert main(["discover", "--resume", str(tmp_path / "full"), "--no-render"]) == 0  # finished: nothing to redo
    assert len(read_jsonl(tmp_path / "full" / "metrics.jsonl")) == 6


@pytest.mark.parametrize("argv, message", [
    (["discover", "--generator", "planted", "--steps", "0"], "positive integer"),
    (["discover", "--generator", "planted", "--lr", "abc"], "expected a number"),
    (["render", "x", "--shifts", "a:b"], "shifts must look like"),
    (["render", "x", "--shifts", "1:2:0"], "at least one"),  # was torch.cat's "expected a non-empty list"
    (["render", "x", "--shifts", "0,nan"], "finite"),
    (["discover", "--generator", "planted", "-O", "=1"], "expects KEY=VALUE"),  # was "unexpected keyword ''"
    (["discover", "--generator", "planted", "-O", "latent_dim"], "expects KEY=VALUE"),
])
def test_bad_cli_values_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_impossible_requests_exit_with_a_clear_message(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["discover", "--generator", "planted", "-k", "40", "--parametrization", "ortho",
                 "--runs-dir", str(runs)]) == 2
    assert "at most latent_dim=16" in capsys.readouterr().err
    assert not any(runs.iterdir())  # no empty run folder left behind
    assert main(["discover", "--generator", "nope"]) == 2
    assert "unknown generator kind 'nope'" in capsys.readouterr().err
    assert main(["render", str(tmp_path)]) == 2
    assert "no direction set" in capsys.readouterr().err


def test_an_unknown_device_is_a_one_line_error(tmp_path, capsys):
    # was torch's RuntimeError and a traceback
    assert main(["discover", "--generator", "planted", "--device", "gpu", "--out", str(tmp_path / "run")]) == 2
    assert "error: unknown device 'gpu'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-channels-last"], False), (["--channels-last"], True)])
def test_channels_last_flag_defaults_to_the_cpu_fast_path(tmp_path, flag, expected):
    # Unset means "the device's default" (on for CPU); the flag must not silently turn it off.
    assert main(["discover", "--generator", "planted", "-k", "2", "--steps", "2", "--batch-size", "8",
                 "--out", str(tmp_path / "run"), "--no-render", "--threads", "1"] + flag) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["discovery"]["channels_last"] is expected and config["discovery"]["amp"] is False


def test_discover_can_start_at_sefa_or_a_saved_set(tmp_path, capsys):
    base = ["discover", "--generator", "planted", "-k", "3", "--steps", "2", "--batch-size", "8", "--no-render",
            "--threads", "1", "--parametrization", "ortho"]
    assert main(base + ["--start", "sefa", "--out", str(tmp_path / "a")]) == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (config["discovery"]["start"], config["init"]) == ("sefa", "sefa start")
    assert main(base + ["--init", "sefa", "--out", str(tmp_path / "old")]) == 0  # the older spelling
    assert json.loads((tmp_path / "old" / "config.json").read_text())["discovery"]["start"] == "sefa"
    assert main(base + ["--start", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (config["discovery"]["start"], config["init"]) == ("axes", "ld-ortho")  # the set, not a closed form
    assert main(base + ["--init", str(tmp_path / "a"), "--out", str(tmp_path / "old-set")]) == 0
    with pytest.raises(SystemExit, match="fewer than -k 5"):
        main(base[:3] + ["-k", "5"] + base[5:] + ["--start", str(tmp_path / "a"), "--out", str(tmp_path / "c")])


@pytest.mark.parametrize("command", ["demo", "discover", "rca", "render", "export", "sweep", "compare", "generators",
                                     "serve", "mos", "saliency", "train-gan"])
def test_every_subcommand_has_help(command, capsys):
    from latentdirs.cli import COMMANDS
    assert command in COMMANDS
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: latentdirs " + command in capsys.readouterr().out


def test_a_missing_extra_is_named_with_its_install_command(tmp_path, monkeypatch, capsys):
    import sys
    for module in ("flask", "werkzeug", "werkzeug.serving", "latentdirs.web.app"):
        monkeypatch.setitem(sys.modules, module, None)  # as on a base install: import raises ModuleNotFoundError
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "`latentdirs serve` needs the 'web' extra" in err and 'pip install -e ".[web]"' in err


def test_resuming_with_another_config_is_refused_naming_the_fields(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["discover", "--generator", "planted", "-k", "2", "--steps", "2", "--batch-size", "8", "--out", str(out),
            "--no-render", "--threads", "1"]
    assert main(base) == 0
    # a resume with another lr and seed is refused, naming both; a longer run is fine
    from latentdirs import discover, load_generator
    with pytest.raises(ValueError, match=r"other options \(lr: folder has 0.001, asked 0.01, seed: folder has 0"):
        discover(load_generator("planted"), num_directions=2, steps=2, batch_size=8, lr=0.01, seed=1, out_dir=out,
                 resume=True, progress=False)
    assert main(["discover", "--resume", str(out), "--steps", "3", "--no-render", "--threads", "1"]) == 0
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


@pytest.mark.parametrize("argv", [
    ["discover", "--generator", "planted", "-k", "3", "--steps", "2"],
    ["render", "{set}"],
    ["saliency", "find-direction", "{set}", "--num-latents", "2"],
    ["sweep", "--generator", "planted", "--grid", "k=2", "--set", "steps=2", "--rca-steps", "0"],
    ["compare", "--generator", "planted", "-k", "2", "--ld-steps", "2", "--rca-steps", "2", "--gt-train", "0"],
    ["train-gan", "--steps", "1"],
], ids=lambda argv: argv[0] if argv[0] != "saliency" else "saliency")
@pytest.mark.filterwarnings("ignore:no direction gives masks")  # a random set has no background direction
def test_an_output_folder_that_is_a_file_is_named_not_a_traceback(argv, tmp_path, capsys):
    from latentdirs import DirectionSet, load_generator
    directions = DirectionSet.random(16, 3, seed=0)
    directions.meta["generator"] = load_generator("planted").describe()  # what a set records, so SET reloads it
    directions.save(tmp_path / "set")
    (tmp_path / "taken").write_text("a file the user keeps")
    code = main([a.format(set=tmp_path / "set") for a in argv] + ["--out", str(tmp_path / "taken")])
    err = capsys.readouterr().err
    assert code == 2 and "a file stands where a folder must be" in err and "Traceback" not in err, err
    assert (tmp_path / "taken").read_text() == "a file the user keeps"


def _planted_set(folder):
    from latentdirs import DirectionSet, load_generator
    ds = DirectionSet.random(16, 3, seed=0)
    ds.meta["generator"] = load_generator("planted").describe()
    return ds.save(folder)


def test_export_refuses_targets_it_would_get_wrong(tmp_path, capsys):
    src = _planted_set(tmp_path / "set")
    (tmp_path / "run").mkdir()
    run = tmp_path / "run"
    _planted_set(run / "directions")
    for target, message in ((tmp_path / "out.npz", "not '.npz' files"),  # was a folder named out.npz
                            ("", "target is empty"),  # was a set written into the current folder
                            (src, "export to another folder")):  # was the source overwritten by its top 1
        assert main(["export", str(src), str(target), "--top", "1"]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", str(run), str(run)]) == 2  # would shadow run/directions for every later command
    assert "run folder holding it" in capsys.readouterr().err
    from latentdirs import DirectionSet
    assert DirectionSet.load(src).num_directions == 3
    assert main(["export", str(src), str(tmp_path / "out.weird") + "/"]) == 0  # a trailing / keeps a dotted folder
    assert DirectionSet.load(tmp_path / "out.weird").num_directions == 3
    assert main(["export", str(src), str(tmp_path / "d.NPY")]) == 0
    import numpy as np
    assert np.load(tmp_path / "d.NPY").shape == (3, 16)


def test_render_with_no_direction_index_is_named(tmp_path, capsys):
    src = _planted_set(tmp_path / "set")
    assert main(["render", str(src), "--directions", ",", "--threads", "1"]) == 2  # drew the overview alone
    assert "--directions names no index" in capsys.readouterr().err
