"""``latentdirs compare``: LD, SeFa, GANSpace and the baselines on one generator, side by side.

Every option below is a field of CompareConfig; LD's other options come from the discover preset
``--ld-preset`` (default: disentangle) and ``--ld-set``.
"""
from __future__ import annotations

import argparse
import dataclasses

from ..discovery import STARTS
from ..evaluation.compare import CompareConfig
from .options import (Formatter, add_config_options, add_generator_options, add_runtime_options, config_from_args,
                      generator_from_args, set_threads)

EXAMPLES = """examples:
  latentdirs compare                                            # shipped shapes3d GAN, k=10, 3 seeds
  latentdirs compare --generator planted -k 5 --seeds 0 --ld-steps 800 --gt-steps 500
  latentdirs compare --methods sefa,ganspace,random --rca-steps 0     # closed-form only, ground truth only
  latentdirs compare --methods ld-unit --ld-preset short --ld-set overlap_weight=10 --ld-set shifts_per_latent=2
  latentdirs compare --methods ld-ortho --ld-preset short                # LD with the paper's loss
  latentdirs compare --out runs/00012-compare-shapes3d-k10            # resume an interrupted comparison
"""
OPTIONS = tuple(f.name for f in dataclasses.fields(CompareConfig) if f.name not in ("device", "ld_options"))


def add_parser(sub) -> None:
    from ..evaluation import compare
    p = sub.add_parser("compare", help="LD vs SeFa vs GANSpace vs baselines: RCA, MIG, DCI, modularity, time",
                       description=compare.__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    add_generator_options(p)
    group = p.add_argument_group("comparison (CompareConfig fields)")
    add_config_options(group, CompareConfig, CompareConfig(), names=OPTIONS, short={"num_directions": "-k"})
    # `--ld-init` was --ld-start's name; docs/compare.md's lever commands ran with it.
    group.add_argument("--ld-init", dest="ld_start", choices=STARTS, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    group.add_argument("--ld-set", action="append", default=[], metavar="KEY=VALUE",
                       help="a DiscoveryConfig field for every LD method (repeatable), e.g. --ld-set overlap_weight=10 "
                            "--ld-set shifts_per_latent=2")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="comparison folder; unset = a new numbered folder in --runs-dir")
    o.add_argument("--runs-dir", default="runs", help="where numbered run folders go")
    add_runtime_options(o)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.compare import compare
    set_threads(args.threads)
    from ..sweep import parse_settings
    config = config_from_args(args, CompareConfig, CompareConfig(), device=args.device,
                              ld_options=parse_settings(args.ld_set, "--ld-set"))
    settings = dataclasses.asdict(config)
    k, seeds, methods = settings.pop("num_directions"), settings.pop("seeds"), settings.pop("methods")
    comparison = compare(generator_from_args(args), k=k, seeds=seeds, methods=methods, out_dir=args.out,
                         runs_dir=args.runs_dir, **settings)
    print(f"report: {comparison.report}")
    return 0
