"""Keep a copy of each training run's checkpoint as its CPU time passes given marks.

Runs that share a loaded machine reach a CPU budget at different wall times (and a paused run
not at all), so an equal-budget comparison needs each run as it was at the mark. This watches
the runs' folders and, the first time a run's checkpoint has used at least M CPU-minutes since
``--from-step``, saves it to ``SNAPSHOTS/RUN_Mmin/`` (checkpoint.pt + commands.jsonl), which
benchmarks/gan_candidates.py then measures. A checkpoint is written every --checkpoint-every
steps, so a snapshot lands up to that many steps past its mark; its real CPU time is recorded.

    python benchmarks/gan_snapshots.py scratch/capacity/control scratch/capacity/wide \\
        --from-step 95518 --marks 10,15,20,30,45 --out scratch/capacity/snapshots &
    python benchmarks/gan_candidates.py scratch/capacity/snapshots/*_15min --from-step 95518
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch


def cpu_seconds_at_step(run: Path, step: int) -> float | None:
    """The CPU seconds a run had used at ``step``: from the (re)start at that step in its commands.jsonl."""
    history = run / "commands.jsonl"
    if step == 0:
        return 0.0
    if not history.exists():
        return None
    for line in history.read_text().splitlines():
        entry = json.loads(line) if line.strip() else {}
        if entry.get("from_step") == step:
            return entry["cpu_seconds_before"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="train-gan run folders to watch")
    parser.add_argument("--from-step", type=int, default=0, help="count CPU time from this step (default: 0)")
    parser.add_argument("--marks", default="10,20,30,45", help="CPU-minutes at which to snapshot (default: %(default)s)")
    parser.add_argument("--out", default="scratch/snapshots", help="folder of the snapshots (default: %(default)s)")
    parser.add_argument("--poll", type=float, default=20.0, help="seconds between looks (default: %(default)s)")
    args = parser.parse_args(argv)
    marks = sorted(float(m) for m in args.marks.split(","))
    out, seen = Path(args.out), {}
    while True:
        for run in map(Path, args.runs):
            checkpoint = run / "checkpoint.pt"
            if not checkpoint.exists() or seen.get(run) == checkpoint.stat().st_mtime:
                continue
            seen[run] = checkpoint.stat().st_mtime
            start = cpu_seconds_at_step(run, args.from_step)
            if start is None:
                continue  # not (re)started at --from-step yet
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            minutes = (state["cpu_seconds"] - start) / 60
            for mark in marks:
                dest = out / f"{run.name}_{mark:g}min"
                if minutes >= mark and not dest.exists():
                    tmp = dest.with_name(dest.name + ".tmp")
                    tmp.mkdir(parents=True, exist_ok=True)
                    torch.save(state, tmp / "checkpoint.pt")  # the state read, not a newer file
                    shutil.copy(run / "commands.jsonl", tmp / "commands.jsonl")
                    tmp.rename(dest)
                    print(f"{time.strftime('%H:%M:%S')} {run.name}: step {state['step']}, {minutes:.1f} CPU-min "
                          f"-> {dest}", flush=True)
        if all((out / f"{Path(r).name}_{marks[-1]:g}min").exists() for r in args.runs):
            return 0
        time.sleep(args.poll)


if __name__ == "__main__":
    sys.exit(main())
