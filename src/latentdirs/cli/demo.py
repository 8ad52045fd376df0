"""``latentdirs demo``: the whole method on the shipped GAN, on CPU, in minutes.

Discover directions (the ``demo`` preset of DiscoveryConfig), measure RCA against random
and coordinate baselines (same K, steps and seed), render charts, and write ``report.md``
into a new run folder.
"""
from __future__ import annotations

import argparse
import dataclasses

from ..discovery import PARAMETRIZATIONS, PRESETS, DiscoveryConfig
from .options import Formatter, add_config_options, add_runtime_options, positive_int, set_threads

EXAMPLES = """examples:
  latentdirs demo
  latentdirs demo --steps 4000 --num-directions 32
  latentdirs demo --generator planted --steps 800
  latentdirs demo --steps 20 --rca-steps 10            # a smoke test: seconds, not minutes
"""
OPTIONS = ("num_directions", "parametrization", "steps", "batch_size", "lr", "seed")


def add_parser(sub) -> None:
    from ..demo import RCA_STEPS
    p = sub.add_parser("demo", help="the whole method on the shipped GAN in minutes (discover, RCA, charts, report)",
                       description=__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    p.add_argument("--generator", default="shapes3d", help="generator kind with packaged weights")
    add_config_options(p, DiscoveryConfig, PRESETS["demo"], names=OPTIONS, short={"num_directions": "-k"})
    p.add_argument("--rca-steps", type=positive_int, default=RCA_STEPS, help="reconstructor steps per RCA measurement")
    p.add_argument("--runs-dir", default="runs")
    add_runtime_options(p)
    p.set_defaults(func=run)


def given_options(args: argparse.Namespace) -> dict:
    """The DiscoveryConfig fields the command line gave; run_demo lays them over the demo preset."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(DiscoveryConfig) if hasattr(args, f.name)}
    if given.get("parametrization", "unit") not in PARAMETRIZATIONS:
        raise ValueError(f"the demo trains directions: --parametrization must be one of {', '.join(PARAMETRIZATIONS)}")
    return {**given, "device": args.device}


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    set_threads(args.threads)
    report = run_demo(args.generator, rca_steps=args.rca_steps, runs_dir=args.runs_dir, **given_options(args))
    print(f"report: {report}")
    return 0
