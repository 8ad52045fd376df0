"""Seconds that SeFa and GANSpace take to find directions, against one LD step for scale.

SeFa is one eigen-decomposition of a (latent_dim x latent_dim) matrix; GANSpace samples N
latents, runs the early layers, a PCA and a least-squares fit, so its cost grows with N
(the original uses 300k). Each timing is the median over ``--rounds`` runs in this
process (1 thread); the first call of each is a warm-up and is not counted. Both wall
and CPU seconds are kept: on a shared machine the wall time mostly measures the neighbours.

    python benchmarks/closed_form.py                            # shipped shapes3d GAN (else planted)
    python benchmarks/closed_form.py --generator planted --samples 2000,20000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str):
    import latentdirs
    try:
        return latentdirs.load_generator(name)
    except (ValueError, FileNotFoundError) as exc:  # shapes3d weights not shipped in this checkout
        print(f"could not load {name} ({exc}); using the planted generator")
        return latentdirs.load_generator("planted")


def median_seconds(fn, rounds: int) -> dict[str, float]:
    fn()  # warm-up: first-call allocations and lazy imports
    wall, cpu = [], []
    for _ in range(rounds):
        tick, cpu_tick = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - tick)
        cpu.append(time.process_time() - cpu_tick)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="shapes3d", help="generator kind")
    parser.add_argument("-k", "--num-directions", type=int, default=10)
    parser.add_argument("--samples", default="2000,20000", help="GANSpace sample counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "closed_form_cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from latentdirs.closed_form import ganspace, sefa
    from latentdirs.discovery import DiscoveryConfig, train_step
    G = load(args.generator)
    k = args.num_directions
    rows = {"sefa (normalized)": median_seconds(lambda: sefa(G, k, normalize=True), args.rounds),
            "sefa (raw)": median_seconds(lambda: sefa(G, k, normalize=False), args.rounds)}
    for n in (int(s) for s in args.samples.split(",")):
        rows[f"ganspace N={n}"] = median_seconds(lambda: ganspace(G, k, num_samples=n), max(1, args.rounds // 2))

    # One LD step (batch 64, LeNet) for scale: LD needs thousands of them.
    import latentdirs
    found = latentdirs.discover(G, num_directions=k, steps=1, batch_size=64, progress=False, importance_latents=0)
    cfg = DiscoveryConfig(num_directions=k, batch_size=64)
    from latentdirs.discovery import _Trainable
    trainable = _Trainable(found.direction_matrix, found.reconstructor, G, False)
    optimizer = torch.optim.Adam(trainable.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    z = G.sample_latents(64, generator=g)
    index = torch.randint(k, (64,), generator=g)
    shift = torch.rand(64, generator=g) * 12 - 6
    rows["one LD step (batch 64)"] = median_seconds(
        lambda: train_step(trainable, G, optimizer, cfg, z, index, shift), args.rounds)

    for name, seconds in rows.items():
        print(f"{name:>26}: {seconds['cpu'] * 1000:10.1f} ms CPU {seconds['wall'] * 1000:10.1f} ms wall")
    record = {"generator": G.describe(), "num_directions": k, "threads": 1, "rounds": args.rounds,
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "seconds": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
