"""`latentdirs saliency`: background-removal direction -> synthetic masks -> U-Net -> MAE.

Four steps, each a subcommand (the Python API is latentdirs.saliency):
  find-direction  rank a direction set by how well each direction whitens the background
  make-data       write image/mask PNG pairs made with the picked direction
  train           train the U-Net (on a pair folder, or streaming pairs from the generator)
  eval            MAE, max F-measure and IoU on real image/mask pairs, predictions and a figure
  select-classes  (class-conditional generators) the classes that fit unlabelled target images
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..saliency.direction import DEFAULT_SHIFTS
from ..saliency.masks import DEFAULT_AREA, DEFAULT_THRESHOLD
from ..saliency.train import UNetTrainConfig
from .options import (Formatter, add_config_options, add_runtime_options, add_set_options, config_from_args,
                      generator_for_set, nonnegative_float, positive_int, set_threads, shift_list)

EXAMPLES = """examples:
  latentdirs saliency find-direction runs/00003-discover-shapes3d-fade-k32-unit --out runs/sal/find
  latentdirs saliency make-data runs/00003-* --ranking runs/sal/find/ranking.json --num 2000 --out runs/sal/data
  latentdirs saliency train --data runs/sal/data --steps 600 --batch-size 32 --decay-every 250 --out runs/sal/unet
  latentdirs saliency train runs/00003-* --ranking runs/sal/find/ranking.json --steps 600 --batch-size 32 \\
      --decay-every 250 --out runs/sal/unet          # stream pairs from the generator, nothing on disk
  latentdirs saliency eval runs/sal/unet ECSSD/ --size 128 --out runs/sal/eval

  # BigGAN (class-conditional): choose classes from the unlabelled target images first
  latentdirs saliency make-data BIGGAN_DIRS --generator biggan --checkpoint biggan-deep-128/ \\
      --ranking runs/sal/find/ranking.json --select-classes-from ECSSD/images \\
      --classifier my_module:resnet18_classifier --num 20000 --out runs/sal/data
