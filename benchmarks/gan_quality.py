"""Sample quality of the shapes3d GAN, measured with a factor-prediction CNN.

Prints and writes (JSON) the Frechet distance real-vs-generated in the classifier's feature
space next to real-vs-real, and the fraction of images whose six factors are all predicted
with confidence > 0.9, on generated and on real scenes. Optionally writes 8x8 PNG grids.

    python benchmarks/gan_quality.py                                   # packaged weights
    python benchmarks/gan_quality.py --generator scratch/gan_run/final --num-images 2000
    python benchmarks/gan_quality.py --grids docs/images               # also shapes3d_{real,generated}.png
    python benchmarks/gan_quality.py --truncation 0.7 --out benchmarks/results/gan_quality_psi0.7.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def shrink_png(path: Path) -> None:
    """Re-save with a 256-colour palette: GAN noise makes full-colour grids too big for docs/."""
    from PIL import Image
    Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default=None,
                        help="shapes3d generator folder (default: the weights shipped in the package)")
    parser.add_argument("--num-images", type=int, default=5000, help="real and generated images per set (default: 5000)")
    parser.add_argument("--classifier-steps", type=int, default=1500, help="training steps of the factor CNN (default: 1500)")
    parser.add_argument("--classifier", default=None,
                        help="reuse a factor CNN state dict saved by an earlier run (default: train one)")
    parser.add_argument("--save-classifier", default="scratch/factor_classifier.pt",
                        help="where to save the trained factor CNN (default: scratch/factor_classifier.pt)")
    parser.add_argument("--out", default="benchmarks/results/gan_quality.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--grids", default=None, help="folder for shapes3d_real.png / shapes3d_generated.png (8x8)")
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="style-based weights only: sample w = mean_w + psi (w - mean_w) (default: 1, none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation sets (default: 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from latentdirs.evaluation.quality import FactorClassifier, evaluate_generator_quality, train_factor_classifier
    from latentdirs.generators import load_generator

    start = time.time()
    options = {"truncation": args.truncation} if args.truncation != 1.0 else {}
    generator = load_generator("shapes3d", args.generator, **options)
    if args.classifier:
        classifier = FactorClassifier()
        classifier.load_state_dict(torch.load(args.classifier, map_location="cpu", weights_only=True))
        classifier.eval()
    else:
        classifier = train_factor_classifier(steps=args.classifier_steps)
        if args.save_classifier:
            Path(args.save_classifier).parent.mkdir(parents=True, exist_ok=True)
            torch.save(classifier.state_dict(), args.save_classifier)
    report = evaluate_generator_quality(generator, args.num_images, classifier=classifier, seed=args.seed)
    report.update({"generator": args.generator or "packaged", "generator_config": generator.config,
                   "truncation": args.truncation,
                   "classifier": args.classifier or f"trained here, {args.classifier_steps} steps",
                   "seconds": round(time.time() - start, 1)})

    print(f"Frechet distance (factor-CNN features), {args.num_images} images per set:")
    print(f"  real vs generated  {report['frechet_distance_real_vs_generated']:.3f}")
    print(f"  real vs real       {report['frechet_distance_real_vs_real']:.3f}")
    print(f"all six factors predicted with confidence > {report['confidence_threshold']}:")
    print(f"  generated          {report['confident_fraction_generated']:.1%}")
    print(f"  real               {report['confident_fraction_real']:.1%}")
    print("  generated, per factor: "
          + ", ".join(f"{k} {v:.1%}" for k, v in report["confident_fraction_generated_per_factor"].items()))
    print(f"every factor read within one step (a neighbouring value allowed), generated "
          f"{report['within_one_step_fraction_generated']:.1%}, real {report['within_one_step_fraction_real']:.1%}")
    print("  generated, per factor: "
          + ", ".join(f"{k} {v:.1%}" for k, v in report["within_one_step_fraction_generated_per_factor"].items()))
    print("classifier accuracy on real scenes: "
          + ", ".join(f"{k} {v:.1%}" for k, v in report["classifier_accuracy_real"].items()))
    print("factor coverage of generated scenes (1 = uniform): "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["generated_factor_coverage"].items()))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    if args.grids:
        from latentdirs.data.shapes3d import make_dataset, to_tensor
        from latentdirs.gan.train import save_image_grid
        from latentdirs.evaluation.quality import generate
        grids = Path(args.grids)
        grids.mkdir(parents=True, exist_ok=True)
        save_image_grid(to_tensor(make_dataset(64, seed=args.seed + 7)[0]), grids / "shapes3d_real.png")
        save_image_grid(generate(generator, 64, seed=args.seed + 7), grids / "shapes3d_generated.png")
        for name in ("shapes3d_real.png", "shapes3d_generated.png"):
            shrink_png(grids / name)
        print(f"wrote {grids}/shapes3d_real.png and shapes3d_generated.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
