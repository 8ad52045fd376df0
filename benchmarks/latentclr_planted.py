"""LatentCLR on the planted generator: how close its K = 5 directions come to the true factors.

"factor cos" is the mean over the 5 true factor directions of the best |cos| with a found one
(``latentdirs.directions.best_cosines``); each run also keeps the per-factor values. Baselines:
random orthonormal sets (Haar, ``DirectionSet.random``) over many seeds, and the coordinate axes
LatentCLR starts from. The source of docs/compare.md's "Planted generator, k = 5" LatentCLR table.

    python benchmarks/latentclr_planted.py            # ~5 min on one core of a 2-core AMD EPYC
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
# (label, steps, N latents per step, lr, seeds): the test's short setting, a long one, a wide batch
SETTINGS = [
    ("short", 40, 16, 3e-2, list(range(10))),
    ("long", 1000, 16, 1e-2, [0, 1]),
    ("wide", 300, 64, 1e-3, [0]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-sets", type=int, default=1000, help="random orthonormal sets for the baseline")
    parser.add_argument("--out", default=str(RESULTS / "latentclr_planted.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    import latentdirs
    from latentdirs.contrastive import latentclr
    from latentdirs.directions import DirectionSet, best_cosines
    from latentdirs.runs import atomic_write_text, cpu_model

    generator = latentdirs.load_generator("planted")
    truth = generator.factor_directions()
    names = list(generator.describe()["factor_names"])
    runs = []
    for label, steps, batch, lr, seeds in SETTINGS:
        for seed in seeds:
            tick = time.perf_counter()
            found = latentclr(generator, 5, steps=steps, batch_size=batch, lr=lr, seed=seed, device="cpu")
            per_factor = best_cosines(found.matrix, truth).tolist()
            runs.append({"setting": label, "steps": steps, "batch_size": batch, "lr": lr, "seed": seed,
                         "factor_cosine": statistics.fmean(per_factor), "per_factor": dict(zip(names, per_factor)),
                         "seconds": time.perf_counter() - tick})
            print(f"{label} seed {seed}: factor cos {runs[-1]['factor_cosine']:.3f} ({runs[-1]['seconds']:.0f} s)")
    random_cos = [best_cosines(DirectionSet.random(generator.latent_dim, 5, seed=s).matrix, truth).mean().item()
                  for s in range(args.random_sets)]
    axes = best_cosines(DirectionSet.identity(generator.latent_dim, 5).matrix, truth).mean().item()
    report = {"cpu": cpu_model(), "threads": 1, "load_average": os.getloadavg(), "torch": torch.__version__,
              "generator": generator.describe(), "runs": runs,
              "random": {"sets": args.random_sets, "mean": statistics.fmean(random_cos),
                         "std": statistics.stdev(random_cos), "max": max(random_cos)},
              "coordinate_axes": axes}
    atomic_write_text(args.out, json.dumps(report, indent=1))
    print(f"random sets {report['random']['mean']:.3f} ± {report['random']['std']:.3f} (max {report['random']['max']:.3f}),"
          f" axes {axes:.3f}; wrote {args.out}")


if __name__ == "__main__":
    main()
