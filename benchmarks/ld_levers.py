"""Levers on LD's ground-truth scores (MIG, DCI) against SeFa, on the shipped shapes3d GAN.

`latentdirs compare` on shapes3d puts LD behind SeFa and GANSpace on MIG and DCI, as the
published protocol did (Khrulkov et al. 2021: LD 0.177 vs SeFa 0.283 MIG on 3D Shapes). This
script measures what moves LD's scores, with the same encoder protocol and settings as the
comparison, one lever at a time:

- ``orthogonalized``: the comparison's own LD (unit) directions, made orthonormal by the
  symmetric (Löwdin) map H (H^T H)^(-1/2), the orthonormal set closest to H: unit-norm LD
  directions are not orthogonal, so their codes z·h_k are correlated and share information;
- ``distinct``: the comparison's ``ld-unit-K32`` run (32 unit directions, ranked by image
  change), keeping the top k that are distinct: a direction is skipped while its |cosine| to
  one already kept exceeds ``--max-cosine`` (``DirectionSet.top(k, max_cosine=...)``);
- ``sefa-start``: LD (ortho, K = k) started at SeFa's top k directions instead of the
  coordinate axes (the latent is rotated by SeFa's full eigenbasis, where ortho A starts at
  the identity): does LD's objective keep SeFa's disentanglement, or leave it?
  ``sefa-start-lambda``: the same with the shift-loss weight ``--shift-weight`` (0 removes the
  shift regression, which pulled directions away from the true factors on the planted
  generator, docs/planted.md);
- ``steps``: LD (unit, K = k) trained for ``--long-steps`` instead of the comparison's steps;
- ``lambda``: LD (unit, K = k) with the shift-loss weight ``--shift-weight``.

(Each lever's rows are keyed by name; run a lever with another ``--shift-weight`` into
another ``--out`` file.)

Run after the comparison (it reads ``COMPARE_DIR/ld-unit/seedS/directions``)::

    latentdirs compare --generator shapes3d -k 10 --seeds 0,1,2 --out runs/compare-shapes3d ...
    python benchmarks/ld_levers.py runs/compare-shapes3d --levers orthogonalized,steps --long-steps 4500

Results: ``benchmarks/results/ld_levers_shapes3d.json`` (appended per cell; a rerun skips
cells already there) and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import latentdirs
from latentdirs import DirectionSet
from latentdirs.evaluation.ground_truth import ground_truth_dataset, ground_truth_scores

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "modularity", "encoder_r2")


def lowdin(matrix: torch.Tensor) -> torch.Tensor:
    """The orthonormal columns closest to ``matrix`` (Frobenius): U V^T of its SVD."""
    u, _, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    return (u @ vh).to(matrix.dtype)


def directions_for(lever: str, seed: int, args, generator) -> tuple[DirectionSet, float]:
    tick = time.perf_counter()
    if lever == "orthogonalized":
        found = DirectionSet.load(Path(args.compare_dir) / "ld-unit" / f"seed{seed}" / "directions")
        return DirectionSet(lowdin(found.matrix), meta={**found.meta, "lever": lever}), 0.0
    if lever == "distinct":
        found = DirectionSet.load(Path(args.compare_dir) / "ld-unit-K32" / f"seed{seed}" / "discovery" / "directions")
        return found.top(args.k, max_cosine=args.max_cosine), 0.0
    if lever in ("sefa-start", "sefa-start-lambda"):
        basis = latentdirs.sefa(generator, generator.latent_dim).matrix  # (d, d) orthonormal, best first
        rotated = latentdirs.wrap(lambda z: generator(z @ basis.t()), latent_dim=generator.latent_dim,
                                  name="shapes3d-in-sefa-basis")
        result = latentdirs.discover(rotated, num_directions=args.k, parametrization="ortho", reconstructor="lenet",
                                     steps=args.steps, batch_size=args.batch_size, seed=seed, lr=args.lr,
                                     shift_weight=args.shift_weight if lever == "sefa-start-lambda" else 0.25,
                                     progress=False)
        found = result.directions
        return DirectionSet(basis @ found.matrix, found.scores, meta={**found.meta, "lever": lever}), \
            time.perf_counter() - tick
    options = {"steps": args.long_steps} if lever == "steps" else {"shift_weight": args.shift_weight}
    result = latentdirs.discover(generator, num_directions=args.k, parametrization="unit", reconstructor="lenet",
                                 batch_size=args.batch_size, seed=seed, lr=args.lr, progress=False,
                                 **{"steps": args.steps, **options})
    return result.directions, time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compare_dir", help="a `latentdirs compare` folder on shapes3d (its ld-unit cells are reused)")
    parser.add_argument("--levers", default="orthogonalized,steps", help="comma list: orthogonalized, distinct, sefa-start, sefa-start-lambda, steps, lambda")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1500, help="LD steps of the comparison")
    parser.add_argument("--long-steps", type=int, default=4500, help="LD steps of the 'steps' lever")
    parser.add_argument("--shift-weight", type=float, default=1.0, help="lambda of the 'lambda' lever")
    parser.add_argument("--max-cosine", type=float, default=0.5, help="|cosine| above which 'distinct' skips")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--gt-train", type=int, default=4000)
    parser.add_argument("--gt-steps", type=int, default=1000)
    parser.add_argument("--gt-eval", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--generator", default="shapes3d",
                        help="generator kind (the published rows: shapes3d-dcgan, the first shipped GAN)")
    parser.add_argument("--out", type=Path, default=RESULTS / "ld_levers_shapes3d.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = latentdirs.load_generator(args.generator)
    images, factors, _ = ground_truth_dataset(generator, args.gt_eval, seed=10_000)  # as `compare` draws them
    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    done = {(r["lever"], r["seed"]) for r in rows}
    for lever in args.levers.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if (lever, seed) in done:
                continue
            directions, find_seconds = directions_for(lever, seed, args, generator)
            if directions.num_directions > args.k:
                directions = directions.top(args.k)
            scores = ground_truth_scores(generator, directions, images, factors, num_train=args.gt_train,
                                         steps=args.gt_steps, batch_size=args.batch_size, image_size=32, seed=seed)
            gram = directions.matrix.t() @ directions.matrix
            off_diagonal = (gram - torch.diag(torch.diagonal(gram))).abs().max().item()
            row = {"lever": lever, "seed": seed, "find_seconds": round(find_seconds, 1),
                   "max_abs_cosine_between_directions": round(off_diagonal, 4),
                   **{key: scores[key] for key in KEYS}}
            rows.append(row)
            print(json.dumps(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                       "torch": torch.__version__, "rows": rows}, indent=1))
            tmp.replace(args.out)
    print("| lever | seeds | MIG | DCI-D | DCI-C | DCI-I | modularity | max cos between directions |")
    print("|---|---|---|---|---|---|---|---|")
    for lever in dict.fromkeys(r["lever"] for r in rows):
        mine = [r for r in rows if r["lever"] == lever]
        mean = {key: sum(r[key] for r in mine) / len(mine) for key in KEYS + ("max_abs_cosine_between_directions",)}
        print(f"| {lever} | {len(mine)} | {mean['mig']:.3f} | {mean['dci_disentanglement']:.3f} | "
              f"{mean['dci_completeness']:.3f} | {mean['dci_informativeness']:.3f} | {mean['modularity']:.3f} | "
              f"{mean['max_abs_cosine_between_directions']:.2f} |")


if __name__ == "__main__":
    main()
