"""``latentdirs demo``: the whole method on the shipped GAN, on CPU, in minutes.

Discover directions, measure RCA against random and coordinate baselines (same K, steps
and seed), render charts, and write ``report.md`` into a new run folder.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import report
from .directions import DirectionSet
from .discovery import discover
from .evaluation.rca import rca
from .generators import load_generator
from .render import render_run
from .runs import new_run_dir, save_config


def run_demo(generator: str = "shapes3d", num_directions: int = 16, steps: int = 1500, rca_steps: int = 600,
             batch_size: int = 64, lr: float = 1e-3, seed: int = 0, runs_dir: str | Path = "runs",
             parametrization: str = "unit", threads: int | None = None, progress: bool = True) -> Path:
    """Run the demo and return the path of its ``report.md``."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    G = load_generator(generator)
    run_dir = new_run_dir(runs_dir, f"demo-{G.name}-k{num_directions}")
    settings = dict(generator=generator, num_directions=num_directions, steps=steps, rca_steps=rca_steps,
                    batch_size=batch_size, lr=lr, seed=seed, parametrization=parametrization)
    save_config(run_dir, {"demo": settings, "generator": G.describe()})
    started = time.time()
    found = discover(G, num_directions, parametrization, "lenet", steps, batch_size, seed, lr,
                     out_dir=run_dir / "discovery", progress=progress, log_every=max(steps // 20, 1))
    discover_seconds = time.time() - started

    d = G.latent_dim
    candidates = {"discovered (LD, " + parametrization + ")": found.directions,
                  "random orthonormal": DirectionSet.random(d, num_directions, seed=seed)}
    if num_directions <= d:
        candidates["coordinate axes"] = DirectionSet.identity(d, num_directions)
    rows = []
    for name, directions in candidates.items():
        t = time.time()
        acc = rca(G, directions, steps=rca_steps, seed=seed, batch_size=batch_size, lr=lr, progress=progress)
        rows.append([name, acc, f"{time.time() - t:.0f} s"])
        print(f"RCA {acc:.3f}  {name}", flush=True)

    charts = render_run(G, found.directions, run_dir / "charts", snapshots=found.snapshots)
    total = time.time() - started
    overview = run_dir / "charts" / "overview.png"
    top = [p for p in charts if p.name.startswith("direction_")][:4]
    evolution = [p for p in charts if p.name.startswith("evolution_")][:1]
    body_charts = "\n\n".join(report.image(p, run_dir, p.stem) for p in top)
    path = report.write(run_dir / "report.md", f"latentdirs demo on {G.name}", [
        ("Settings", report.table(["option", "value"], [[k, v] for k, v in settings.items()])
         + f"\n\nDiscovery took {discover_seconds:.0f} s; the whole demo {total:.0f} s "
           f"({torch.get_num_threads()} CPU threads)."),
        ("RCA: discovered vs baselines", "Accuracy of a fresh reconstructor trained against each frozen set "
         f"for {rca_steps} steps, on held-out pairs (chance = {1 / num_directions:.3f}).\n\n"
         + report.table(["directions", "RCA", "time"], rows)),
        ("All directions", "One latent, shifts -8..8 (framed: the unshifted image); row label = index and "
         "image-change score.\n\n" + report.image(overview, run_dir, "overview")),
        ("Strongest directions", "Rows are latents, columns are shifts.\n\n" + body_charts),
        ("Evolution over training", "\n\n".join(report.image(p, run_dir, p.stem) for p in evolution)
         or "(no snapshots)"),
    ])
    return path


def add_demo_parser(sub) -> None:
    from .cli import _Formatter, positive_float, positive_int
    p = sub.add_parser("demo", help="the whole method on the shipped GAN in minutes (discover, RCA, charts, report)",
                       description=__doc__ + "\nexamples:\n  latentdirs demo\n"
                                             "  latentdirs demo --steps 4000 --num-directions 32\n"
                                             "  latentdirs demo --generator planted --steps 800",
                       formatter_class=_Formatter)
    p.add_argument("--generator", default="shapes3d", help="generator kind with packaged weights")
    p.add_argument("-k", "--num-directions", type=positive_int, default=16)
    p.add_argument("--parametrization", choices=("unit", "ortho", "cayley"), default="unit")
    p.add_argument("--steps", type=positive_int, default=1500, help="discovery steps")
    p.add_argument("--rca-steps", type=positive_int, default=600, help="reconstructor steps per RCA measurement")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all)")
    p.set_defaults(func=lambda a: print(f"report: {run_demo(a.generator, a.num_directions, a.steps, a.rca_steps, a.batch_size, a.lr, a.seed, a.runs_dir, a.parametrization, a.threads)}") or 0)
