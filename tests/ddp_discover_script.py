"""Run by tests/test_distributed.py under ``torch.distributed.run --nproc_per_node=2``.

    python -m torch.distributed.run --nproc_per_node=2 --standalone tests/ddp_discover_script.py fresh DIR
    ... resume DIR

fresh: every rank is given its own run folder DIR/run<rank> (only rank 0 may write one), and
also trains an uninterrupted reference run without a folder; resume: both ranks continue
DIR/run0. Each rank reports its final A in DIR/<mode>_rank<rank>.json (the test's own file).
"""
import json
import os
import sys
from pathlib import Path

import torch

import latentdirs

torch.set_num_threads(1)
mode, base = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])
opts = dict(num_directions=5, batch_size=64, lr=3e-3, seed=0, progress=False, log_every=8, checkpoint_every=8,
            importance_latents=0)
G = latentdirs.load_generator("planted")
report = {"world": int(os.environ["WORLD_SIZE"])}
if mode == "fresh":
    part = latentdirs.discover(G, steps=16, out_dir=base / f"run{rank}", **opts)
    full = latentdirs.discover(G, steps=32, **opts)
    report.update(part=part.direction_matrix.matrix().tolist(), full=full.direction_matrix.matrix().tolist(),
                  full_history=full.history)
else:
    resumed = latentdirs.discover(G, steps=32, out_dir=base / "run0", resume=True, **opts)
    report.update(resumed=resumed.direction_matrix.matrix().tolist(), history=resumed.history)
(base / f"{mode}_rank{rank}.json").write_text(json.dumps(report))