"""


def fraction(text: str) -> float:
    value = nonnegative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("saliency", help="saliency masks from the background-removal direction, U-Net, MAE",
                              description=__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    sub = p.add_subparsers(dest="saliency_command", metavar="STEP")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    f = sub.add_parser("find-direction", help="rank directions by background whitening; report the pick",
                       description="Score every direction of SET, both signs, at each shift: border whitening "
                                   "(how far the image border moves toward white, 1 = fully) minus object change "
                                   "(mean |change| of the pixels that stay non-white). Writes ranking.json, "
                                   "ranking.txt and ranking.png (G(z) | G(z + s h) | mask for the top directions).\n\n"
                                   + EXAMPLES, formatter_class=Formatter)
    add_set_options(f)
    f.add_argument("--shifts", type=shift_list, default=list(DEFAULT_SHIFTS), help="shift sizes to try (both signs)")
    f.add_argument("--num-latents", type=positive_int, default=16, help="latents averaged per score")
    f.add_argument("--border", type=fraction, default=0.125, help="border band width, as a fraction of the side")
    f.add_argument("--min-valid", type=fraction, default=0.5,
                   help="prefer candidates whose masks pass the area filter for at least this fraction of latents")
    f.add_argument("--top", type=positive_int, default=10, help="rows printed and directions charted")
    f.add_argument("--seed", type=int, default=0, help="seed of the latents")
    f.add_argument("--out", default=None, help="output folder (None: SET/saliency)")
    _mask_options(f, with_direction=False)
    _common(f)
    f.set_defaults(func=cmd_find_direction)

    m = sub.add_parser("make-data", help="write synthetic image/mask PNG pairs",
                       description="Sample G(z), threshold G(z + s h) into a mask, keep masks in the area range, "
                                   "write OUT/images/NNNNN.png + OUT/masks/NNNNN.png and OUT/dataset.json.\n\n"
                                   + EXAMPLES, formatter_class=Formatter)
    add_set_options(m)
    m.add_argument("--num", type=positive_int, default=2000, help="pairs to write")
    m.add_argument("--out", required=True, help="output folder")
    m.add_argument("--seed", type=int, default=0, help="seed of the latents")
    _mask_options(m)
    _class_options(m)
    _common(m)
    m.set_defaults(func=cmd_make_data)

    t = sub.add_parser("train", help="train the saliency U-Net (paper schedule by default)",
                       description="Train a U-Net on synthetic pairs: from --data (a make-data folder) or streamed "
                                   "from SET's generator and the picked direction. The defaults are the paper's "
                                   "schedule: scale them down on a CPU.\n\n" + EXAMPLES, formatter_class=Formatter)
    add_set_options(t, nargs="?", default=None, help="run folder or direction-set folder (when streaming)")
    t.add_argument("--data", default=None, help="folder of image/mask pairs (instead of streaming)")
    t.add_argument("--out", required=True, help="run folder: config.json, metrics.jsonl, unet/")
    add_config_options(t.add_argument_group("schedule (UNetTrainConfig fields)"), UNetTrainConfig, UNetTrainConfig())
    _mask_options(t)
    _class_options(t)
    _common(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("select-classes", help="classes of a class-conditional generator that fit target images",
                       description="Classify unlabelled target images, count each class whenever it is in an image's "
                                   "top-k, keep the most frequent fraction of the classes seen (the paper: top-5, "
                                   "25%%). Prints them as a comma list for --classes and writes JSON if asked.\n\n"
                                   "examples:\n  latentdirs saliency select-classes ECSSD/images --classifier "
                                   "my_classifiers:resnet18 --json runs/sal/classes.json", formatter_class=Formatter)
    c.add_argument("folder", help="folder of target images (no labels needed)")
    _classifier_options(c, required=True)
    c.add_argument("--image-size", type=positive_int, default=224, help="classifier input side (resize + centre crop)")
    c.add_argument("--json", default=None, help="also write the kept classes and all counts here")
    _common(c)
    c.set_defaults(func=cmd_select_classes)

    e = sub.add_parser("eval", help="MAE, max F and IoU on real image/mask pairs",
                       description="Evaluate a trained U-Net on FOLDER/images + FOLDER/masks (or ground_truth_mask/, "
                                   "ECSSD's name), matched by file name. Writes metrics.json, predictions/*.png and "
                                   "examples.png (image | U-Net | truth).\n\n" + EXAMPLES, formatter_class=Formatter)
    e.add_argument("unet", help="U-Net folder or training run folder")
    e.add_argument("folder", help="folder with images/ and masks/ (or ground_truth_mask/)")
    e.add_argument("--masks-subdir", default=None, help="name of the mask folder inside FOLDER (None: masks/, ground_truth_mask/, gt/ or GT/)")
    e.add_argument("--size", type=positive_int, default=None,
                   help="resize the shorter image side to this before the U-Net (the paper: 128; None: the size "
                        "the U-Net was trained at)")
    e.add_argument("--out", default=None, help="output folder (None: UNET/eval-<folder name>)")
    e.add_argument("--figure-rows", type=positive_int, default=8, help="examples in examples.png")
    _common(e)
    e.set_defaults(func=cmd_eval)


def _common(parser: argparse.ArgumentParser) -> None:
    add_runtime_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _mask_options(parser: argparse.ArgumentParser, with_direction: bool = True) -> None:
    g = parser.add_argument_group("masks")
    if with_direction:
        g.add_argument("--ranking", default=None, help="ranking.json from find-direction: use its pick")
        g.add_argument("--direction", type=int, default=None, help="direction index (instead of --ranking)")
        g.add_argument("--shift", type=float, default=None, help="signed shift s (instead of --ranking)")
    g.add_argument("--threshold", type=fraction, default=DEFAULT_THRESHOLD, help="object where mean intensity < this")
    g.add_argument("--min-area", type=fraction, default=DEFAULT_AREA[0], help="drop masks covering less of the image")
    g.add_argument("--max-area", type=fraction, default=DEFAULT_AREA[1], help="drop masks covering more of the image")


def _class_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("classes (class-conditional generators)")
    g.add_argument("--select-classes-from", default=None, metavar="FOLDER",
                   help="unlabelled target images: keep the classes most often in a classifier's top-5")
    _classifier_options(g, required=False)


def _classifier_options(parser, required: bool) -> None:
    """How target images pick classes: shared by select-classes and make-data / train's --select-classes-from."""
    parser.add_argument("--classifier", required=required, default=None, metavar="MODULE:FUNCTION",
                        help="a function returning a callable images[-1,1] NCHW -> logits")
    parser.add_argument("--keep-fraction", type=fraction, default=0.25, help="fraction of the seen classes to keep")
    parser.add_argument("--top-k", type=positive_int, default=5, help="predictions counted per target image")


def _direction_from_args(args, directions) -> tuple[int, float]:
    if args.ranking:
        from ..runs import read_json_object
        pick = read_json_object(args.ranking, " (a ranking from `latentdirs saliency find-direction`)").get("pick")
        if not (isinstance(pick, dict) and isinstance(pick.get("index"), int)
                and isinstance(pick.get("signed_shift"), (int, float))):
            raise ValueError(f"{args.ranking} has no pick with an integer index and a numeric signed_shift; write it "
                             "again with `latentdirs saliency find-direction`")
        index, shift = pick["index"], pick["signed_shift"]
    elif args.direction is not None and args.shift is not None:
        index, shift = args.direction, args.shift
    else:
        raise SystemExit("error: give --ranking RANKING.json (from find-direction) or both --direction and --shift")
    if args.direction is not None:
        index = args.direction
    if args.shift is not None:
        shift = args.shift
    directions[index]  # IndexError with a clear message if out of range
    return index, shift


def _load_set_and_generator(args):
    from ..directions import DirectionSet
    from ..devices import resolve_device
    directions = DirectionSet.load(args.set)
    return directions, generator_for_set(args, directions).to(resolve_device(args.device))


def _classifier(spec: str):
    import importlib
    if ":" not in spec:
        raise SystemExit(f"error: --classifier expects MODULE:FUNCTION, got {spec!r}")
    module, func = spec.split(":", 1)
    return getattr(importlib.import_module(module), func)()


