"""Edit real scenes with discovered directions, and measure that only the intended factor moved.

Held-out procedural scenes (data seeds 17000 for calibration and 17001 for test by default;
the GAN trained on seed 12345, the factor classifier on 1001, gan_quality evaluates on
2000/3000, and the encoder sees generated images only) are inverted, then:

- inversion: share of test scenes whose 6 classifier-read factors all match the input's
  (the classifier is 100% accurate on real scenes), per-factor matches, pixel MSE;
- edit precision, per direction set and factor: the (direction, shift) that best changes
  that factor alone is CHOSEN on the calibration scenes and REPORTED on the test scenes.

    python benchmarks/edit_precision.py                              # shipped GAN, docs/compare sets
    python benchmarks/edit_precision.py --generator scratch/gan_run/final \\
        --sets ld=runs/00012-discover-* sefa=runs/00013-* random --out-prefix scratch/edit/new
    python benchmarks/edit_precision.py --num-calibration 50 --num-test 50 --steps 50   # smoke run

Writes ``{out-prefix}.json``, ``{out-prefix}.md`` (the tables) and ``docs/images`` charts.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The seed-0 sets of the W comparison on the shipped generator, and the two reserved names.
DEFAULT_SETS = ["ld-disentangle=docs/compare/dcgan-w-w/ld-ortho/seed0", "sefa=docs/compare/dcgan-w-w/sefa/seed0",
                "ganspace=docs/compare/dcgan-w-w/ganspace/seed0", "random", "labelled"]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def load_generator_arg(text: str | None, sets: dict):
    from latentdirs.generators import available_generators, generator_from_spec, load_generator
    if text is None:  # the generator the first direction set was found with
        first = next(s for s in sets.values() if s is not None)
        described = first.meta.get("generator") or {}
        return generator_from_spec(described.get("spec"), described)  # a set from the first GAN gets it back
    if text in available_generators():
        return load_generator(text)
    kind, sep, path = text.partition(":")
    if sep and kind in available_generators():
        return load_generator(kind, path)
    return load_generator("shapes3d", text)  # a folder written by `latentdirs train-gan`


def load_sets(items: list[str]) -> dict:
    from latentdirs.directions import DirectionSet
    sets = {}
    for item in items:
        name, _, path = item.partition("=")
        if name in ("random", "labelled") and not path:
            sets[name] = None  # made once the generator (and for "labelled" the classifier) is loaded
        else:
            sets[name if path else Path(name).name] = DirectionSet.load(path or name)
    return sets


def add_instrument_options(parser) -> None:
    """The factor classifier and encoder a benchmark measures with: trained once, then reused from disk."""
    parser.add_argument("--classifier", default="scratch/factor_classifier.pt",
                        help="factor CNN state dict; trained and saved there if missing (default: %(default)s)")
    parser.add_argument("--classifier-steps", type=int, default=1500, help="steps if it must be trained (default: 1500)")
    parser.add_argument("--classifier-images", type=int, default=20000, help="its training scenes (default: 20000)")
    parser.add_argument("--encoder", default=None,
                        help="encoder folder; trained and saved there if missing (default: scratch/edit/encoder-NAME)")
    parser.add_argument("--encoder-steps", type=int, default=1500, help="steps if it must be trained (default: 1500)")


def load_or_train_classifier(path: Path, steps: int, num_images: int = 20000):
    from latentdirs.evaluation.quality import FactorClassifier, train_factor_classifier
    if path.is_file():
        classifier = FactorClassifier()
        classifier.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return classifier.eval(), f"{path} (loaded)"
    from latentdirs.runs import atomic_torch_save
    classifier = train_factor_classifier(num_images=num_images, steps=steps)
    atomic_torch_save(classifier.state_dict(), path)
    return classifier, f"{path} (trained here, {steps} steps)"


def load_or_train_encoder(path: Path, generator, steps: int):
    from latentdirs.inversion import Encoder, train_encoder
    if (path / "encoder.json").is_file():
        return Encoder.from_pretrained(path), f"{path} (loaded)"
    encoder = train_encoder(generator, steps=steps, batch_size=32)
    encoder.save_pretrained(path)
    return encoder, f"{path} (trained here, {steps} steps)"


def scenes(num: int, seed: int):
    from latentdirs.data.shapes3d import make_dataset, to_tensor
    images, factors, _ = make_dataset(num, seed=seed)
    return to_tensor(images), torch.from_numpy(factors)


@torch.no_grad()
def inversion_report(generator, classifier, images, factors, result, encoder) -> dict:
    from latentdirs.data.shapes3d import FACTOR_NAMES
    from latentdirs.evaluation.edit_precision import read_factors
    def matches(pictures):
        read = read_factors(classifier, pictures)
        same = read == factors
        # of the wrong readings, the share one value off (scale 3 read as 2 or 4): near misses vs wrong scenes
        near = (read - factors).abs() == 1
        return {"all_six": same.all(1).float().mean().item(),
                "per_factor": {n: same[:, i].float().mean().item() for i, n in enumerate(FACTOR_NAMES)},
                "misses_off_by_one": {n: {"misses": int((~same[:, i]).sum()),
                                          "off_by_one": near[~same[:, i], i].float().mean().item()}
                                      for i, n in enumerate(FACTOR_NAMES) if not same[:, i].all()}}
    report = {"factors_kept": matches(result.images),
              # the instrument itself: it must read the real scenes right for "kept" to mean anything
              "classifier_reads_input": matches(images),
              "pixel_mse": {"mean": result.pixel_error.mean().item(), "median": result.pixel_error.median().item()},
              "first_guess_pixel_mse": result.initial_pixel_error.mean().item(),
              "seconds_per_image": result.seconds_per_image, "cpu_seconds_per_image": result.cpu_seconds_per_image,
              "settings": result.settings}
    if encoder is not None:
        report["first_guess_factors_kept"] = matches(generator(encoder(images)).clamp(-1, 1))
    return report


@torch.no_grad()
def generated_readability(generator, classifier, num: int = 2000, threshold: float = 0.9) -> dict:
    """Share of generated samples whose factor the classifier reads with confidence > threshold."""
    from latentdirs.data.shapes3d import FACTOR_NAMES
    from latentdirs.evaluation.quality import classify, generate
    _, probs = classify(classifier, generate(generator, num, seed=0))
    return {n: (p.max(1).values > threshold).float().mean().item() for n, p in zip(FACTOR_NAMES, probs)}


def best_set(report: dict, factor: int) -> str:
    """The label-free set whose chosen edit of ``factor`` did best on calibration scenes (never picked on test)."""
    references = set(report.get("reference_sets", []))
    return max((name for name in report["edits"] if name not in references),
               key=lambda name: report["edits"][name][factor]["calibration_precision"])


def markdown(report: dict) -> str:
    from latentdirs.data.shapes3d import FACTOR_NAMES
    inv = report["inversion"]
    lines = ["| inversion (test scenes) | all 6 factors kept | " + " | ".join(FACTOR_NAMES) + " | pixel MSE |",
             "|---" * (len(FACTOR_NAMES) + 3) + "|"]
    start = "encoder" if inv["settings"]["encoder"] else "best of 256 prior samples"
    for label, key, mse in (("encoder guess only", "first_guess_factors_kept", inv["first_guess_pixel_mse"]),
                            (f"{start} + {inv['settings']['steps']} steps"
                             + (" (per-layer W+)" if inv["settings"].get("per_layer") else ""),
                             "factors_kept", inv["pixel_mse"]["mean"])):
        if key in inv:
            kept = inv[key]
            lines.append(f"| {label} | **{kept['all_six']:.1%}** | "
                         + " | ".join(f"{kept['per_factor'][n]:.0%}" for n in FACTOR_NAMES) + f" | {mse:.4f} |")
    lines += ["", "| edit precision (test) | " + " | ".join(FACTOR_NAMES) + " |",
              "|---" * (len(FACTOR_NAMES) + 1) + "|"]
    references = set(report.get("reference_sets", []))
    for name, rows in report["edits"].items():
        cells = [f"{r['test_precision']:.2f} (#{r['direction']}, {r['shift']:+g})" for r in rows]
        label = f"{name} (uses labels: reference)" if name in references else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    best = [report["edits"][best_set(report, f)][f] for f in range(len(FACTOR_NAMES))]
    lines.append("| **best label-free set (chosen on calibration)** | "
                 + " | ".join(f"**{r['test_precision']:.2f}** ({best_set(report, f)})" for f, r in enumerate(best)) + " |")
    reach = report["factor_reach"]
    lines.append("| changed at all (best edit, calibration) | " + " | ".join(f"{reach[n]:.2f}" for n in FACTOR_NAMES) + " |")
    read = report["generated_readability"]
    lines.append("| generated samples read with conf. > 0.9 | " + " | ".join(f"{read[n]:.2f}" for n in FACTOR_NAMES) + " |")
    return "\n".join(lines) + "\n"


def draw_chart(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from latentdirs.data.shapes3d import FACTOR_NAMES
    from latentdirs.runs import atomic_path
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharey=True)
    for f, (ax, name) in enumerate(zip(axes.flat, FACTOR_NAMES)):
        for set_name, rows in report["edits"].items():
            row = rows[f]
            x, y = zip(*row["test_precision_by_magnitude"])
            ax.plot(x, y, marker="o", label=f"{set_name} #{row['direction']}{'+' if row['shift'] > 0 else '-'}")
        ax.axhline(0.8, color="grey", linestyle=":", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("|shift|")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("edit precision (test)")
    axes[1, 0].set_ylabel("edit precision (test)")
    fig.suptitle("Only the intended factor changed: best direction per factor, chosen on calibration scenes")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


@torch.no_grad()
def draw_examples(generator, classifier, images, latents, sets, report, path: Path) -> None:
    """One test scene per factor, edited by the best set's chosen direction."""
    from latentdirs.data.shapes3d import FACTOR_NAMES
    from latentdirs.editing import edit_strip
    from latentdirs.render import grid, save_image, to_pil
    rows, labels = [], []
    for f, name in enumerate(FACTOR_NAMES):
        set_name = best_set(report, f)
        row = report["edits"][set_name][f]
        s = row["shift"]
        n = f % len(latents)  # a different scene per row (while there are enough)
        strip = edit_strip(generator, latents[n:n + 1], sets[set_name], row["direction"], [-s, -s / 2, 0, s / 2, s])[0]
        rows.append(to_pil(torch.cat([images[n:n + 1], generator(latents[n:n + 1]).clamp(-1, 1), strip])))
        labels.append(name.replace("_hue", " hue")[:10])
    sheet = grid(rows, row_labels=labels, col_labels=["input", "inverted", "-s", "-s/2", "0", "+s/2", "+s"],
                 marked_column=4, scale=2)
    # A 256-colour palette: GAN noise makes full-colour sheets too big for docs/.
    save_image(sheet.quantize(256, dither=0), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default=None, metavar="PATH_OR_KIND",
                        help="a generator kind, KIND:PATH, or a shapes3d folder (default: the one the first set records)")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS, metavar="NAME=DIR",
                        help="direction sets (run or set folders); the word 'random' adds 10 random directions, "
                             "'labelled' a reference that uses factor labels (one Fisher-discriminant direction "
                             "per factor, kept out of the 'best set' choice) "
                             "(default: the docs/compare/dcgan-w-w seed-0 sets + random + labelled)")
    add_instrument_options(parser)
    parser.add_argument("--no-encoder", action="store_true", help="invert by optimization from prior samples only")
    parser.add_argument("--per-layer", action="store_true",
                        help="invert to per-layer styles (W+) instead of one w (style-based generators in W / W+)")
    parser.add_argument("--steps", type=int, default=300, help="optimization steps per image (default: 300)")
    parser.add_argument("--num-calibration", type=int, default=200, help="scenes to choose edits on (default: 200)")
    parser.add_argument("--num-test", type=int, default=200, help="scenes to report on (default: 200)")
    parser.add_argument("--data-seed", type=int, default=17000, help="calibration seed; test uses +1 (default: 17000)")
    parser.add_argument("--labelled-samples", type=int, default=20000,
                        help="generated samples behind the 'labelled' reference set (default: 20000)")
    parser.add_argument("--shifts", default="2,4,6,8", help="shift magnitudes, both signs (default: %(default)s)")
    parser.add_argument("--out-prefix", default="benchmarks/results/edit_precision", help="(default: %(default)s)")
    parser.add_argument("--images", default="docs/images", help="folder for the chart and examples (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--from-json", default=None, metavar="JSON",
                        help="only redraw the table and chart of an earlier run's JSON (no models)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.from_json:
        from latentdirs.runs import atomic_write_text
        report, prefix = json.loads(Path(args.from_json).read_text()), Path(args.out_prefix)
        atomic_write_text(prefix.with_suffix(".md"), markdown(report))
        draw_chart(report, Path(args.images) / f"{prefix.name}.png")
        print(markdown(report))
        return 0
    from latentdirs.data.shapes3d import FACTOR_NAMES
    from latentdirs.directions import DirectionSet
    from latentdirs.evaluation.edit_precision import choose_edits, edit_precision_table, factor_changes
    from latentdirs.inversion import invert

    start = time.time()
    sets = load_sets(args.sets)
    generator = load_generator_arg(args.generator, sets)
    if "random" in sets and sets["random"] is None:
        sets["random"] = DirectionSet.random(generator.latent_dim, 10, seed=0)
    magnitudes = [float(s) for s in args.shifts.split(",")]
    shifts = [-s for s in reversed(magnitudes)] + magnitudes
    classifier, classifier_note = load_or_train_classifier(Path(args.classifier), args.classifier_steps,
                                                         args.classifier_images)
    if "labelled" in sets and sets["labelled"] is None:
        from latentdirs.evaluation.edit_precision import labelled_directions
        sets["labelled"] = labelled_directions(generator, classifier, num_samples=args.labelled_samples,
                                               factor_names=FACTOR_NAMES)
    encoder, encoder_note = None, "none (optimization from the best of 256 prior samples)"
    if not args.no_encoder:
        encoder, encoder_note = load_or_train_encoder(Path(args.encoder or f"scratch/edit/encoder-{generator.name}"),
                                                      generator, args.encoder_steps)

    calibration, _ = scenes(args.num_calibration, args.data_seed)
    test, test_factors = scenes(args.num_test, args.data_seed + 1)
    inverted_calibration = invert(generator, calibration, encoder=encoder, steps=args.steps, per_layer=args.per_layer)
    inverted_test = invert(generator, test, encoder=encoder, steps=args.steps, per_layer=args.per_layer)
    report = {"inversion": inversion_report(generator, classifier, test, test_factors, inverted_test, encoder),
              "edits": {}, "reference_sets": [name for name, s in sets.items() if s.meta.get("uses_labels")], "choices_made_on": "calibration scenes", "reported_on": "test scenes"}
    print(f"inversion: all 6 factors kept for {report['inversion']['factors_kept']['all_six']:.1%} of test scenes, "
          f"pixel MSE {report['inversion']['pixel_mse']['mean']:.4f}, "
          f"{report['inversion']['seconds_per_image']:.2f} s/image", flush=True)

    reach = np.zeros(len(FACTOR_NAMES))
    for name, directions in sets.items():
        changed_cal = factor_changes(generator, classifier, inverted_calibration.latents, directions, shifts, progress=True)
        changed_test = factor_changes(generator, classifier, inverted_test.latents, directions, shifts, progress=True)
        reach = np.maximum(reach, changed_cal.mean(2).max((0, 1)))
        report["edits"][name] = edit_precision_table(changed_test, shifts, choose_edits(changed_cal, shifts))
        print(f"{name:12s} " + "  ".join(f"{n} {r['test_precision']:.2f}"
                                         for n, r in zip(FACTOR_NAMES, report["edits"][name])), flush=True)
    report["factor_reach"] = dict(zip(FACTOR_NAMES, reach.tolist()))
    report["generated_readability"] = generated_readability(generator, classifier)
    report["settings"] = {
        "command": "python benchmarks/edit_precision.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "generator": generator.describe(), "sets": {n: (s.meta.get("method") if s is not None else None)
                                                    for n, s in sets.items()},
        "set_paths": args.sets, "classifier": classifier_note, "encoder": encoder_note,
        "encoder_training": getattr(encoder, "meta", {}).get("training"), "shifts": shifts,
        "num_calibration": args.num_calibration, "num_test": args.num_test,
        "data_seeds": [args.data_seed, args.data_seed + 1], "threads": args.threads, "cpu": cpu_model(),
        "torch": torch.__version__, "seconds": round(time.time() - start, 1)}

    from latentdirs.runs import atomic_write_text
    prefix = Path(args.out_prefix)
    atomic_write_text(prefix.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    atomic_write_text(prefix.with_suffix(".md"), table)
    images = Path(args.images)
    draw_chart(report, images / f"{prefix.name}.png")
    draw_examples(generator, classifier, test, inverted_test.latents, sets, report, images / f"{prefix.name}_examples.png")
    print(table)
    print(f"wrote {prefix}.json, {prefix}.md, {images}/{prefix.name}.png and {prefix.name}_examples.png "
          f"in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
