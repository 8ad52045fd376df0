"""``latentdirs demo``: the whole method on the shipped GAN, on CPU, in minutes.

Discover directions, measure RCA against random and coordinate baselines (same K, steps
and seed), render charts, and write ``report.md`` into a new run folder.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import report
from .directions import DirectionSet
from .discovery import PRESETS, DiscoveryConfig, discover, resolve_config
from .evaluation.rca import rca
from .generators import load_generator
from .render import render_run
from .runs import new_run_dir, save_config


RCA_STEPS = 300
"""Reconstructor steps per RCA measurement in the demo."""


def run_demo(generator: str = "shapes3d", config: DiscoveryConfig | None = None, *, rca_steps: int = RCA_STEPS,
             runs_dir: str | Path = "runs", threads: int | None = None, progress: bool = True, **overrides) -> Path:
    """Run the demo and return the path of its ``report.md``.

    ``config`` defaults to ``PRESETS["demo"]``; ``overrides`` are DiscoveryConfig fields
    (``run_demo("planted", steps=800)``).
    """
    import torch
    if threads:
        torch.set_num_threads(threads)
    cfg = resolve_config(config or PRESETS["demo"], overrides)
    if "log_every" not in overrides and config is None:
        cfg = resolve_config(cfg, {"log_every": max(cfg.steps // 20, 1)})  # about 20 points whatever the steps
    num_directions, parametrization, seed = cfg.num_directions, cfg.parametrization, cfg.seed
    G = load_generator(generator)
    run_dir = new_run_dir(runs_dir, f"demo-{G.name}-k{num_directions}")
    settings = dict(generator=generator, num_directions=num_directions, steps=cfg.steps, rca_steps=rca_steps,
                    batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, parametrization=parametrization)
    save_config(run_dir, {"demo": settings, "generator": G.describe()})
    started = time.time()
    found = discover(G, cfg, out_dir=run_dir / "discovery", progress=progress)
    discover_seconds = time.time() - started

    d = G.latent_dim
    candidates = {"discovered (LD, " + parametrization + ")": found.directions,
                  "random orthonormal": DirectionSet.random(d, num_directions, seed=seed)}
    if num_directions <= d:
        candidates["coordinate axes"] = DirectionSet.identity(d, num_directions)
    rows = []
    for name, directions in candidates.items():
        t = time.time()
        acc = rca(G, directions, steps=rca_steps, seed=seed, batch_size=cfg.batch_size, lr=cfg.lr,
                  device=cfg.device, progress=progress)
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
