"""End to end saliency on the shipped fade GAN, CPU only, one command.

    nice -n 10 python benchmarks/saliency_e2e.py            # ~30-40 min on one busy core

1. discover K directions on ``shapes3d-fade`` (the shapes3d DCGAN trained with the
   background_fade factor) with ``latentdirs.discover``: nothing says which factor is which;
2. rank them with ``latentdirs.saliency.rank_directions`` (also a random basis, as a baseline);
3. stream synthetic (G(z), mask) pairs from the pick and train the U-Net;
4. evaluate on held-out procedural scenes rendered with another seed, fade = 0, with their
   TRUE object masks, which no step above ever saw: MAE, max F (beta^2 = 0.3), IoU;
5. judge the synthetic masks themselves (no truth exists for a generated image):
   a) the threshold rule on ideal fades: IoU of threshold(render(scene, fade = 1)) against the
      renderer's true mask, an upper bound for any direction;
   b) a reference U-Net trained on TRUE masks of real renders (other seeds) segments the generated
      images; the IoU of each synthetic mask against that reference prediction is reported
      (the reference's own held-out IoU says how far to trust it).

Writes ``benchmarks/results/saliency_e2e.json`` and ``docs/images/saliency_examples.png``
(image | U-Net | truth on held-out scenes) and ``docs/images/saliency_ranking.png``.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def render_pairs(folder: Path, num: int, seed: int, fade_level: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Procedural scenes with true object masks as PNG pairs (fade fixed, or drawn when None)."""
    from latentdirs.data.shapes3d import render, sample_factors
    from latentdirs.saliency.masks import save_png
    factors = sample_factors(num, seed, with_fade=True)
    if fade_level is not None:
        factors[:, 6] = fade_level
    images, masks = render(factors)
    if folder is not None:
        for i in range(num):
            save_png(images[i], folder / "images" / f"{i:05d}.png")
            save_png(masks[i].astype(np.uint8) * 255, folder / "masks" / f"{i:05d}.png")
    return images, masks


def rule_iou_on_ideal_fades(num: int, seed: int, threshold: float) -> tuple[float, float]:
    """(IoU of threshold(render(scene, fade = 1)) against the scene's true mask, mean true object area)."""
    from latentdirs.data.shapes3d import FADE_SIZE, render, sample_factors
    from latentdirs.saliency.metrics import iou
    factors = sample_factors(num, seed, with_fade=True)
    factors[:, 6] = FADE_SIZE - 1
    images, masks = render(factors)
    rule = torch.from_numpy(images.astype(np.float32).mean(-1) / 255 < threshold)
    return iou(rule.float(), torch.from_numpy(masks).float()).mean().item(), float(masks.mean())


