"""``latentdirs demo``: what works, on the shipped GAN, on CPU, in minutes.

In the generator's W space when it has one: LD with the ``demo-disentangle`` preset (the
``disentangle`` recipe at the demo's budget), SeFa and GANSpace beside it, K = 10; RCA of LD
against random and coordinate directions; on a generator with ground truth, MIG and DCI-D of the
three and every direction named by the factor it moves; charts on the image manifold, labelled
with the names; ``report.md`` in a new run folder (``--resume RUN_DIR`` finishes an interrupted one).
"""
from __future__ import annotations

import argparse
import dataclasses

from ..discovery import PARAMETRIZATIONS, PRESETS, DiscoveryConfig
from .options import (Formatter, add_config_options, add_generator_options, add_runtime_options,
                      generator_from_args, nonnegative_int, set_threads)

EXAMPLES = """examples:
  latentdirs demo
  latentdirs demo --steps 1500 --batch-size 64           # the disentangle preset's full budget
  latentdirs demo --space z                               # the same in Z, where nothing disentangles
  latentdirs demo --generator planted --steps 300
  latentdirs demo --steps 20 --rca-steps 10 --gt-train 200 --gt-steps 20 --gt-eval 200 --name-latents 4
                                                          # a smoke test: under a minute, not minutes
  latentdirs demo --resume runs/00003-demo-shapes3d-k10   # finish an interrupted demo
"""
OPTIONS = ("num_directions", "parametrization", "steps", "batch_size", "lr", "seed")


def add_parser(sub) -> None:
    from ..demo import GT_EVAL, GT_STEPS, GT_TRAIN, NAME_LATENTS, PRESET, RCA_STEPS
    p = sub.add_parser("demo", help="what works on the shipped GAN in minutes (LD vs SeFa / GANSpace, RCA, "
                       "MIG / DCI, named directions, charts, report)",
                       description=__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    add_generator_options(p)
    add_config_options(p, DiscoveryConfig, PRESETS[PRESET], names=OPTIONS, short={"num_directions": "-k"})
    m = p.add_argument_group("measures")
    m.add_argument("--rca-steps", type=nonnegative_int, default=RCA_STEPS,
                   help="reconstructor steps per RCA measurement (0 = no RCA)")
    m.add_argument("--gt-train", type=nonnegative_int, default=GT_TRAIN,
                   help="generated pairs of the ground-truth encoder (0 = no MIG / DCI)")
    m.add_argument("--gt-steps", type=nonnegative_int, default=GT_STEPS, help="training steps of the ground-truth encoder")
    m.add_argument("--gt-eval", type=nonnegative_int, default=GT_EVAL, help="real scenes scored for MIG / DCI")
    m.add_argument("--name-latents", type=nonnegative_int, default=NAME_LATENTS,
                   help="latents the factor classifier reads per direction and shift to name it (0 = no names)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue this demo's folder: finished parts are kept, LD resumes from its checkpoint")
    add_runtime_options(p)
    p.set_defaults(func=run)


def given_options(args: argparse.Namespace) -> dict:
    """The DiscoveryConfig fields the command line gave; run_demo lays them over the demo preset."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(DiscoveryConfig) if hasattr(args, f.name)}
    if given.get("parametrization", "ortho") not in PARAMETRIZATIONS:
        raise ValueError(f"the demo trains directions: --parametrization must be one of {', '.join(PARAMETRIZATIONS)}")
    return {**given, "device": args.device}


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    set_threads(args.threads)
    plain = not any(getattr(args, name, None) for name in ("checkpoint", "space", "layers", "classes", "truncation",
                                                            "generator_option"))
    # A plain kind lets the demo choose the space (W where there is one); any loader option is taken as given.
    generator = args.generator if plain else generator_from_args(args)
    report = run_demo(generator, rca_steps=args.rca_steps, gt_train=args.gt_train, gt_steps=args.gt_steps,
                      gt_eval=args.gt_eval, name_latents=args.name_latents, runs_dir=args.runs_dir,
                      out_dir=args.resume, **given_options(args))
    print(f"report: {report}")
    return 0
