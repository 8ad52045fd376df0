"""Does bf16 autocast (``amp=True``) change what LD finds? Step time and RCA, fp32 vs amp, per seed.

Both variants train the same preset with the same seed; RCA of each found set is then measured
the same way (fp32, fresh reconstructor, held-out pairs), so only the training precision differs.
The step time is the process's CPU time per step over a short interleaved run (1 thread).

    python benchmarks/amp_quality.py                                   # shapes3d, 3 seeds, 400 steps
    python benchmarks/amp_quality.py --steps 1500 --rca-steps 600      # the short preset's budget
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if "bf16" in f or "amx" in f)
    except OSError:
        pass
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="shapes3d", help="generator kind (default: %(default)s)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=400, help="LD steps per run (default: %(default)s)")
    parser.add_argument("--rca-steps", type=int, default=300, help="reconstructor steps per RCA (default: %(default)s)")
    parser.add_argument("--timing-steps", type=int, default=20, help="steps per timing round (default: %(default)s)")
    parser.add_argument("--out", default="benchmarks/results/amp_quality.json", help="JSON report (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import latentdirs
    from latentdirs.runs import cpu_model
    generator = latentdirs.load_generator(args.generator)
    preset = latentdirs.PRESETS["short"]
    seconds = {False: [], True: []}
    for round_ in range(3):  # interleaved, median reported: the machine is shared
        for amp in (False, True):
            tick = time.process_time()
            latentdirs.discover(generator, preset, steps=args.timing_steps, amp=amp, progress=False, seed=round_)
            seconds[amp].append((time.process_time() - tick) / args.timing_steps)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        found = {amp: latentdirs.discover(generator, preset, steps=args.steps, amp=amp, progress=False,
                                          seed=seed).directions for amp in (False, True)}
        row = {"seed": seed}
        for amp, directions in found.items():
            row["rca_amp" if amp else "rca_fp32"] = latentdirs.rca(  # as the demo measures it
                generator, directions, steps=args.rca_steps, seed=seed, batch_size=preset.batch_size, lr=preset.lr)
        cosines = (found[False].matrix * found[True].matrix).sum(0).abs()
        row["mean_abs_cosine_fp32_vs_amp"] = cosines.mean().item()
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    report = {"cpu": cpu_model(), "bf16_flags": cpu_flags(), "torch": torch.__version__,
              "generator": args.generator, "steps": args.steps, "rca_steps": args.rca_steps,
              "cpu_seconds_per_step": {"fp32": sorted(seconds[False])[1], "amp": sorted(seconds[True])[1]},
              "runs": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    speed = report["cpu_seconds_per_step"]
    print(f"{report['cpu']} ({', '.join(report['bf16_flags']) or 'no bf16 flags'}): "
          f"{speed['fp32']:.3f} s/step fp32, {speed['amp']:.3f} amp ({speed['fp32'] / speed['amp']:.2f}x)")
    for r in rows:
        print(f"seed {r['seed']}: RCA fp32 {r['rca_fp32']:.3f}, amp {r['rca_amp']:.3f}, "
              f"|cos| fp32 vs amp {r['mean_abs_cosine_fp32_vs_amp']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
