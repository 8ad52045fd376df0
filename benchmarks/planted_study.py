"""Discovered vs random vs coordinate directions on the planted generator: RCA and the
recovery of the true factor directions, plus the ablations of docs/planted.md.

Recovery of a direction set H: for each true factor direction f_i, max_k |cos(f_i, h_k)|
(``latentdirs.directions.best_cosines``). Two diagnostics split a poor recovery into its
causes: ``in_subspace`` (mean norm of each found direction's projection on the factor
subspace; 1 = no leak into nuisance dimensions) and ``recovery_within`` (recovery after
projecting the found directions onto that subspace; low = rotated inside it).

Examples::

    python benchmarks/planted_study.py --quick              # main table only, ~10 min on 1 CPU core
    python benchmarks/planted_study.py                      # main table + every ablation (hours)
    python benchmarks/planted_study.py --only ablation-nuisance ablation-k
    python benchmarks/planted_study.py --list               # the trials and their settings

Results are appended to ``benchmarks/results/planted_study[_quick].json`` as each trial
finishes (a rerun skips the trials already there; ``--fresh`` starts over) and the Markdown
tables are rewritten to ``benchmarks/results/planted_study[_quick].md``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import latentdirs
from latentdirs import DirectionSet
from latentdirs.directions import best_cosines
from latentdirs.generators.planted import FACTOR_NAMES

RESULTS = Path(__file__).resolve().parent / "results"

# The recommended discovery settings on the default planted generator (docs/planted.md).
DEFAULT_DISCOVERY = {"num_directions": 5, "parametrization": "ortho", "steps": 1000, "lr": 3e-3,
                     "shift_weight": 0.25, "batch_size": 128}


def trials(quick: bool) -> list[dict]:
    """Every trial: a name, a group (one Markdown table each), generator and discovery options."""
    steps = 600 if quick else DEFAULT_DISCOVERY["steps"]
    base = {**DEFAULT_DISCOVERY, "steps": steps}
    out = []

    def add(group, name, generator=None, rca=False, seeds=(0,), **discovery):
        for seed in seeds:
            out.append({"group": group, "name": name if len(seeds) == 1 else f"{name} (seed {seed})",
                        "generator": generator or {}, "discovery": {**base, **discovery, "seed": seed},
                        "rca": rca})

    # Main table: discovered vs random vs coordinate at the recommended settings.
    add("main", "ld ortho K=5", rca=True)
    if quick:
        return out
    add("main-k10", "ld unit K=10", rca=True, num_directions=10, parametrization="unit")
    # What makes recovery work or fail: one knob at a time around the main settings.
    for nu in (0.0, 0.02, 0.05):
        add("ablation-nuisance", f"nuisance {nu}, unit K=10", generator={"nuisance_strength": nu},
            num_directions=10, parametrization="unit")
        add("ablation-nuisance", f"nuisance {nu}, ortho K=5", generator={"nuisance_strength": nu})
    for response in ("linear", "saturating"):
        for par, k in (("ortho", 5), ("unit", 10)):
            add("ablation-response", f"{response}, {par} K={k}", generator={"response": response},
                num_directions=k, parametrization=par)
    for k in (3, 5, 8, 10, 16):
        add("ablation-k", f"ortho K={k}", num_directions=k)
    for k in (5, 10, 20):
        add("ablation-k", f"unit K={k}", num_directions=k, parametrization="unit")
    for par in ("unit", "ortho", "cayley"):
        add("ablation-parametrization", f"{par} K=5", parametrization=par)
    for lr in (1e-4, 3e-4, 1e-3, 3e-3):
        add("ablation-lr", f"ortho K=5 lr={lr:g}", lr=lr)
    for lam in (0.0, 0.25, 1.0, 2.0):
        add("ablation-lambda", f"ortho K=5 lambda={lam:g}", shift_weight=lam)
    for n in (500, 1500, 3000):
        add("ablation-steps", f"ortho K=5 steps={n}", steps=n)
    return out


def subspace_diagnostics(matrix: torch.Tensor, truth: torch.Tensor) -> dict:
    """Recovery, per-factor recovery, leak out of the factor subspace, recovery inside it."""
    per_factor = best_cosines(matrix, truth)
    unit = matrix / matrix.norm(dim=0, keepdim=True).clamp_min(1e-12)
    inside = truth @ (truth.t() @ unit)  # projection on the factor subspace (truth is orthonormal)
    within = best_cosines(inside, truth)
    return {"recovery": per_factor.mean().item(), "recovery_per_factor": per_factor.tolist(),
            "in_subspace": inside.norm(dim=0).mean().item(), "recovery_within": within.mean().item()}


def fixed_basis(gen, kind: str, seed: int = 0) -> torch.Tensor:
    """Frozen (d, 5) bases for the preference probe: the factor directions themselves, the
    factor subspace under a random rotation, or 45-degree mixes of factor pairs."""
    f = gen.factor_directions()
    if kind == "factors":
        return f
    if kind == "rotated":
        g = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(f.shape[1], f.shape[1], generator=g, dtype=torch.float64))
        return f @ (q * torch.sign(torch.diagonal(r))).float()
    if kind == "pairs":  # (x+y, x-y, size+hue, size-hue, background)
        m = torch.zeros(5, 5)
        m[0, 0] = m[1, 0] = m[0, 1] = m[2, 2] = m[3, 2] = m[2, 3] = 2 ** -0.5
        m[1, 1] = m[3, 3] = -2 ** -0.5
        m[4, 4] = 1.0
        return f @ m
    raise ValueError(f"unknown basis {kind!r}")


def run_probe(trial: dict) -> dict:
    """Train R alone against a frozen basis: how easy the loss finds it (no A is learned)."""
    from latentdirs.discovery import DiscoveryConfig, reconstructor_accuracy
    gen = latentdirs.load_generator("planted", **trial["generator"])
    opts = {k: v for k, v in trial["discovery"].items() if k != "parametrization"}
    matrix = fixed_basis(gen, trial["basis"], seed=opts["seed"])
    start = time.perf_counter()
    res = latentdirs.discover(gen, progress=False, importance_latents=0, log_every=100, fixed_matrix=matrix,
                              **{**opts, "num_directions": matrix.shape[1]})
    cfg = DiscoveryConfig(num_directions=matrix.shape[1], batch_size=opts["batch_size"], seed=opts["seed"])
    last = res.history[-3:]  # mean of the last 300 steps: less noisy than one window
    return {**trial, "seconds_discovery": round(time.perf_counter() - start, 1),
            "heldout_accuracy": reconstructor_accuracy(gen, res.direction_matrix, res.reconstructor, cfg,
                                                       num_batches=20),
            "train_loss": sum(h["loss"] for h in last) / len(last),
            "train_accuracy": sum(h["accuracy"] for h in last) / len(last),
            "shift_error": sum(h["shift_error"] for h in last) / len(last),
            "accuracy_curve": [(h["step"], round(h["accuracy"], 3)) for h in res.history]}


def run_trial(trial: dict, rca_steps: int | None = None) -> dict:
    if "basis" in trial:
        return run_probe(trial)
    gen = latentdirs.load_generator("planted", **trial["generator"])
    truth = gen.factor_directions()
    opts = dict(trial["discovery"])
    k, seed, d = opts["num_directions"], opts["seed"], gen.latent_dim
    start = time.perf_counter()
    found = latentdirs.discover(gen, progress=False, importance_latents=0, log_every=100, **opts)
    record = {**trial, "seconds_discovery": round(time.perf_counter() - start, 1),
              "train_accuracy": found.accuracy,
              "accuracy_curve": [(h["step"], round(h["accuracy"], 3)) for h in found.history],
              "directions": subspace_diagnostics(found.directions.matrix, truth)}
    baselines = {}
    if k <= d:
        baselines = {"random": DirectionSet.random(d, k, seed=seed), "coordinate": DirectionSet.identity(d, k)}
    for name, ds in baselines.items():
        record[name] = subspace_diagnostics(ds.matrix, truth)
    if trial["rca"]:
        # Same K, steps, seed, lr and batch for R in every arm; only A differs.
        rca_opts = {"steps": rca_steps or opts["steps"], "seed": seed, "lr": opts["lr"],
                    "batch_size": opts["batch_size"], "shift_weight": opts["shift_weight"]}
        for name, ds in {"directions": found.directions, **baselines}.items():
            t0 = time.perf_counter()
            record[name]["rca"] = latentdirs.rca(gen, ds, **rca_opts)
            record[name]["seconds_rca"] = round(time.perf_counter() - t0, 1)
    return record


def _fmt(x) -> str:
    return "" if x is None else f"{x:.2f}"


def markdown(records: list[dict]) -> str:
    lines = []
    main = [r for r in records if r["rca"]]
    if main:
        lines += ["## RCA and recovery: discovered vs random vs coordinate", "",
                  "| trial | directions | RCA | recovery | " + " | ".join(FACTOR_NAMES) + " | in subspace | recovery within |",
                  "|---|---|---|---|" + "---|" * len(FACTOR_NAMES) + "---|---|"]
        for r in main:
            for arm in ("directions", "random", "coordinate"):
                if arm not in r:
                    continue
                m = r[arm]
                label = "discovered" if arm == "directions" else arm
                lines.append(f"| {r['name']} | {label} | {_fmt(m.get('rca'))} | {_fmt(m['recovery'])} | "
                             + " | ".join(_fmt(c) for c in m["recovery_per_factor"])
                             + f" | {_fmt(m['in_subspace'])} | {_fmt(m['recovery_within'])} |")
        lines.append("")
    groups = sorted({r["group"] for r in records if r["group"] != "main"})
    for group in groups:
        lines += [f"## {group}", "",
                  "| trial | train acc | recovery | " + " | ".join(FACTOR_NAMES)
                  + " | in subspace | recovery within | random recovery | steps | s |",
                  "|---|---|---|" + "---|" * len(FACTOR_NAMES) + "---|---|---|---|---|"]
        for r in [r for r in records if r["group"] == group]:
            m = r["directions"]
            rnd = r.get("random", {}).get("recovery")
            lines.append(f"| {r['name']} | {_fmt(r['train_accuracy'])} | {_fmt(m['recovery'])} | "
                         + " | ".join(_fmt(c) for c in m["recovery_per_factor"])
                         + f" | {_fmt(m['in_subspace'])} | {_fmt(m['recovery_within'])} | {_fmt(rnd)} | "
                         f"{r['discovery']['steps']} | {r['seconds_discovery']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="main table only, 600 steps (default: off)")
    parser.add_argument("--only", nargs="+", metavar="GROUP", default=None,
                        help="run only these groups: main, main-k10, ablation-nuisance, ablation-response, ablation-k, "
                             "ablation-parametrization, ablation-lr, ablation-lambda, ablation-steps (default: all)")
    parser.add_argument("--rca-steps", type=int, default=None,
                        help="reconstructor steps for RCA (default: the trial's discovery steps)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: benchmarks/results/planted_study[_quick].json)")
    parser.add_argument("--fresh", action="store_true", help="ignore results already in the JSON file")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    todo = [t for t in trials(args.quick) if args.only is None or t["group"] in args.only]
    if args.list:
        for t in todo:
            print(t["group"], "|", t["name"], "|", t["generator"], t["discovery"], "rca" if t["rca"] else "")
        return
    out = args.out or RESULTS / f"planted_study{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [] if args.fresh or not out.exists() else json.loads(out.read_text())
    key = lambda t: json.dumps([t["group"], t["name"], t["generator"], t["discovery"], t["rca"]], sort_keys=True)
    done = {key(r) for r in records}
    for i, trial in enumerate(todo):
        if key(trial) in done:
            continue
        print(f"[{i + 1}/{len(todo)}] {trial['group']}: {trial['name']}", flush=True)
        record = run_trial(trial, args.rca_steps)
        m = record["directions"]
        print(f"    recovery {m['recovery']:.2f} (random {record.get('random', {}).get('recovery', float('nan')):.2f}),"
              f" in subspace {m['in_subspace']:.2f}, within {m['recovery_within']:.2f},"
              f" train acc {record['train_accuracy']:.2f}"
              + (f", RCA {m['rca']:.2f} / random {record['random']['rca']:.2f} / coordinate "
                 f"{record['coordinate']['rca']:.2f}" if trial["rca"] else ""), flush=True)
        records.append(record)
        out.write_text(json.dumps(records, indent=1))
        out.with_suffix(".md").write_text(markdown(records))
    out.with_suffix(".md").write_text(markdown(records))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
