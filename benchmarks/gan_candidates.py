"""Compare GAN training runs at equal CPU budget: quality of each run's EMA generator, one table.

Each run folder is one `latentdirs train-gan ... --max-cpu-minutes M` run. Its checkpoint is
exported (EMA generator), then measured with the same factor-classifier protocol as
benchmarks/gan_quality.py (5000 images, confidence 0.9). The table lists architecture, steps
reached in the budget, CPU seconds per step, and the quality figures; each run's sample grid
goes next to it.

    python benchmarks/gan_candidates.py scratch/cand_dcgan_up scratch/cand_style_sn scratch/cand_style_r1 \
        --classifier scratch/factor_classifier.pt --grids docs/images/gan_candidates --out docs/gan_candidates.json

Runs that continue one checkpoint (the capacity study: each run resumes or warm-starts step 95518)
count their steps and CPU time from it with ``--from-step``:

    python benchmarks/gan_candidates.py scratch/capacity/start scratch/capacity/control scratch/capacity/wide \
        scratch/capacity/r1_aug --from-step 95518 --grids docs/images/capacity --out docs/gan/capacity.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="train-gan run folders (each with checkpoint.pt)")
    parser.add_argument("--classifier", default="scratch/factor_classifier.pt",
                        help="factor CNN state dict from benchmarks/gan_quality.py; trained and saved here if missing")
    parser.add_argument("--num-images", type=int, default=5000, help="images per set (default: 5000)")
    parser.add_argument("--grids", default=None, help="folder for one 8x8 sample grid per run (RUN_NAME.png)")
    parser.add_argument("--out", default="benchmarks/results/gan_candidates.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--seeds", default="0",
                        help="evaluation seeds (real and generated sets); the table shows the first, the JSON "
                             "also the mean over all under 'seed_mean' (default: 0, the protocol)")
    parser.add_argument("--from-step", type=int, default=0,
                        help="count steps and CPU time from this step of each run's history (default: 0, all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from latentdirs.evaluation.quality import (FactorClassifier, evaluate_generator_quality, generate,
                                               train_factor_classifier)
    from latentdirs.gan.train import export_from_checkpoint, save_image_grid
    from latentdirs.generators import load_generator

    classifier_path = Path(args.classifier)
    if classifier_path.exists():
        classifier = FactorClassifier()
        classifier.load_state_dict(torch.load(classifier_path, map_location="cpu", weights_only=True))
        classifier.eval()
    else:
        classifier = train_factor_classifier()
        classifier_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(classifier.state_dict(), classifier_path)

    rows = []
    for run in map(Path, args.runs):
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        final = export_from_checkpoint(run, run / "final")
        generator = load_generator("shapes3d", str(final))
        seeds = [int(seed) for seed in args.seeds.split(",")]
        reports = [evaluate_generator_quality(generator, args.num_images, classifier=classifier, seed=seed)
                   for seed in seeds]
        report = reports[0]
        if len(seeds) > 1:  # the spread of the figures over evaluation sets: how much a difference means
            keys = ("frechet_distance_real_vs_generated", "confident_fraction_generated",
                    "within_one_step_fraction_generated")
            report = {**report, "seeds": seeds,
                      "by_seed": {key: [r[key] for r in reports] for key in keys},
                      "seed_mean": {key: sum(r[key] for r in reports) / len(reports) for key in keys}}
        config = state["config"]
        cpu_seconds = state.get("cpu_seconds", 0.0) - cpu_seconds_at(run, state, args.from_step)
        steps = state["step"] - args.from_step
        rows.append({"run": run.name, "architecture": config.get("architecture", "dcgan"),
                     "changes": changes(config), "r1_gamma": config.get("r1_gamma", 0.0),
                     "widths": config.get("widths", {}), "augment": config.get("augment", ""),
                     "from_step": args.from_step, "step": state["step"], "steps": steps,
                     "cpu_seconds": round(cpu_seconds, 1),
                     "cpu_seconds_per_step": round(cpu_seconds / steps, 3) if steps > 0 else None,
                     "parameters": sum(p.numel() for p in generator.parameters()), **report})
        if args.grids:
            Path(args.grids).mkdir(parents=True, exist_ok=True)
            grid = Path(args.grids) / f"{run.name}.png"
            save_image_grid(generate(generator, 64, seed=7), grid)
            from PIL import Image  # a 256-colour palette keeps the grids small for docs/
            Image.open(grid).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(grid, optimize=True)
        print(f"{run.name}: done", file=sys.stderr)

    print("| run | what changed | params | steps | CPU s/step | Frechet | all 6 confident | all 6 within one step | "
          "floor | wall | object | scale | shape | orientation | wall-hue coverage |")
    print("|---" * 15 + "|")
    for r in rows:
        per_factor = r["confident_fraction_generated_per_factor"]
        print(f"| {r['run']} | {r['changes']} | {r['parameters'] / 1000:.0f}k | {r['steps']} | "
              f"{r['cpu_seconds_per_step']} | {figure(r, 'frechet_distance_real_vs_generated', '.0f')} | "
              f"{figure(r, 'confident_fraction_generated', '.1%')} | "
              f"{figure(r, 'within_one_step_fraction_generated', '.1%')} | "
              + " | ".join(f"{per_factor[k]:.0%}" for k in ("floor_hue", "wall_hue", "object_hue", "scale", "shape",
                                                            "orientation"))
              + f" | {r['generated_factor_coverage']['wall_hue']:.2f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def figure(row: dict, key: str, spec: str) -> str:
    """The protocol's figure (first seed), and the mean over seeds in brackets when there are several."""
    text = format(row[key], spec)
    return text + (f" ({format(row['seed_mean'][key], spec)})" if "seed_mean" in row else "")


def changes(config: dict) -> str:
    """What a run changes against a plain spectral-norm run of its architecture, in words."""
    parts = [config.get("architecture", "dcgan")]
    if config.get("widths"):
        parts.append("channels " + ", ".join(f"{c} at {r}x{r}" for r, c in sorted(
            (int(r), c) for r, c in config["widths"].items())))
    if config.get("r1_gamma", 0.0) > 0:
        parts.append(f"R1 {config['r1_gamma']:g} instead of spectral norm")
    if config.get("augment"):
        parts.append(f"DiffAugment {config['augment']}")
    return "; ".join(parts)


def cpu_seconds_at(run: Path, state: dict, step: int) -> float:
    """CPU seconds the run had used at ``step``, from its commands.jsonl (each (re)start records them)."""
    if step == 0:
        return 0.0
    if state["step"] == step:  # the starting point itself
        return state.get("cpu_seconds", 0.0)
    history = [json.loads(line) for line in (run / "commands.jsonl").read_text().splitlines() if line.strip()]
    for entry in history:
        if entry.get("from_step") == step:
            return entry["cpu_seconds_before"]
    raise SystemExit(f"{run}/commands.jsonl has no (re)start at step {step}; --from-step must be one")


if __name__ == "__main__":
    sys.exit(main())
