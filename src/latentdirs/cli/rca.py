"""``latentdirs rca``: reconstructor classification accuracy of direction sets vs baselines.

Its options are the fields of :class:`latentdirs.evaluation.rca.RCAConfig`, whose defaults ``rca()`` uses too.
"""
from __future__ import annotations

import argparse
import json

from ..evaluation.rca import RCAConfig
from .options import (Formatter, add_config_options, add_runtime_options, add_set_options, config_from_args,
                      generator_for_set, set_threads)


def add_parser(sub) -> None:
    p = sub.add_parser("rca", help="reconstructor classification accuracy of direction sets vs baselines",
                       description="Train a fresh reconstructor against each frozen direction set and report its "
                                   "accuracy on held-out pairs, next to random and coordinate baselines.\n\n"
                                   "examples:\n  latentdirs rca runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs rca runs/00003-*/ runs/00004-*/ --steps 2000 --no-baselines",
                       formatter_class=Formatter)
    add_set_options(p, nargs="+", help="run folders or direction-set folders")
    add_config_options(p.add_argument_group("training and scoring (RCAConfig fields)"), RCAConfig, RCAConfig())
    p.add_argument("--no-baselines", action="store_true", help="skip the random and coordinate baselines")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..directions import DirectionSet
    from ..evaluation.rca import rca
    set_threads(args.threads)
    config = config_from_args(args, RCAConfig, RCAConfig())
    sets = {s: DirectionSet.load(s) for s in args.sets}
    first = next(iter(sets.values()))
    gen = generator_for_set(args, first)
    d, k = first.latent_dim, first.num_directions
    if not args.no_baselines:
        sets["random"] = DirectionSet.random(d, k, seed=config.seed)
        if k <= d:
            sets["coordinate"] = DirectionSet.identity(d, k)
    results = {}
    for name, ds in sets.items():
        results[name] = rca(gen, ds, config, device=args.device, progress=True)
        print(f"{results[name]:.3f}  {name}", flush=True)
    if args.json:
        from ..runs import atomic_write_text
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0
