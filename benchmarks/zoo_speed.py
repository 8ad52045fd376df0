"""Speed of the zoo GANs on CPU: generator images per second and seconds per LD step.

Per zoo generator (weights from the user cache; the first run fetches them): ``G(z)`` without
autograd at ``--batch`` images, and one real ``latentdirs.discovery.train_step`` with the
``demo`` preset (K = 16, 32 pairs, LeNet reconstructor, Adam), i.e. a step of
``latentdirs demo --generator NAME``. One thread; the clock is process CPU time (the machine is
shared, wall time would measure the other jobs); the median over ``--rounds`` rounds.
Results go to ``benchmarks/results/zoo_speed_cpu.json`` and a Markdown table is printed.

    python benchmarks/zoo_speed.py                          # every zoo generator
    python benchmarks/zoo_speed.py --names digiface-dcgan --rounds 10
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(name: str, batch: int, rounds: int) -> dict:
    import latentdirs
    from latentdirs.discovery import PRESETS, _Trainable, sample_pairs, train_step
    from latentdirs.directions import DirectionMatrix
    from latentdirs.reconstructors import make_reconstructor
    gen = latentdirs.load_generator(name)
    rng = torch.Generator().manual_seed(0)
    cfg = dataclasses.replace(PRESETS["demo"], channels_last=True)  # what discover() picks on CPU
    recon = make_reconstructor(cfg.reconstructor, gen.image_shape, cfg.num_directions).to(memory_format=torch.channels_last)
    model = _Trainable(DirectionMatrix(gen.latent_dim, cfg.num_directions, cfg.parametrization), recon, gen, True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def forward():
        with torch.inference_mode():
            gen(gen.sample_latents(batch, generator=rng))

    def step():
        z, index, shift = sample_pairs(gen, cfg, cfg.batch_size, rng, torch.device("cpu"))
        train_step(model, gen, optimizer, cfg, z, index, shift)

    forward(), step()  # warm-up
    times = {"forward": [], "step": []}
    for _ in range(rounds):
        times["forward"].append(cpu_seconds(forward))
        times["step"].append(cpu_seconds(step))
    forward_s = statistics.median(times["forward"])
    return {"name": name, "image_size": gen.image_shape[-1], "batch": batch, "forward_s": forward_s,
            "images_per_s": batch / forward_s, "ld_step_s": statistics.median(times["step"]),
            "ld_step_pairs": cfg.batch_size, "num_directions": cfg.num_directions, "reconstructor": cfg.reconstructor}


def main() -> None:
    from latentdirs.generators import zoo
    from latentdirs.runs import atomic_write_text, cpu_model
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(zoo.ZOO), choices=list(zoo.ZOO))
    parser.add_argument("--batch", type=int, default=32, help="images per generator forward")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "zoo_speed_cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(name, args.batch, args.rounds) for name in args.names]
    record = {"cpu": cpu_model(), "threads": 1, "torch": torch.__version__, "clock": "process CPU time",
              "rounds": args.rounds, "rows": rows}
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print(f"CPU: {record['cpu']}, 1 thread, median of {args.rounds} rounds (process CPU time)\n")
    print("| generator | image | G(z) images/s (batch %d) | s per LD step (demo preset: K=16, 32 pairs) |" % args.batch)
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['image_size']} px | {r['images_per_s']:.0f} | {r['ld_step_s']:.3f} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
