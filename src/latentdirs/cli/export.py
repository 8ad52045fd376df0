"""``latentdirs export``: a direction set as .npy (K, d), or a copy as safetensors + JSON."""
from __future__ import annotations

import argparse
from pathlib import Path

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
    target = Path(args.target)
    if not args.target.strip():  # Path("") is the current folder: the set would land wherever the shell is
        raise ValueError("the export target is empty: give a .npy file or a folder")
    npy = target.suffix.lower() == ".npy"
    if (not npy and target.suffix[1:].isalpha() and not args.target.endswith(("/", "\\"))
            and not target.is_dir()):  # out.npz or out.safetensors would silently become a folder of that name
        raise ValueError(f"export writes a .npy file or a folder (safetensors + JSON), not {target.suffix!r} "
                         f"files: name a .npy file, or end the folder name with / ({args.target}/)")
    source, folder = Path(args.set).resolve(), target.resolve()
    if not npy and any(a in (b, b / "directions", b / "discovery" / "directions")
                       for a, b in ((folder, source), (source, folder))):
        # the copy would overwrite the set it was read from (losing what --top leaves out), or a run folder's
        # top-level copy would shadow its own set for every later command
        raise ValueError(f"{args.target} is the folder of the set it exports or the run folder holding it "
                         f"({args.set}): export to another folder")
    ds = DirectionSet.load(args.set)
    if args.top:
        ds = ds.top(args.top)
    if npy:
        ds.export_npy(args.target)
    else:
        ds.save(args.target)
    print(f"wrote {ds.num_directions} directions to {args.target}")
    return 0