def _select_classes(args, generator):
    if not getattr(args, "select_classes_from", None):
        return generator, None
    if not args.classifier:
        raise SystemExit("error: --select-classes-from needs --classifier MODULE:FUNCTION")
    from ..saliency.classes import image_folder_batches, select_classes
    from ..saliency.masks import restrict_classes
    classes, counts = select_classes(_classifier(args.classifier), image_folder_batches(args.select_classes_from),
                                     top_k=args.top_k, keep_fraction=args.keep_fraction)
    print(f"classes kept ({len(classes)} of {len(counts)} seen): {classes}")
    return restrict_classes(generator, classes), classes


def cmd_select_classes(args: argparse.Namespace) -> int:
    from ..saliency.classes import image_folder_batches, select_classes
    set_threads(args.threads)
    classes, counts = select_classes(_classifier(args.classifier), image_folder_batches(args.folder, args.image_size),
                                     top_k=args.top_k, keep_fraction=args.keep_fraction)
    print(f"kept {len(classes)} of {len(counts)} classes seen in a top-{args.top_k}:")
    print(",".join(str(c) for c in classes))
    if args.json:
        from ..runs import atomic_write_text
        atomic_write_text(args.json, json.dumps({"classes": classes, "counts": {str(k): v for k, v in counts.most_common()},
                                               "top_k": args.top_k, "keep_fraction": args.keep_fraction}, indent=1))
    return 0


def cmd_find_direction(args: argparse.Namespace) -> int:
    from ..saliency.direction import rank_directions
    set_threads(args.threads)
    directions, generator = _load_set_and_generator(args)
    ranking = rank_directions(generator, directions, num_latents=args.num_latents, shifts=args.shifts, seed=args.seed,
                              threshold=args.threshold, min_area=args.min_area, max_area=args.max_area,
                              border=args.border, min_valid=args.min_valid, progress=not args.no_progress)
    out = Path(args.out) if args.out else Path(args.set) / "saliency"
    paths = ranking.save(out, generator, directions, top=min(args.top, 8))
    print(ranking.table(args.top))
    p = ranking.pick
    print(f"pick: direction {p.index}, shift {p.signed_shift:+g} (score {p.score:.3f}, border whitening "
          f"{p.border_whitening:.3f}, object change {p.object_change:.3f}, valid {p.valid:.0%})")
    print(f"wrote {', '.join(str(v) for v in paths.values())}")
    return 0


def cmd_make_data(args: argparse.Namespace) -> int:
    from ..saliency.masks import write_dataset
    set_threads(args.threads)
    directions, generator = _load_set_and_generator(args)
    index, shift = _direction_from_args(args, directions)
    generator, classes = _select_classes(args, generator)
    info = write_dataset(generator, directions[index], shift, args.out, args.num, seed=args.seed,
                         threshold=args.threshold, min_area=args.min_area, max_area=args.max_area,
                         progress=not args.no_progress,
                         meta={"direction_set": str(args.set), "direction": index, "classes": classes})
    print(f"wrote {info['num_pairs']} pairs to {args.out} (acceptance {info['acceptance_rate']:.1%}, "
          f"mean mask area {info['mean_mask_area']:.3f})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..saliency.masks import stream_pairs
    from ..saliency.train import folder_batches, train_unet
    set_threads(args.threads)
    config = config_from_args(args, UNetTrainConfig, UNetTrainConfig())
    if args.data:
        batches, meta = folder_batches(args.data, config.batch_size, seed=config.seed), {"data": args.data}
    elif args.set:
        directions, generator = _load_set_and_generator(args)
        index, shift = _direction_from_args(args, directions)
        generator, classes = _select_classes(args, generator)
        batches = stream_pairs(generator, directions[index], shift, config.batch_size, seed=config.seed,
                               threshold=args.threshold, min_area=args.min_area, max_area=args.max_area)
        meta = {"direction_set": args.set, "direction": index, "shift": shift, "classes": classes,
                "generator": generator.describe()}
    else:
        raise SystemExit("error: give --data FOLDER, or a direction SET (with --ranking or --direction/--shift)")
    from ..devices import resolve_device
    train_unet(batches, config, out_dir=args.out, progress=not args.no_progress, meta=meta,
               device=resolve_device(args.device))
    print(f"U-Net saved to {Path(args.out) / 'unet'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..saliency.train import evaluate
    from ..saliency.unet import UNet
    set_threads(args.threads)
    from ..devices import resolve_device
    unet = UNet.load(args.unet).to(resolve_device(args.device))
    out = Path(args.out) if args.out else Path(args.unet) / f"eval-{Path(args.folder).resolve().name}"
    result = evaluate(unet, args.folder, size=args.size, out_dir=out, masks_subdir=args.masks_subdir,
                      figure_rows=args.figure_rows, progress=not args.no_progress)
    print(f"MAE {result['mae']:.4f}  max F {result['max_f']:.4f}  IoU {result['iou']:.4f}  "
          f"on {result['num_images']} images -> {out}")
    return 0
