"""Is a sweep faster as 1 process x 2 threads or as 2 processes x 1 thread each?

Runs the same small grid twice in fresh folders and reports wall times (including the
worker processes' start-up and imports) and their ratio. Run it on a quiet machine:

    python benchmarks/sweep_parallel.py                          # shapes3d GAN, 4 cells
    python benchmarks/sweep_parallel.py --generator planted --steps 300
    python benchmarks/sweep_parallel.py --untrained-dcgan        # same speed, no weights needed

Writes the numbers to benchmarks/results/sweep_parallel_<generator>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def make_generator(args):
    import latentdirs
    if not args.untrained_dcgan:
        return latentdirs.load_generator(args.generator)
    import torch
    from latentdirs.gan.networks import DCGANGenerator, NetworkConfig
    from latentdirs.generators.shapes3d import Shapes3DGenerator
    torch.manual_seed(0)  # weights do not change the speed; the shape of the network does
    return Shapes3DGenerator(DCGANGenerator(NetworkConfig(latent_dim=64, base_channels=args.base_channels)))


def timed_sweep(gen, args, workers: int, threads: int) -> float:
    from latentdirs.sweep import sweep
    base = {"steps": args.steps, "batch_size": args.batch_size, "log_every": 10, "checkpoint_every": args.steps}
    with tempfile.TemporaryDirectory() as out:
        tick = time.perf_counter()
        sweep(gen, {"num_directions": [5, 10], "shift_weight": [0.25, 0.5]}, base, out, rca_steps=args.rca_steps,
              eval_latents=8, workers=workers, threads=threads, progress=False)
        return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="shapes3d")
    parser.add_argument("--untrained-dcgan", action="store_true", help="a randomly initialised shapes3d-sized DCGAN")
    parser.add_argument("--base-channels", type=int, default=24)
    parser.add_argument("--steps", type=int, default=60, help="discovery steps per cell (4 cells)")
    parser.add_argument("--rca-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--two-workers-first", action="store_true", help="swap the order (checks for order effects)")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(1)
    gen = make_generator(args)
    import latentdirs
    latentdirs.discover(gen, num_directions=2, steps=1, batch_size=8, progress=False)  # warm up imports
    if args.two_workers_first:
        two = timed_sweep(gen, args, workers=2, threads=1)
    one = timed_sweep(gen, args, workers=1, threads=2)
    torch.set_num_threads(1)
    if not args.two_workers_first:
        two = timed_sweep(gen, args, workers=2, threads=1)
    name = "dcgan-untrained" if args.untrained_dcgan else args.generator
    result = {"generator": name, "cells": 4, "steps_per_cell": args.steps, "rca_steps": args.rca_steps,
              "batch_size": args.batch_size, "one_worker_two_threads_s": round(one, 1),
              "two_workers_one_thread_s": round(two, 1), "speedup_of_two_workers": round(one / two, 2),
              "order": "two workers first" if args.two_workers_first else "one worker first",
              "load_average_1min_at_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(__file__).parent / "results" / f"sweep_parallel_{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
