"""``latentdirs export``: a direction set as .npy (K, d), or a copy as safetensors + JSON."""
from __future__ import annotations

import argparse

from .options import Formatter, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a direction set as .npy (K, d) or copy it as safetensors + JSON",
                       description="examples:\n  latentdirs export runs/00003-*/ directions.npy\n"
                                   "  latentdirs export runs/00003-*/ my_set/ --top 10",
                       formatter_class=Formatter)
    p.add_argument("set", help="run folder or direction-set folder")
    p.add_argument("target", help="a .npy file, or a folder for safetensors + JSON")
    p.add_argument("--top", type=positive_int, default=None, help="keep only the top N by score")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..directions import DirectionSet
    ds = DirectionSet.load(args.set)
    if args.top:
        ds = ds.top(args.top)
    if args.target.endswith(".npy"):
        ds.export_npy(args.target)
    else:
        ds.save(args.target)
    print(f"wrote {ds.num_directions} directions to {args.target}")
    return 0
