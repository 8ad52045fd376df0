"""``latentdirs train-gan``: train the small 64x64 GAN on procedural 3D-Shapes scenes.

Its options are the fields of :class:`latentdirs.gan.train.GANTrainConfig`, whose defaults ``train_gan()`` uses too.
"""
from __future__ import annotations

import argparse
import sys

from ..gan.train import GANTrainConfig
from .options import Formatter, add_config_options, config_from_args

EXAMPLES = """examples:
  nice -n 5 latentdirs train-gan --out scratch/gan_run --steps 12000 --batch-size 32 --base-channels 16 --max-minutes 85
  latentdirs train-gan --out scratch/wide --architecture dcgan-w --widths 32=64,64=32 \\
      --warm-start training/shapes3d-dcgan-w/checkpoint.pt --amp --channels-last
  latentdirs train-gan --out scratch/r1_aug --architecture dcgan-w --r1-gamma 0.05 --augment translation,cutout \\
      --warm-start training/shapes3d-dcgan-w/checkpoint.pt
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train-gan", help="train the small 64x64 DCGAN on procedural 3D-Shapes scenes",
                       formatter_class=Formatter,
                       description="Train a DCGAN (hinge loss, spectral-norm critic, EMA generator) on procedural "
                                   "3D-Shapes scenes rendered in memory. Resumes from OUT/checkpoint.pt if present; "
                                   "the EMA generator is exported to OUT/final/ (generator.safetensors + "
                                   "config.json).\n\n" + EXAMPLES)
    p.add_argument("--out", required=True, help="run folder (checkpoint, samples/, metrics.jsonl, final/)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--warm-start", default=None, metavar="CHECKPOINT",
                   help="start from another run's checkpoint.pt when --out has none (step, CPU time and history "
                        "carry over): wider --widths are grown function-preservingly, a spectral-norm critic is "
                        "folded into plain weights for --r1-gamma > 0")
    add_config_options(p.add_argument_group("training (GANTrainConfig fields)"), GANTrainConfig, GANTrainConfig())
    p.set_defaults(func=run)
    return p


def resolved_config(args: argparse.Namespace) -> GANTrainConfig:
    return config_from_args(args, GANTrainConfig, GANTrainConfig())


def run(args: argparse.Namespace) -> int:
    from ..gan.train import train_gan
    command = " ".join(["latentdirs"] + sys.argv[1:]) if sys.argv else None
    final = train_gan(resolved_config(args), args.out, resume=not args.no_resume, progress=not args.no_progress,
                      command=command, warm_start=args.warm_start)
    print(f"exported generator to {final}")
    return 0