def real_batches(num: int, seed: int, batch_size: int):
    """Endless batches of real renders (all fade levels) with true masks, for the reference U-Net."""
    from latentdirs.data.shapes3d import make_dataset, to_tensor
    images, _, masks = make_dataset(num, seed=seed, with_fade=True)
    x, m = to_tensor(images), torch.from_numpy(masks).float().unsqueeze(1)
    rng = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randint(len(x), (batch_size,), generator=rng)
        yield x[idx], m[idx]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator-path", default=None, help="shapes3d-fade weights folder (default: packaged)")
    p.add_argument("--num-directions", type=int, default=16)
    p.add_argument("--discover-steps", type=int, default=1000)
    p.add_argument("--discover-batch", type=int, default=32)
    p.add_argument("--discover-lr", type=float, default=1e-3)
    p.add_argument("--parametrization", default="unit")
    p.add_argument("--shifts", default="3,6,9", help="shift magnitudes the ranking tries")
    p.add_argument("--unet-steps", type=int, default=800)
    p.add_argument("--unet-batch", type=int, default=16)
    p.add_argument("--unet-size", type=int, default=32, help="the U-Net sees 32x32 (the paper resizes to 128)")
    p.add_argument("--unet-base", type=int, default=8, help="U-Net channels at full resolution")
    p.add_argument("--unet-lr", type=float, default=0.005)
    p.add_argument("--decay-every", type=int, default=250)
    p.add_argument("--temperature", type=float, default=10.0)
    p.add_argument("--min-area", type=float, default=0.02,
                   help="procedural objects cover 3.5-15%% of the image, so 0.05 would drop a fifth of them")
    p.add_argument("--max-area", type=float, default=0.5)
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--heldout", type=int, default=500, help="held-out real scenes (fade = 0) for the evaluation")
    p.add_argument("--reference-images", type=int, default=4000, help="real renders to train the reference U-Net")
    p.add_argument("--no-reference", action="store_true", help="skip the reference U-Net (saves ~1/3 of the time)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "runs" / "saliency_e2e"))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "saliency_e2e.json"))
    p.add_argument("--figure", default=str(ROOT / "docs" / "images" / "saliency_examples.png"))
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test of the script (minutes)")
    args = p.parse_args(argv)
    if args.quick:
        args.discover_steps, args.unet_steps, args.heldout, args.reference_images = 10, 10, 20, 200
        args.json = str(Path(args.out) / "quick.json")
        args.figure = str(Path(args.out) / "quick.png")
    torch.set_num_threads(args.threads)

    import latentdirs
    from latentdirs.directions import DirectionSet
    from latentdirs.saliency import UNetTrainConfig, evaluate, rank_directions, stream_pairs, train_unet
    from latentdirs.saliency.masks import threshold_masks
    from latentdirs.saliency.metrics import iou

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if not (out / "discover" / "config.json").exists():
            raise SystemExit(f"{out} exists and is not an earlier run of this benchmark; choose another --out")
        shutil.rmtree(out)  # an earlier run of this script: start afresh
    out.mkdir(parents=True, exist_ok=True)
    timings, t_start = {}, time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 1)
        print(f"[{name}] {timings[name]:.0f} s", flush=True)
        return now

    G = latentdirs.load_generator("shapes3d-fade", args.generator_path)
    t = time.perf_counter()
    found = latentdirs.discover(G, num_directions=args.num_directions, parametrization=args.parametrization,
                                steps=args.discover_steps, batch_size=args.discover_batch, seed=args.seed,
                                lr=args.discover_lr, out_dir=out / "discover", log_every=50)
    t = lap("discover", t)

    shifts = [float(s) for s in args.shifts.split(",")]
    rank_kw = dict(num_latents=32, shifts=shifts, seed=args.seed, threshold=args.threshold, min_area=args.min_area,
                   max_area=args.max_area)
    ranking = rank_directions(G, found.directions, **rank_kw)
    ranking.save(out / "find", G, found.directions, top=6)
    random_set = DirectionSet.random(G.latent_dim, args.num_directions, seed=args.seed)
    random_ranking = rank_directions(G, random_set, **rank_kw)
    pick = ranking.pick
    print(ranking.table(8))
    print(f"pick: direction {pick.index} shift {pick.signed_shift:+g} score {pick.score:.3f}", flush=True)
    t = lap("rank", t)

    h = found.directions[pick.index]
    stats: dict = {}
    stream = stream_pairs(G, h, pick.signed_shift, args.unet_batch, seed=args.seed + 1, threshold=args.threshold,
                          min_area=args.min_area, max_area=args.max_area, stats=stats)
    config = UNetTrainConfig(steps=args.unet_steps, batch_size=args.unet_batch, lr=args.unet_lr,
                         decay_every=args.decay_every, temperature=args.temperature, base_channels=args.unet_base,
                         size=args.unet_size, seed=args.seed, log_every=25)
    unet = train_unet(stream, config, out_dir=out / "unet", progress=True,
                      meta={"generator": G.describe(), "direction": pick.index, "shift": pick.signed_shift})
    t = lap("train_unet", t)

    heldout = out / "heldout"
    render_pairs(heldout, args.heldout, seed=20_241 + args.seed, fade_level=0)
    result = evaluate(unet, heldout, out_dir=out / "eval", figure_rows=8)
    t = lap("evaluate", t)

    # Synthetic-mask quality.
    rule_iou, true_area = rule_iou_on_ideal_fades(1000, seed=777 + args.seed, threshold=args.threshold)
    z = G.sample_latents(512, generator=torch.Generator().manual_seed(99), device="cpu")
    with torch.no_grad():
        gen_images = G(z)
        synthetic = threshold_masks(G.shifted(z, pick.signed_shift * h), args.threshold).float()
    areas = synthetic.flatten(1).mean(1)
    kept = (areas >= args.min_area) & (areas <= args.max_area)
    quality = {"rule_iou_on_ideal_fades": rule_iou, "kept_fraction": kept.float().mean().item(),
               "mean_mask_area": areas[kept].mean().item() if kept.any() else 0.0,
               "true_mean_object_area_of_renders": true_area,
               "synthetic_acceptance_in_training": stats["kept"] / max(stats["drawn"], 1)}
    reference = None
    if not args.no_reference:
        ref_unet = train_unet(real_batches(args.reference_images, seed=31_337 + args.seed, batch_size=args.unet_batch),
                              config, out_dir=out / "reference_unet", progress=True, meta={"data": "true masks"})
        reference = evaluate(ref_unet, heldout, out_dir=out / "eval_reference", figure_rows=4)
        ref_pred = ref_unet.predict(gen_images)[:, 0]
        quality["iou_vs_reference_unet"] = iou(synthetic[kept], ref_pred[kept]).mean().item()
        quality["iou_vs_reference_unet_all"] = iou(synthetic, ref_pred).mean().item()
        t = lap("reference", t)
    timings["total"] = round(time.perf_counter() - t_start, 1)

    report = {
        "what": "saliency end to end on the shapes3d-fade GAN (docs/saliency.md)",
        "generator": G.describe(),
        "discovery": {"num_directions": args.num_directions, "parametrization": args.parametrization,
                      "steps": args.discover_steps, "batch_size": args.discover_batch, "lr": args.discover_lr,
                      "final_accuracy": found.accuracy},
        "pick": pick.as_dict(),
        "ranking_top": [c.as_dict() for c in ranking.per_direction()[:6]],
        "random_basis_best": random_ranking.pick.as_dict(),
        "ranking_settings": ranking.settings,
        "unet": {"steps": args.unet_steps, "batch_size": args.unet_batch, "lr": args.unet_lr,
                 "input_size": args.unet_size, "base_channels": args.unet_base,
                 "decay_every": args.decay_every, "decay": 0.2, "temperature": args.temperature,
                 "min_area": args.min_area, "max_area": args.max_area, "threshold": args.threshold},
        "heldout": {"num_images": args.heldout, "seed": 20_241 + args.seed, "fade": 0,
                    "note": "rendered procedural scenes with true masks, never seen by any step"},
        "result": {k: result[k] for k in ("mae", "max_f", "max_f_threshold", "iou")},
        "synthetic_mask_quality": quality,
        "reference_unet_on_true_masks": None if reference is None else
        {k: reference[k] for k in ("mae", "max_f", "iou")},
        "seconds": timings, "threads": args.threads, "torch": torch.__version__,
        "machine": platform.machine(), "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "eval" / "examples.png", args.figure)
    shutil.copy(out / "find" / "ranking.png", Path(args.figure).with_name(
        "saliency_ranking.png" if not args.quick else "quick_ranking.png"))
    print(json.dumps({"pick": report["pick"], "result": report["result"], "quality": quality,
                      "reference": report["reference_unet_on_true_masks"], "seconds": timings}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
