"""runs.Run: the one owner of a run folder's settings, log, metrics and checkpoint."""
import json
import re

import pytest
import torch

from latentdirs.runs import Run, read_jsonl, safe_torch_load, write_jsonl


def test_config_is_saved_and_resuming_with_other_settings_is_refused(tmp_path):
    run = Run(tmp_path / "run")
    run.check_config("job", {"steps": 5, "lr": 0.1})  # nothing stored yet: anything goes
    run.save_config({"job": {"steps": 5, "lr": 0.1, "shape": (1, 2)}, "generator": {"name": "g"}})
    assert json.loads((tmp_path / "run" / "config.json").read_text())["job"]["shape"] == [1, 2]
    run.check_config("job", {"steps": 5, "lr": 0.1, "shape": (1, 2)}, generator={"name": "g"})  # tuple == list
    run.check_config("job", {"steps": 9, "lr": 0.1}, ignore={"steps"})
    with pytest.raises(ValueError, match=re.escape("lr: folder has 0.1, asked 0.2")):
        run.check_config("job", {"steps": 5, "lr": 0.2})
    with pytest.raises(ValueError, match="another generator"):
        run.check_config("job", {"steps": 5}, generator={"name": "h"})


def test_log_and_metrics_append_and_read_back(tmp_path):
    run = Run(tmp_path / "run", log="job.log")
    run.log("started")
    run.append({"step": 1, "loss": 0.5})
    run.append({"step": 2, "path": tmp_path})  # not JSON: written as its text
    run.append({"command": "x"}, "commands.jsonl")
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] started\n", (tmp_path / "run" / "job.log").read_text())
    assert run.read() == [{"step": 1, "loss": 0.5}, {"step": 2, "path": str(tmp_path)}]
    assert run.read("commands.jsonl") == [{"command": "x"}]
    run.clear_metrics()
    assert run.read() == [] and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_run_without_folder_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Run(None)
    run.log("x"), run.append({"step": 1}), run.save_config({"a": 1}), run.save_checkpoint({"step": 1})
    run.check_config("job", {"a": 2})
    assert run.resume() is None and run.read() == [] and list(tmp_path.iterdir()) == []


def test_resume_drops_the_metrics_after_the_checkpoint_and_stale_temporaries(tmp_path):
    run = Run(tmp_path)
    assert run.resume() is None  # no checkpoint: a fresh start
    for step in (1, 2, 3, 4, 5):
        run.append({"step": step})
        if step == 3:
            run.save_checkpoint({"step": 3, "weights": torch.ones(2)})
    (tmp_path / "directions").mkdir()
    stale = [tmp_path / ".checkpoint.pt.x8f2k.tmp", tmp_path / "directions" / ".directions.json.ab12.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    keep = tmp_path / "notes.tmp"  # not a temporary of atomic_path
    keep.write_text("mine")
    state = run.resume("directions")
    assert state["step"] == 3 and torch.equal(state["weights"], torch.ones(2))
    assert [r["step"] for r in run.read()] == [1, 2, 3]
    assert not any(p.exists() for p in stale) and keep.exists()


class Code:  # a pickled object: loading it could run code
    pass


def test_checkpoints_load_weights_only(tmp_path):
    run = Run(tmp_path)
    run.save_checkpoint({"step": 1, "thing": Code()})
    with pytest.raises(ValueError, match="trust_pickle"):
        run.resume()
    assert isinstance(run.resume(read=lambda path: safe_torch_load(path, trust_pickle=True))["thing"], Code)


def test_an_interrupted_checkpoint_write_leaves_the_old_one(tmp_path, monkeypatch):
    run = Run(tmp_path)
    run.save_checkpoint({"step": 1})

    def killed(obj, path):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint({"step": 2})
    monkeypatch.undo()
    assert safe_torch_load(run.path("checkpoint"))["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_jsonl_helpers_round_trip_and_name_a_damaged_line(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl(path, [{"a": 1}, {"a": 2}])
    Run(tmp_path).append({"a": 3}, "r.jsonl")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 3}] and read_jsonl(tmp_path / "none.jsonl") == []
    with open(path, "a") as fh:
        fh.write('{"a": \n')
    with pytest.raises(ValueError, match="line 4"):
        read_jsonl(path)
