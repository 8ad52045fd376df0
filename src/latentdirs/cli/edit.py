"""``latentdirs edit``: invert real images and write strips of them edited along one direction.

The inversion options are the fields of :class:`latentdirs.inversion.InversionConfig`, whose defaults
``invert()`` uses too; ``--per-layer`` alone is the command's own (auto unless given).
"""
from __future__ import annotations

import argparse
import re

from ..inversion import InversionConfig
from .options import Formatter, add_config_options, add_generator_options, add_threads_option, positive_int

DESCRIPTION = """Invert real images (encoder guess, then optimization on pixel loss) and write, per image,
a strip: input | inverted | the inverted latent moved along one direction. See docs/editing.md."""
EXAMPLES = """examples:
  latentdirs edit scene.png --directions runs/00003-discover-shapes3d-k32-unit --direction 3 --shift -4..4
  latentdirs edit a.png b.png --directions RUN_DIR --direction 0 --shift -6..6 --num-shifts 7 --out edits/
  latentdirs edit a.png --directions RUN_DIR --direction 1 --train-encoder 1500 --encoder scratch/my_encoder
  latentdirs edit a.png --directions W_RUN_DIR --direction 4 --no-per-layer   # one w, not one per layer
  latentdirs edit photo.jpg --directions RUN_DIR --direction 2 --shift -4,-2,0,2,4 --resize --encoder scratch/edit/encoder-shapes3d
writes, per image, NAME_d3.png (input | inverted | edits), NAME_inverted.png and NAME_latent.safetensors
"""

# every InversionConfig field but per_layer, whose command-line default is auto (None), not invert()'s False
INVERSION_OPTIONS = ("steps", "lr", "prior_weight", "num_starts", "batch_size", "seed", "scales", "restarts")

# '-4..4' starts with '-' but is a value, not an option.
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(\.\.|,)[-\d.,]*$")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("edit", help="edit real images along a discovered direction (inversion + shift)",
                              description=DESCRIPTION + "\n\n" + EXAMPLES, formatter_class=Formatter)
    p._negative_number_matcher = _NEGATIVE_VALUE
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files of the generator's size")
    p.add_argument("--directions", required=True, metavar="RUN_DIR", help="run folder or direction-set folder")
    p.add_argument("--direction", type=int, required=True, help="index of the direction to move along")
    p.add_argument("--shift", default="-4..4", help="LOW..HIGH (with --num-shifts) or a list like -4,-2,0,2,4")
    p.add_argument("--num-shifts", type=positive_int, default=9, help="columns for a LOW..HIGH range")
    p.add_argument("--encoder", default=None, metavar="DIR",
                   help="encoder folder (Encoder.save_pretrained); without one, the best of --num-starts prior "
                        "samples starts the optimization")
    p.add_argument("--train-encoder", type=positive_int, default=None, metavar="STEPS",
                   help="first train an encoder for this many steps on generated pairs (saved to --encoder DIR if "
                        "given, and reused from there next time)")
    inversion = p.add_argument_group("inversion (InversionConfig fields)")
    add_config_options(inversion, InversionConfig, InversionConfig(), names=INVERSION_OPTIONS)
    inversion.add_argument("--per-layer", action=argparse.BooleanOptionalAction, default=None,
                           help="invert to one style per layer (W+, Image2StyleGAN): keeps more factors "
                                "(docs/editing.md). Default: on for style-based generators with directions found "
                                "in w or w+, off elsewhere")
    p.add_argument("--resize", action="store_true", help="centre-crop and resize images of another size")
    p.add_argument("--scale", type=positive_int, default=2, help="pixel upscaling of the strip")
    p.add_argument("--out", default="edits", help="output folder")
    add_threads_option(p)
    add_generator_options(p, default=None)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    from .options import config_from_args, generator_for_set, set_threads
    from ..directions import DirectionSet
    from ..editing import edit_image, parse_shift_range, strip_image
    from ..inversion import Encoder, load_image, resolve_per_layer
    from ..render import save_image, to_pil
    from ..runs import atomic_path

    set_threads(args.threads)
    shifts = parse_shift_range(args.shift, args.num_shifts)
    directions = DirectionSet.load(args.directions)
    generator = generator_for_set(args, directions)
    images = torch.cat([load_image(path, generator, resize=args.resize) for path in args.images])
    per_layer = resolve_per_layer(generator, args.per_layer)
    config = config_from_args(args, InversionConfig, InversionConfig(), per_layer=per_layer)
    encoder = None
    if args.train_encoder and not (args.encoder and (Path(args.encoder) / "encoder.json").is_file()):
        from ..inversion import train_encoder
        encoder = train_encoder(generator, steps=args.train_encoder, batch_size=32, seed=config.seed)
        if args.encoder:
            encoder.save_pretrained(args.encoder)
    elif args.encoder:
        encoder = Encoder.from_pretrained(args.encoder)
    result = edit_image(generator, images, directions, args.direction, shifts, encoder=encoder, config=config)
    out = Path(args.out)
    names = _unique_stems(args.images)
    for row, stem in enumerate(names):
        save_image(strip_image(result, row, scale=args.scale), out / f"{stem}_d{args.direction}.png")
        save_image(to_pil(result.inversion.images[row:row + 1])[0], out / f"{stem}_inverted.png")
        with atomic_path(out / f"{stem}_latent.safetensors") as tmp:
            save_file({"latent": result.inversion.latents[row:row + 1].contiguous()}, str(tmp),
                      metadata={"generator": str(generator.describe()), "source": str(args.images[row])})
        print(f"{stem}: pixel MSE {result.inversion.pixel_error[row].item():.4f} -> {out / f'{stem}_d{args.direction}.png'}")
    print(f"{result.inversion.seconds_per_image:.2f} s per image to invert ({config.steps} steps, "
          f"{'one latent per layer' if per_layer else 'one latent'}, "
          f"{'encoder' if encoder else f'best of {config.num_starts} prior samples'} to start)")
    return 0


def _unique_stems(paths: list[str]) -> list[str]:
    from pathlib import Path
    stems, seen = [], {}
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems
