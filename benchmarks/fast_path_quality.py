"""Do the fast paths change what is learned? Same seed, same steps, RCA of the result.

A fast path may only be a default where it is faster *and* the directions are as good:
this trains the same discovery run with each option (plain fp32, channels_last, bf16
autocast, torch.compile) and scores every direction set with the same fp32 RCA protocol.

    python benchmarks/fast_path_quality.py --generator planted --steps 400 --seeds 0,1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import latentdirs
from latentdirs.directions import best_cosines

RESULTS = Path(__file__).resolve().parent / "results"
# Explicit channels_last everywhere: its default (None) turns it on for CPU.
OPTIONS = {"plain": {"channels_last": False}, "channels_last": {"channels_last": True},
           "amp": {"amp": True, "channels_last": False}, "compile": {"compile": True, "channels_last": False}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", default="planted")
    p.add_argument("--options", default=",".join(OPTIONS))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--num-directions", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rca-steps", type=int, default=300)
    p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/fast_path_quality_GENERATOR.json)")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for label in args.options.split(","):
            gen = latentdirs.load_generator(args.generator)  # fresh: channels_last converts G in place
            t = time.process_time()
            found = latentdirs.discover(gen, num_directions=args.num_directions, steps=args.steps,
                                        batch_size=args.batch_size, lr=args.lr, seed=seed, progress=False,
                                        importance_latents=0, log_every=max(args.steps // 4, 1), **OPTIONS[label])
            spent = time.process_time() - t
            gen = latentdirs.load_generator(args.generator)
            acc = latentdirs.rca(gen, found.directions, steps=args.rca_steps, batch_size=args.batch_size,
                                 lr=args.lr, seed=100 + seed)
            row = {"option": label, "seed": seed, "cpu_sec": spent, "train_accuracy": found.accuracy, "rca": acc}
            if gen.factor_directions() is not None:
                row["mean_best_cosine_to_factors"] = best_cosines(found.directions.matrix,
                                                                  gen.factor_directions()).mean().item()
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{args.generator}, K={args.num_directions}, {args.steps} steps, batch {args.batch_size}, "
          f"RCA after {args.rca_steps} steps (fp32)\n")
    print("| option | RCA (mean; per seed) | train acc. | best cos. to factors | CPU s (incl. compile) |")
    print("|---|---|---|---|---|")
    for label in args.options.split(","):
        mine = [r for r in rows if r["option"] == label]
        mean = lambda key: statistics.mean(r.get(key, float("nan")) for r in mine)  # noqa: E731
        each = ", ".join(f"{r['rca']:.3f}" for r in mine)
        print(f"| {label} | {mean('rca'):.3f} ({each}) | {mean('train_accuracy'):.3f} "
              f"| {mean('mean_best_cosine_to_factors'):.3f} | {mean('cpu_sec'):.0f} |")
    out = Path(args.out) if args.out else RESULTS / f"fast_path_quality_{args.generator}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
