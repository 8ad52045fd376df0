"""Train the factor classifier that names directions, and ship it with the package.

The classifier is ``evaluation.quality.FactorClassifier`` (the one the quality and edit-precision
benchmarks train), fitted on fresh procedural scenes and checked on held-out ones. It is written to
``src/latentdirs/weights/factor_classifier/`` as ``classifier.safetensors`` + ``config.json`` (the
command, settings, held-out accuracy per factor), where ``latentdirs.evaluation.naming`` loads it,
so the demo and ``compare`` name directions without training a classifier.

    python benchmarks/factor_classifier.py                  # the shipped weights (about 2 CPU-minutes)
    python benchmarks/factor_classifier.py --out scratch/clf --steps 300
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="src/latentdirs/weights/factor_classifier", help="folder (default: %(default)s)")
    parser.add_argument("--num-images", type=int, default=20000, help="training scenes (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default: %(default)s)")
    parser.add_argument("--test-images", type=int, default=5000, help="held-out scenes scored (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="training seed (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from safetensors.torch import save_file

    from latentdirs.data.shapes3d import FACTOR_NAMES, FACTOR_SIZES, make_dataset, to_tensor
    from latentdirs.evaluation.quality import classify, train_factor_classifier
    from latentdirs.runs import cpu_model

    wall, cpu = time.time(), time.process_time()
    model = train_factor_classifier(num_images=args.num_images, steps=args.steps, seed=args.seed)
    images, factors, _ = make_dataset(args.test_images, seed=args.seed + 5000)  # apart from the training range
    _, probs = classify(model, to_tensor(images))
    accuracy = {name: float((p.argmax(1).numpy() == factors[:, i]).mean()) for i, (name, p) in
                enumerate(zip(FACTOR_NAMES, probs))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # fp16 halves the file; the readings it gives differ from fp32's by < 1e-3 in probability.
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}
              | {k: v for k, v in model.state_dict().items() if not v.is_floating_point()},
              str(out / "classifier.safetensors"))
    config = {"model": "latentdirs.evaluation.quality.FactorClassifier", "factor_names": list(FACTOR_NAMES),
              "factor_sizes": list(FACTOR_SIZES),
              # how name_directions measures a change of each factor's reading
              "factor_kinds": ["circular", "circular", "circular", "ordinal", "categorical", "ordinal"], "width": 16, "feature_dim": 128,
              "training": {"command": " ".join(["python benchmarks/factor_classifier.py", *(argv if argv is not None else sys.argv[1:])]),
                           "num_images": args.num_images, "steps": args.steps, "seed": args.seed,
                           "data_seed": args.seed + 1000, "threads": args.threads,
                           "wall_seconds": round(time.time() - wall, 1),
                           "cpu_seconds": round(time.process_time() - cpu, 1),
                           "machine": cpu_model(), "torch": torch.__version__},
              "held_out": {"num_images": args.test_images, "data_seed": args.seed + 5000, "accuracy": accuracy}}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(config["held_out"], indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
