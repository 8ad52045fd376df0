"""``latentdirs render``: charts G(z + s h), overview sheet and evolution figures."""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import (Formatter, add_runtime_options, add_set_options, generator_for_set, index_list, positive_int,
                      set_threads, shift_list)


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="charts G(z + s h), overview sheet and evolution figures",
                       description="Draw charts for a direction set: rows are latents, columns are shifts.\n\n"
                                   "examples:\n  latentdirs render runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs render RUN --directions 0,4,7 --shifts=-10:10:11 --num-latents 8",
                       formatter_class=Formatter)
    add_set_options(p)
    p.add_argument("--directions", type=index_list, default=None, help="indices to chart (default: top 8 by score)")
    p.add_argument("--shifts", type=shift_list, default="-8:8:9", help="start:stop:count or a comma list")
    p.add_argument("--num-latents", type=positive_int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (same seed = same rows)")
    p.add_argument("--out", default=None, help="output folder (default: SET/charts)")
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..directions import DirectionSet
    from ..discovery import load_snapshots
    from ..render import render_run
    set_threads(args.threads)
    if args.directions == []:  # "--directions ," would draw the overview alone
        raise ValueError("--directions names no index: give some, e.g. 0,3,5, or leave it out for the top 8")
    ds = DirectionSet.load(args.set)
    gen = generator_for_set(args, ds)
    ds.check_fits(gen, args.set)
    try:
        snapshots = load_snapshots(args.set, ds.latent_dim)
    except FileNotFoundError:  # closed-form and baseline sets have no training history
        snapshots = None
    out = Path(args.out) if args.out else Path(args.set) / "charts"
    paths = render_run(gen, ds, out, indices=args.directions, num_latents=args.num_latents, shifts=args.shifts,
                       seed=args.seed, snapshots=snapshots)
    print(f"wrote {len(paths)} images to {out}")
    return 0
