"""CPU seconds per train-gan step, fp32 against bf16 autocast (``--amp``), in one run.

Runs the real training loop (``latentdirs.gan.train.train_gan``) for a few steps per setting in
a temporary folder, on one thread, and reads the CPU time per step from its metrics log (the
first logged window, which includes start-up, is skipped). Settings alternate over ``--repeats``
rounds so that load on a shared machine hits both alike; the median is reported.

    python benchmarks/gan_step_speed.py                      # dcgan-w, channels-last, 100 steps
    python benchmarks/gan_step_speed.py --architecture dcgan-up --steps 60

Results: ``benchmarks/results/gan_step_speed.json`` (with the CPU model) and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from latentdirs.gan.train import ARCHITECTURES, GANTrainConfig, train_gan
from latentdirs.runs import atomic_write_text, cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds_per_step(config: GANTrainConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        train_gan(config, tmp, resume=False, progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]
    return (last["cpu_seconds"] - first["cpu_seconds"]) / (last["step"] - first["step"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="dcgan-w")
    parser.add_argument("--steps", type=int, default=100, help="steps per measurement (the first 20 are skipped)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "gan_step_speed.json")
    args = parser.parse_args(argv)
    if args.steps <= 20:
        parser.error("--steps must be > 20 (the first logged window of 20 steps is skipped)")
    torch.set_num_threads(1)

    times: dict[str, list[float]] = {"fp32": [], "amp": []}
    for _ in range(args.repeats):
        for name in times:
            config = GANTrainConfig(architecture=args.architecture, steps=args.steps, batch_size=args.batch_size,
                                 num_train_images=256, log_every=20, sample_every=10**9,
                                 checkpoint_every=10**9, channels_last=not args.no_channels_last,
                                 amp=name == "amp", threads=1)
            times[name].append(cpu_seconds_per_step(config))
    fp32, amp = statistics.median(times["fp32"]), statistics.median(times["amp"])
    if min(fp32, amp) <= 0:
        raise SystemExit(f"the measured window was too short to time (fp32 {fp32} s, amp {amp} s per step): "
                         "raise --steps or --batch-size")
    result = {"architecture": args.architecture, "batch_size": args.batch_size, "steps": args.steps,
              "channels_last": not args.no_channels_last, "threads": 1, "machine": cpu_model(),
              "torch": torch.__version__, "cpu_seconds_per_step": times,
              "median_fp32": round(fp32, 4), "median_amp": round(amp, 4), "speedup": round(fp32 / amp, 2)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"| {args.architecture}, batch {args.batch_size}, {cpu_model()} | fp32 | amp (bf16) |\n|---|---|---|\n"
          f"| CPU s / step (median of {args.repeats}) | {fp32:.3f} | {amp:.3f} |\n\nspeed-up {fp32 / amp:.2f}x")


if __name__ == "__main__":
    main()
