"""``latentdirs sweep``: ablations, a grid of discovery runs, measured and reported.

Discovery options come from ``--grid`` and ``--set`` (DiscoveryConfig fields, over the
``sweep`` preset); the measures are the options below (SweepConfig fields).
"""
from __future__ import annotations

import argparse
import dataclasses

from ..discovery import PRESETS
from ..sweep import SweepConfig
from .options import (Formatter, add_config_options, add_generator_options, add_runtime_options, config_from_args,
                      generator_from_args)

EXAMPLES = """examples:
  latentdirs sweep --generator planted --grid k=5,10,20,40 --set steps=2000 --out runs/sweep-planted
  latentdirs sweep --generator shapes3d --grid num_directions=5,10,20,40 --grid shift_weight=0,0.125,0.25,0.5,2 \\
                   --design one-at-a-time --set steps=1500 --workers 2 --out runs/sweep-shapes3d
  latentdirs sweep --grid parametrization=unit,ortho,random --grid seed=0,1,2 --out runs/sweep-param
  latentdirs sweep --out runs/sweep-planted --report-only      # redraw report.md from the cells on disk
Re-running a command skips complete cells and resumes an interrupted one from its checkpoint.
"""
MEASURES = tuple(f.name for f in dataclasses.fields(SweepConfig) if f.name not in ("threads", "progress"))


def add_parser(sub) -> None:
    from .. import sweep
    p = sub.add_parser("sweep", help="ablations: a grid of discovery runs, measured and reported",
                       description=sweep.__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    add_generator_options(p)
    g = p.add_argument_group("grid")
    g.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="values of one discovery option (repeatable); keys are DiscoveryConfig fields or the "
                        "aliases k, lambda")
    base = {k: getattr(PRESETS["sweep"], k) for k in ("num_directions", "steps", "lr", "batch_size")}
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"a fixed discovery option for every cell (repeatable); unset ones are the sweep preset: {base}")
    g.add_argument("--design", choices=("product", "one-at-a-time"), default="product",
                   help="every combination, or each --grid key varied alone around the --set values")
    add_config_options(p.add_argument_group("measures (SweepConfig fields)"), SweepConfig, SweepConfig(), names=MEASURES)
    r = p.add_argument_group("running")
    r.add_argument("--out", default="runs/sweep", help="the sweep folder (re-use it to resume)")
    r.add_argument("--report-only", action="store_true", help="only rewrite report.md from the cells on disk")
    add_runtime_options(r)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..sweep import parse_grid, parse_settings, sweep, write_report
    out = Path(args.out)
    if args.report_only:
        print(f"report: {write_report(out)}")
        return 0
    grid = parse_grid(args.grid)
    base = parse_settings(args.set, "--set", "; use --grid for several")
    if args.device != "auto":
        base["device"] = args.device
    config = config_from_args(args, SweepConfig, SweepConfig(), threads=args.threads)
    result = sweep(generator_from_args(args), grid, base, out, design=args.design, config=config)
    print(f"{len(result.cells)} cells; report: {result.report}")
    return 0
