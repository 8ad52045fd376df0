"""Run by tests/test_distributed.py under ``torch.distributed.run --nproc_per_node=2``.

    python -m torch.distributed.run --nproc_per_node=2 --standalone tests/ddp_discover_script.py DIR

1. every rank is given its own run folder DIR/run<rank> for 16 steps (only rank 0 may write);
2. an uninterrupted 32-step reference run without a folder;
3. both ranks resume DIR/run0 to 32 steps (as a relaunch would: discover reads the checkpoint),
   then at once to 40 (rank 1 must not read the checkpoint before rank 0 has written it), then
   rank 1 alone is pointed at a folder without a checkpoint (the ranks must refuse together, not hang).
Each rank reports its A matrices in DIR/rank<rank>.json (the test's own file). One launch
for all three keeps the test fast: starting processes costs more than these steps.
"""
import json
import os
import sys
from pathlib import Path

import torch

import latentdirs

torch.set_num_threads(1)
base = Path(sys.argv[1])
rank = int(os.environ["RANK"])
opts = dict(num_directions=5, batch_size=64, lr=3e-3, seed=0, progress=False, log_every=8, checkpoint_every=8,
            importance_latents=0)
G = latentdirs.load_generator("planted")
part = latentdirs.discover(G, steps=16, out_dir=base / f"run{rank}", **opts)
full = latentdirs.discover(G, steps=32, **opts)
resumed = latentdirs.discover(G, steps=32, out_dir=base / "run0", resume=True, **opts)
again = latentdirs.discover(G, steps=40, out_dir=base / "run0", resume=True, **opts)
try:
    latentdirs.discover(G, steps=48, out_dir=base / ("run0" if rank == 0 else "elsewhere"), resume=True, **opts)
    split_error = None
except ValueError as exc:
    split_error = str(exc)
report = {"world": int(os.environ["WORLD_SIZE"]), "part": part.direction_matrix.matrix().tolist(),
          "full": full.direction_matrix.matrix().tolist(), "full_history": full.history,
          "resumed": resumed.direction_matrix.matrix().tolist(), "resumed_history": resumed.history,
          "again_history": again.history, "split_error": split_error}
(base / f"rank{rank}.json").write_text(json.dumps(report))
