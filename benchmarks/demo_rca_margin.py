"""RCA margin of the demo's LD over random and coordinate directions at the tests' reduced settings.

tests/test_demo.py asserts, at seed 0, that LD's RCA beats the better baseline by a margin; this
measures that margin over several seeds so the asserted one is below every seed's (not flaky).
The settings here are those of the two tests; keep them equal.

    python benchmarks/demo_rca_margin.py --seeds 5           # -> benchmarks/results/demo_rca_margin.json
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

# The setting of test_demo_runs_end_to_end_in_a_reduced_setting (planted, the paper's loss). On the shipped GAN no
# setting of seconds separates the sets (at k = 4, 20 LD and 100 RCA steps every set stayed near chance: seed 0
# LD 0.275, random 0.275, axes 0.306); "shipped" here is that setting, for the record, and the slow test runs the
# demo at its own size.
SETTINGS = {
    "planted": dict(generator="planted", preset="short", num_directions=8, steps=400, batch_size=16, rca_steps=150,
                    gt_train=64, gt_steps=4, gt_eval=200),
    "shipped": dict(generator="shapes3d", preset="demo-disentangle", num_directions=4, steps=20, batch_size=16,
                    rca_steps=100, gt_train=64, gt_steps=4, gt_eval=100, name_latents=4),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default: %(default)s)")
    parser.add_argument("--settings", default="planted", help="which (default: %(default)s)")
    parser.add_argument("--out", default="benchmarks/results/demo_rca_margin.json", help="JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)  # as the tests run
    from latentdirs.demo import run_demo
    from latentdirs.discovery import preset
    from latentdirs.evaluation import ground_truth, metrics
    from latentdirs.runs import cpu_model
    ground_truth.all_metrics = functools.partial(metrics.all_metrics, predictor="forest")  # as tests/conftest.py
    out = {"machine": cpu_model(), "torch": torch.__version__, "settings": SETTINGS, "runs": {}}
    for name in args.settings.split(","):
        options = dict(SETTINGS[name])
        generator, preset_name = options.pop("generator"), options.pop("preset")
        discovery = {k: options.pop(k) for k in ("num_directions", "steps", "batch_size")}
        rows = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                tick = time.process_time()
                report = run_demo(generator, preset(preset_name, seed=seed, **discovery), runs_dir=tmp, progress=False,
                                  **options)
                rca = {m: json.loads((report.parent / "methods" / m / "result.json").read_text())["rca"]
                       for m in ("ld", "random", "identity")}
            rows.append({"seed": seed, **rca, "margin": rca["ld"] - max(rca["random"], rca["identity"]),
                         "cpu_seconds": round(time.process_time() - tick, 1)})
            print(name, rows[-1], flush=True)
        out["runs"][name] = {"per_seed": rows, "min_margin": min(r["margin"] for r in rows)}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
