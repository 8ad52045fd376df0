"""Cheaper pairs: M shifted partners per G(z) (``shifts_per_latent``) at an equal compute budget.

With M > 1 a step makes batch/M base images instead of batch, so G(z) costs M times less;
the price is fewer distinct latents per step. For each M the number of steps is set so that
every run gets the same CPU budget (process CPU seconds, not wall time: other jobs share
this machine), calibrated from a few timed steps; then RCA scores the directions found
(``latentdirs.rca``: a fresh reconstructor trained against them, accuracy on held-out pairs).

    python benchmarks/shared_pairs.py --budget 40 --seeds 0,1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import latentdirs
from latentdirs.discovery import DiscoveryConfig, _Trainable, sample_pairs, step_rng, train_step
from latentdirs.directions import DirectionMatrix
from latentdirs.reconstructors import make_reconstructor

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds_per_step(gen, cfg: DiscoveryConfig, steps: int = 6) -> float:
    trainable = _Trainable(DirectionMatrix(gen.latent_dim, cfg.num_directions, cfg.parametrization),
                           make_reconstructor(cfg.reconstructor, gen.image_shape, cfg.num_directions), gen, False)
    opt = torch.optim.Adam(trainable.parameters(), lr=cfg.lr)
    times = []
    for step in range(steps + 1):
        z, index, shift = sample_pairs(gen, cfg, cfg.batch_size, step_rng(0, 0, step), torch.device("cpu"))
        t = time.process_time()
        train_step(trainable, gen, opt, cfg, z, index, shift)
        if step:
            times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", default="planted")
    p.add_argument("--shifts", default="1,2,4", help="values of M")
    p.add_argument("--budget", type=float, default=40.0, help="CPU seconds of discovery per run")
    p.add_argument("--seeds", default="0")
    p.add_argument("--num-directions", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rca-steps", type=int, default=300)
    p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/shared_pairs_GENERATOR.json)")
    args = p.parse_args()
    torch.set_num_threads(1)
    gen = latentdirs.load_generator(args.generator)
    shifts = [int(m) for m in args.shifts.split(",")]
    # channels_last pinned: the calibration below times plain NCHW steps
    base = dict(num_directions=args.num_directions, batch_size=args.batch_size, lr=args.lr, channels_last=False)
    cost = {m: cpu_seconds_per_step(gen, DiscoveryConfig(shifts_per_latent=m, **base)) for m in shifts}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for m in shifts:
            steps = max(1, int(args.budget / cost[m]))
            t = time.process_time()
            found = latentdirs.discover(gen, steps=steps, seed=seed, shifts_per_latent=m, progress=False,
                                        importance_latents=0, log_every=max(steps // 4, 1), **base)
            spent = time.process_time() - t
            acc = latentdirs.rca(gen, found.directions, steps=args.rca_steps, batch_size=args.batch_size,
                                 lr=args.lr, seed=100 + seed)
            row = {"M": m, "seed": seed, "steps": steps, "cpu_sec": spent, "cpu_sec_per_step": cost[m],
                   "train_accuracy": found.accuracy, "rca": acc}
            if gen.factor_directions() is not None:
                from latentdirs.directions import best_cosines
                row["mean_best_cosine_to_factors"] = best_cosines(found.directions.matrix,
                                                                  gen.factor_directions()).mean().item()
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{args.generator}, K={args.num_directions}, batch {args.batch_size}, lr {args.lr}, "
          f"budget {args.budget:.0f} CPU s per run, RCA after {args.rca_steps} steps\n")
    print("| M | CPU s/step | steps in budget | RCA (mean over seeds) | train acc. | best cos. to factors |")
    print("|---|---|---|---|---|---|")
    for m in shifts:
        mine = [r for r in rows if r["M"] == m]
        mean = lambda key: statistics.mean(r.get(key, float("nan")) for r in mine)  # noqa: E731
        each = ", ".join(f"{r['rca']:.3f}" for r in mine)
        print(f"| {m} | {cost[m]:.3f} | {mine[0]['steps']} | {mean('rca'):.3f} "
              f"({each}) | {mean('train_accuracy'):.3f} "
              f"| {mean('mean_best_cosine_to_factors'):.3f} |")
    out = Path(args.out) if args.out else RESULTS / f"shared_pairs_{args.generator}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
