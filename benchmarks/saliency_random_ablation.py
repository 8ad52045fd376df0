"""Ablation for docs/saliency.md: the same U-Net recipe, but the direction is picked from a
random orthonormal basis (no discovery), and from the shift alone along each top LD direction.

    nice -n 10 python benchmarks/saliency_random_ablation.py    # after benchmarks/saliency_e2e.py (uses its run)

Writes benchmarks/results/saliency_random_ablation.json.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    torch.set_num_threads(1)
    import latentdirs
    from latentdirs.directions import DirectionSet
    from latentdirs.saliency import UNetTrainConfig, evaluate, rank_directions, stream_pairs, train_unet
    run = ROOT / "runs" / "saliency_e2e"
    e2e = json.loads((ROOT / "benchmarks" / "results" / "saliency_e2e.json").read_text())
    G = latentdirs.load_generator("shapes3d-fade")
    u = e2e["unet"]
    config = UNetTrainConfig(steps=u["steps"], batch_size=u["batch_size"], lr=u["lr"], decay_every=u["decay_every"],
                         temperature=u["temperature"], base_channels=u["base_channels"], size=u["input_size"], seed=0,
                         log_every=25)
    found = DirectionSet.load(run / "discover")
    random_set = DirectionSet.random(G.latent_dim, found.num_directions, seed=0)
    rank_kw = dict(num_latents=32, shifts=e2e["ranking_settings"]["shifts"], seed=0, threshold=u["threshold"],
                   min_area=u["min_area"], max_area=u["max_area"])
    results = {}
    for name, directions in (("random_basis_pick", random_set), ("ld_runner_up", found)):
        ranking = rank_directions(G, directions, **rank_kw)
        pick = ranking.pick if name == "random_basis_pick" else ranking.per_direction()[1]
        start = time.perf_counter()
        stream = stream_pairs(G, directions[pick.index], pick.signed_shift, u["batch_size"], seed=1,
                              threshold=u["threshold"], min_area=u["min_area"], max_area=u["max_area"])
        unet = train_unet(stream, config, out_dir=run / f"ablation_{name}", progress=False)
        metrics = evaluate(unet, run / "heldout", out_dir=run / f"ablation_{name}" / "eval", progress=False)
        results[name] = {"pick": pick.as_dict(), **{k: metrics[k] for k in ("mae", "max_f", "iou")},
                         "seconds": round(time.perf_counter() - start, 1)}
        print(name, json.dumps(results[name]), flush=True)
    results["ld_pick_from_saliency_e2e"] = {"pick": e2e["pick"], **e2e["result"]}
    out = ROOT / "benchmarks" / "results" / "saliency_random_ablation.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
