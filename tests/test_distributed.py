"""The discovery loop under torchrun: two CPU processes (gloo), DDP over A and R only.

About 15 s of CPU, mostly starting the processes (one launch does everything).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from latentdirs import DirectionSet

SCRIPT = Path(__file__).with_name("ddp_discover_script.py")


def test_two_processes_learn_write_once_and_resume(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", str(SCRIPT),
           str(tmp_path)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    # DDP keeps A identical on both ranks; only rank 0 touched the disk.
    for key in ("part", "full", "resumed"):
        assert ranks[0][key] == ranks[1][key], key
    assert not (tmp_path / "run1").exists()
    run = tmp_path / "run0"
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "directions"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    # It learns: accuracy (averaged over both ranks) well above chance (1/5) after 32 steps.
    accuracy = ranks[0]["full_history"][-1]["accuracy"]
    assert accuracy > 0.2 + 0.2, ranks[0]["full_history"]
    # Interrupted at 16 and resumed = uninterrupted (each rank re-seeds its sampling per step).
    assert [h["step"] for h in ranks[0]["resumed_history"]] == [8, 16, 24, 32]
    assert torch.allclose(torch.tensor(ranks[0]["resumed"]), torch.tensor(ranks[0]["full"]), atol=1e-6)
    # Resumed at once after a run: both ranks read its last checkpoint (rank 1 used to read an older one and hang).
    assert [h["step"] for h in ranks[1]["again_history"]] == [8, 16, 24, 32, 40]
    assert [h["loss"] for h in ranks[0]["again_history"]] == [h["loss"] for h in ranks[1]["again_history"]]
    # Ranks that find different checkpoints refuse together instead of hanging in DDP.
    assert all("different steps" in (r["split_error"] or "") for r in ranks), [r["split_error"] for r in ranks]
