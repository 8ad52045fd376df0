"""Compare GAN training runs at equal CPU budget: quality of each run's EMA generator, one table.

Each run folder is one `latentdirs train-gan ... --max-cpu-minutes M` run. Its checkpoint is
exported (EMA generator), then measured with the same factor-classifier protocol as
benchmarks/gan_quality.py (5000 images, confidence 0.9). The table lists architecture, steps
reached in the budget, CPU seconds per step, and the quality figures; each run's sample grid
goes next to it.

    python benchmarks/gan_candidates.py scratch/cand_dcgan_up scratch/cand_style_sn scratch/cand_style_r1 \
        --classifier scratch/factor_classifier.pt --grids docs/images/gan_candidates --out docs/gan_candidates.json
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
        report = evaluate_generator_quality(generator, args.num_images, classifier=classifier)
        config = state["config"]
        rows.append({"run": run.name, "architecture": config.get("architecture", "dcgan"),
                     "r1_gamma": config.get("r1_gamma", 0.0), "steps": state["step"],
                     "cpu_seconds": round(state.get("cpu_seconds", 0.0), 1),
                     "cpu_seconds_per_step": round(state.get("cpu_seconds", 0.0) / max(1, state["step"]), 3),
                     "parameters": sum(p.numel() for p in generator.parameters()), **report})
        if args.grids:
            Path(args.grids).mkdir(parents=True, exist_ok=True)
            save_image_grid(generate(generator, 64, seed=7), Path(args.grids) / f"{run.name}.png")
        print(f"{run.name}: done", file=sys.stderr)

    print("| run | architecture | steps | CPU s/step | all 6 confident | worst factor | Frechet |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        per_factor = r["confident_fraction_generated_per_factor"]
        worst = min(per_factor, key=per_factor.get)
        print(f"| {r['run']} | {r['architecture']}{' + R1' if r['r1_gamma'] > 0 else ''} | {r['steps']} | "
              f"{r['cpu_seconds_per_step']} | {r['confident_fraction_generated']:.1%} | "
              f"{worst} {per_factor[worst]:.0%} | {r['frechet_distance_real_vs_generated']:.0f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
