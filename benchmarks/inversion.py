"""Inversion settings compared on held-out procedural scenes: which keeps all six factors?

Every setting inverts the same test scenes (data seed 17001 by default, as edit_precision's
test split) with the same encoder, and is read by the same factor classifier:

- all six factors kept (the classifier reads the reconstruction as it reads the input), per factor,
  and of the misses the share read as a neighbouring value;
- pixel MSE; CPU seconds per image (1 thread unless --threads).

A setting is ``NAME=KEY:VALUE,...`` with keys ``steps``, ``per_layer`` (0/1), ``scales``, ``restarts``,
``lr``, ``prior_weight`` (the arguments of ``latentdirs.invert``); the default compares one w, W+ and W+ with a 3-level pixel pyramid.

    python benchmarks/inversion.py --encoder scratch/edit/encoder-dcgan-w-w
    python benchmarks/inversion.py --num-test 8 --settings w=steps:2 --classifier-steps 5 --classifier-images 64 \
        --classifier scratch/c.pt --encoder-steps 5 --encoder scratch/enc --out-prefix scratch/inv   # smoke run

Writes ``{out-prefix}.json`` and ``{out-prefix}.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from edit_precision import (add_instrument_options, cpu_model, inversion_report, load_generator_arg,  # noqa: E402
                            load_or_train_classifier, load_or_train_encoder, scenes)

DEFAULT_SETTINGS = ["w=steps:150", "w+=steps:150,per_layer:1", "w+ pyramid=steps:150,per_layer:1,scales:3",
                    "w+ pyramid 300=steps:300,per_layer:1,scales:3"]
KEYS = {"steps": int, "per_layer": lambda v: bool(int(v)), "scales": int, "restarts": int, "lr": float,
        "prior_weight": float}


def parse_setting(text: str) -> tuple[str, dict]:
    name, sep, body = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--settings: {text!r} is not NAME=KEY:VALUE,... (e.g. 'w+=steps:150,per_layer:1')")
    options = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        if key not in KEYS:
            raise SystemExit(f"--settings: unknown key {key!r} in {text!r}; known: {', '.join(KEYS)}")
        try:
            options[key] = KEYS[key](value)
        except ValueError:
            raise SystemExit(f"--settings: {key}:{value!r} in {text!r} is not a number") from None
    return name, options


def markdown(report: dict) -> str:
    from latentdirs.data.shapes3d import FACTOR_NAMES
    lines = ["| setting | all 6 factors kept | " + " | ".join(FACTOR_NAMES) + " | pixel MSE | CPU-s / image |",
             "|---" * (len(FACTOR_NAMES) + 4) + "|"]
    first = next(iter(report["settings_measured"].values()))
    lines.append("| encoder guess only | **{:.1%}** | ".format(first["first_guess_factors_kept"]["all_six"])
                 + " | ".join(f"{first['first_guess_factors_kept']['per_factor'][n]:.0%}" for n in FACTOR_NAMES)
                 + f" | {first['first_guess_pixel_mse']:.4f} | |")
    for name, measured in report["settings_measured"].items():
        kept = measured["factors_kept"]
        lines.append(f"| {name} | **{kept['all_six']:.1%}** | "
                     + " | ".join(f"{kept['per_factor'][n]:.0%}" for n in FACTOR_NAMES)
                     + f" | {measured['pixel_mse']['mean']:.4f} | {measured['cpu_seconds_per_image']:.2f} |")
    lines += ["", "Wrong readings, per factor: how many, and the share read as a neighbouring value", "",
              "| setting | " + " | ".join(FACTOR_NAMES) + " |", "|---" * (len(FACTOR_NAMES) + 1) + "|"]
    for name, measured in report["settings_measured"].items():
        missed = measured["factors_kept"]["misses_off_by_one"]
        lines.append(f"| {name} | " + " | ".join(
            f"{missed[n]['misses']} ({missed[n]['off_by_one']:.0%} off by one)" if n in missed else "0"
            for n in FACTOR_NAMES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="shapes3d:w", metavar="KIND[:SPACE]",
                        help="generator kind, or KIND:PATH / a shapes3d folder (default: shapes3d in W)")
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, metavar="NAME=KEY:VALUE,...",
                        help="inversion settings to compare (default: %(default)s)")
    add_instrument_options(parser)
    parser.add_argument("--num-test", type=int, default=100, help="test scenes (default: 100)")
    parser.add_argument("--data-seed", type=int, default=17001, help="scene seed (default: 17001, edit_precision's test)")
    parser.add_argument("--out-prefix", default="benchmarks/results/inversion", help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args(argv)
    settings = dict(parse_setting(text) for text in args.settings)
    torch.set_num_threads(args.threads)
    from latentdirs.inversion import invert, latent_prior

    start = time.time()
    if args.generator == "shapes3d:w":
        from latentdirs.generators import load_generator
        generator = load_generator("shapes3d", space="w")
    else:
        generator = load_generator_arg(args.generator, {})
    classifier, classifier_note = load_or_train_classifier(Path(args.classifier), args.classifier_steps,
                                                         args.classifier_images)
    encoder, encoder_note = load_or_train_encoder(Path(args.encoder or f"scratch/edit/encoder-{generator.name}"),
                                                  generator, args.encoder_steps)
    images, factors = scenes(args.num_test, args.data_seed)
    prior = latent_prior(generator)
    report = {"settings_measured": {}}
    for name, options in settings.items():
        result = invert(generator, images, encoder=encoder, prior=prior, **options)
        report["settings_measured"][name] = inversion_report(generator, classifier, images, factors, result, encoder)
        kept = report["settings_measured"][name]["factors_kept"]["all_six"]
        print(f"{name:20s} all six kept {kept:.1%}  pixel MSE {result.pixel_error.mean():.4f}  "
              f"{result.cpu_seconds_per_image:.2f} CPU-s/image", flush=True)
    report["settings"] = {
        "command": "python benchmarks/inversion.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "generator": generator.describe(), "classifier": classifier_note, "encoder": encoder_note,
        "encoder_training": getattr(encoder, "meta", {}).get("training"), "num_test": args.num_test,
        "data_seed": args.data_seed, "threads": args.threads, "cpu": cpu_model(), "torch": torch.__version__,
        "seconds": round(time.time() - start, 1)}
    from latentdirs.runs import atomic_write_text
    prefix = Path(args.out_prefix)
    atomic_write_text(prefix.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    atomic_write_text(prefix.with_suffix(".md"), table)
    print(table)
    print(f"wrote {prefix}.json and {prefix}.md in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
