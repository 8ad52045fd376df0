"""Discovered vs random vs coordinate directions on the planted generator: RCA and the
recovery of the true factor directions, plus the ablations of docs/planted.md.

Recovery of a direction set H: for each true factor direction f_i, max_k |cos(f_i, h_k)|
(``latentdirs.directions.best_cosines``). Two diagnostics split a poor recovery into its
causes: ``in_subspace`` (mean norm of each found direction's projection on the factor
subspace; 1 = no leak into nuisance dimensions) and ``recovery_within`` (recovery after
projecting the found directions onto that subspace; low = rotated inside it).

The main table (docs/planted.md): unit-norm A, K = 10, 1000 steps, seeds 0-2, on the planted
generator with ``nuisance_jitter=1``; the probes train R alone against frozen bases of the
factor subspace, or start A at the true factors; the ablations change one knob at a time.

Examples::

    python benchmarks/planted_study.py --only main          # main table, ~16 min on 1 CPU thread
    python benchmarks/planted_study.py                      # everything, ~1 hour on 1 CPU thread
    python benchmarks/planted_study.py --only probe probe-start ablation-lambda
    python benchmarks/planted_study.py --geometry           # factors' image-change geometry, seconds
    python benchmarks/planted_study.py --list               # the trials and their settings
    python benchmarks/planted_study.py --quick              # main table, seed 0, 300 steps (smoke test, ~1 min)

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

# The main table's setting (docs/planted.md). Generator: nuisance_jitter = 1, so the 11
# nuisance dimensions move the factors in a z-dependent, inconsistent way (with the default 0
# they change nothing, and any direction is told apart by the noise-free renderer: RCA 0.99-1.00
# for discovered, random and coordinate alike). Discovery: K = 10 > 5 factors, as in the paper.
MAIN_GENERATOR = {"nuisance_jitter": 1.0}
NO_JITTER = {"nuisance_jitter": 0.0}
DEFAULT_DISCOVERY = {"num_directions": 10, "parametrization": "unit", "steps": 1000, "lr": 3e-3,
                     "shift_weight": 0.25, "batch_size": 128}
MAIN_SEEDS = (0, 1, 2)
# The ablations change one knob at a time from a main-table trial (seed 0), their reference row;
# "generator" changes are applied on top of MAIN_GENERATOR (ablation-toy-ortho5: on NO_JITTER).
ORTHO5 = {"num_directions": 5, "parametrization": "ortho"}
SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
ABLATIONS = {  # group: (reference main trial, [(name, changes)])
    "ablation-response": ("ld unit K=10", [("linear response", {"generator": {"response": "linear"}})]),
    "ablation-k": ("ld unit K=10", [("unit K=5", {"num_directions": 5}), ("unit K=20", {"num_directions": 20})]),
    "ablation-parametrization": ("ld unit K=10", [("ortho K=10", {"parametrization": "ortho"})]),
    "ablation-lambda": (("ld unit K=10", "ld unit K=10 (seed 1)", "ld unit K=10 (seed 2)"), [
        ("lambda=0", {"shift_weight": 0.0}), ("lambda=1", {"shift_weight": 1.0}),
        ("lambda=0", {"shift_weight": 0.0, "seeds": (1, 2)}), ("lambda=1", {"shift_weight": 1.0, "seeds": (1, 2)})]),
    "ablation-steps": ("ld unit K=10", [("steps=3000", {"steps": 3000})]),
    "ablation-toy": ("ld unit K=10", [
        ("factor_scales 0.5,0.75,1,1.5,2", {"generator": {"factor_scales": SCALES}}),
        ("nuisance_strength 0.05", {"generator": {"nuisance_strength": 0.05}})]),
    "ablation-jitter": (("ld unit K=10, nuisance_jitter 0", "ld unit K=10"), [("nuisance_jitter 0.5", {"generator": {"nuisance_jitter": 0.5}, "rca": True}),
                                         ("nuisance_jitter 2", {"generator": {"nuisance_jitter": 2.0}, "rca": True})]),
    "ablation-generator-seed": ("ld unit K=10", [(f"generator seed {s} (another Q)", {"generator": {"seed": s}})
                                                 for s in (1, 2)]),
    "ablation-toy-ortho5": ("ld ortho K=5, nuisance_jitter 0", [
        ("linear response", {"generator": {**NO_JITTER, "response": "linear"}, **ORTHO5}),
        ("factor_scales 0.5,0.75,1,1.5,2", {"generator": {**NO_JITTER, "factor_scales": SCALES}, **ORTHO5}),
        ("linear response, factor_scales 0.5,0.75,1,1.5,2",
         {"generator": {**NO_JITTER, "response": "linear", "factor_scales": SCALES}, **ORTHO5})]),
}
PROBE_BASES = ("factors", "rotated", "pairs")


def trials(quick: bool) -> list[dict]:
    """Every trial: a name, a group (one Markdown table each), generator and discovery options."""
    steps = 300 if quick else DEFAULT_DISCOVERY["steps"]
    base = {**DEFAULT_DISCOVERY, "steps": steps}
    out = []

    def add(group, name, generator=None, rca=False, seeds=(0,), basis=None, **discovery):
        for seed in seeds:
            trial = {"group": group, "name": name if len(seeds) == 1 else f"{name} (seed {seed})",
                     "generator": {**MAIN_GENERATOR, **(generator or {})},
                     "discovery": {**base, **discovery, "seed": seed}, "rca": rca}
            if basis is not None:
                trial["basis"] = basis
            out.append(trial)

    # Main table: discovered vs random vs coordinate (same K, steps, seed; only A differs).
    add("main", "ld unit K=10", rca=True, seeds=(0,) if quick else MAIN_SEEDS)
    if quick:
        return out
    # Without jitter RCA saturates, at K = 10 and at K = 5 = the number of factors (the first run).
    add("main", "ld unit K=10, nuisance_jitter 0", generator=NO_JITTER, rca=True)
    add("main", "ld ortho K=5, nuisance_jitter 0", generator=NO_JITTER, rca=True, steps=1000, **ORTHO5)
    # Preference probe: R alone against frozen 5-direction bases of the factor subspace.
    for basis in PROBE_BASES:
        add("probe", f"frozen basis: {basis}", basis=basis, num_directions=5)
    # Start at the truth: a generator whose factor directions are the first 5 coordinate axes,
    # where A starts (ortho: exp(0) = I); does LD keep them or drift away?
    add("probe-start", "ortho K=5 started at the true factors", generator={"aligned": True}, **ORTHO5)
    add("probe-start", "ortho K=5 started at the true factors, lambda=0", generator={"aligned": True},
        shift_weight=0.0, **ORTHO5)
    add("probe-start", "ortho K=5 started at the true factors, nuisance_jitter 0",
        generator={"aligned": True, **NO_JITTER}, **ORTHO5)
    add("probe-start", "ortho K=5 started at the true factors, lambda=1", generator={"aligned": True},
        shift_weight=1.0, **ORTHO5)
    add("probe-start", "ortho K=5 started at the true factors, 3000 steps", generator={"aligned": True},
        steps=3000, **ORTHO5)
    add("probe-start", "ortho K=5 started at a rotated factor basis", generator={"aligned": "rotated"}, **ORTHO5)
    add("probe-start", "ortho K=5 started at a rotated factor basis, 3000 steps", generator={"aligned": "rotated"},
        steps=3000, **ORTHO5)
    add("probe-start", "ortho K=5 started at the true factors, lambda=0, 3000 steps", generator={"aligned": True},
        shift_weight=0.0, steps=3000, **ORTHO5)
    add("probe-start", "ortho K=5 started at a rotated factor basis, lambda=0", generator={"aligned": "rotated"},
        shift_weight=0.0, **ORTHO5)
    for group, (_, variants) in ABLATIONS.items():
        for name, change in variants:
            change = dict(change)
            add(group, name, generator=change.pop("generator", None), **change)
    # The same probe with the classification loss alone (lambda = 0).
    for basis in PROBE_BASES:
        add("probe", f"frozen basis: {basis}, lambda=0", basis=basis, num_directions=5, shift_weight=0.0)
    # Linear response: no saturation, hue within +-2.4 rad; does the pull toward mixtures remain?
    for basis in ("factors", "rotated"):
        add("probe", f"frozen basis: {basis}, linear response", generator={"response": "linear"}, basis=basis,
            num_directions=5)
    add("probe-start", "ortho K=5 started at the true factors, linear response",
        generator={"aligned": True, "response": "linear"}, **ORTHO5)
    return out


def make_generator(options: dict):
    """The planted generator. Study-only option ``aligned``: True replaces its random rotation
    Q by the identity, so the true factor directions are the first five coordinate axes, where
    A starts (ortho: exp(0) = I; unit: the first K axes); "rotated" makes Q = diag(P, I) with
    P = the probe's rotation (:func:`random_rotation`) transposed, so A starts at the factor
    subspace under that rotation (the probe's "rotated" basis, recovery 0.74)."""
    options = dict(options)
    aligned = options.pop("aligned", False)
    gen = latentdirs.load_generator("planted", **options)
    if aligned:
        q = torch.eye(gen.latent_dim)
        if aligned == "rotated":
            q[:5, :5] = random_rotation(5, seed=0).t()
        with torch.no_grad():
            gen.rotation.copy_(q)
    return gen


def random_rotation(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def subspace_diagnostics(matrix: torch.Tensor, truth: torch.Tensor, eigen: torch.Tensor | None = None) -> dict:
    """Recovery, per-factor recovery, leak out of the factor subspace, recovery inside it, and
    (given ``eigen``, the eigenbasis of the factors' image-change Gram matrix, see
    :func:`change_geometry`) how well the set matches that basis instead of the factors."""
    per_factor = best_cosines(matrix, truth)
    unit = matrix / matrix.norm(dim=0, keepdim=True).clamp_min(1e-12)
    inside = truth @ (truth.t() @ unit)  # projection on the factor subspace (truth is orthonormal)
    within = best_cosines(inside, truth)
    out = {"recovery": per_factor.mean().item(), "recovery_per_factor": per_factor.tolist(),
           "in_subspace": inside.norm(dim=0).mean().item(), "recovery_within": within.mean().item()}
    if eigen is not None:
        out["recovery_eigen"] = best_cosines(matrix, eigen).mean().item()
        out["recovery_eigen_within"] = best_cosines(inside, eigen).mean().item()
    return out


def fixed_basis(gen, kind: str, seed: int = 0) -> torch.Tensor:
    """Frozen (d, 5) bases for the preference probe: the factor directions themselves, the
    factor subspace under a random rotation, or 45-degree mixes of factor pairs."""
    f = gen.factor_directions()
    if kind == "factors":
        return f
    if kind == "rotated":
        return f @ random_rotation(f.shape[1], seed)
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
    gen = make_generator(trial["generator"])
    opts = {k: v for k, v in trial["discovery"].items() if k != "parametrization"}
    matrix = fixed_basis(gen, trial["basis"], seed=opts["seed"])
    start = time.perf_counter()
    res = latentdirs.discover(gen, progress=False, importance_latents=0, log_every=100, fixed_matrix=matrix,
                              **{**opts, "num_directions": matrix.shape[1]})
    cfg = DiscoveryConfig(num_directions=matrix.shape[1], batch_size=opts["batch_size"], seed=opts["seed"])
    per_direction = heldout_per_direction(gen, res.direction_matrix, res.reconstructor, cfg)
    last = res.history[-3:]  # mean of the last 300 steps: less noisy than one window
    return {**trial, "seconds_discovery": round(time.perf_counter() - start, 1),
            "basis_recovery": best_cosines(matrix, gen.factor_directions()).mean().item(),
            "heldout_accuracy": reconstructor_accuracy(gen, res.direction_matrix, res.reconstructor, cfg,
                                                       num_batches=20),
            "train_loss": sum(h["loss"] for h in last) / len(last),
            "train_accuracy": sum(h["accuracy"] for h in last) / len(last),
            "shift_error": sum(h["shift_error"] for h in last) / len(last),
            "accuracy_curve": [(h["step"], round(h["accuracy"], 3)) for h in res.history], **per_direction}


@torch.no_grad()
def heldout_per_direction(gen, direction_matrix, reconstructor, cfg, num_batches: int = 20, seed: int = 10_000) -> dict:
    """Held-out accuracy and mean |eps - eps_hat| of R, per direction of the frozen basis."""
    from latentdirs.discovery import image_pairs, sample_pairs, step_rng
    reconstructor.eval()
    k, a = cfg.num_directions, direction_matrix.matrix()
    correct, error, count = torch.zeros(k), torch.zeros(k), torch.zeros(k)
    for b in range(num_batches):
        z, index, shift = sample_pairs(gen, cfg, cfg.batch_size, step_rng(seed, 0, b), gen.device)
        logits, predicted = reconstructor(image_pairs(gen, a, z, index, shift, gen(z), cfg.channels_last)[0])
        count += torch.bincount(index, minlength=k).float()
        correct += torch.bincount(index, weights=(logits.argmax(1) == index).float(), minlength=k)
        error += torch.bincount(index, weights=(predicted.reshape(-1) - shift).abs(), minlength=k)
    return {"heldout_accuracy_per_direction": (correct / count).tolist(),
            "heldout_shift_error_per_direction": (error / count).tolist()}


def run_trial(trial: dict, rca_steps: int | None = None) -> dict:
    if "basis" in trial:
        return run_probe(trial)
    gen = make_generator(trial["generator"])
    truth = gen.factor_directions()
    opts = dict(trial["discovery"])
    k, seed, d = opts["num_directions"], opts["seed"], gen.latent_dim
    geometry = change_geometry(trial["generator"])
    eigen = truth @ torch.tensor(geometry["eigenvectors"])
    start = time.perf_counter()
    found = latentdirs.discover(gen, progress=False, importance_latents=0, log_every=100, **opts)
    record = {**trial, "seconds_discovery": round(time.perf_counter() - start, 1),
              "train_accuracy": found.accuracy,
              "accuracy_curve": [(h["step"], round(h["accuracy"], 3)) for h in found.history],
              "directions": subspace_diagnostics(found.directions.matrix, truth, eigen)}
    record["directions"]["matrix"] = [[round(v, 5) for v in row] for row in found.directions.matrix.tolist()]
    baselines = {}
    if k <= d:
        baselines = {"random": DirectionSet.random(d, k, seed=seed), "coordinate": DirectionSet.identity(d, k)}
    for name, ds in baselines.items():
        record[name] = subspace_diagnostics(ds.matrix, truth, eigen)
    if trial["rca"]:
        # Same K, steps, seed, lr and batch for R in every arm; only A differs.
        rca_opts = {"steps": rca_steps or opts["steps"], "seed": seed, "lr": opts["lr"],
                    "batch_size": opts["batch_size"], "shift_weight": opts["shift_weight"]}
        for name, ds in {"directions": found.directions, **baselines}.items():
            t0 = time.perf_counter()
            record[name]["rca"] = latentdirs.rca(gen, ds, **rca_opts)
            record[name]["seconds_rca"] = round(time.perf_counter() - t0, 1)
    return record


# Jitter set explicitly: these rows were measured when the generator's default was nuisance_jitter = 0.
GEOMETRY_GENERATORS = {"saturating, nuisance_jitter 0": NO_JITTER,
                       "saturating, nuisance_jitter 1 (main, the default)": MAIN_GENERATOR,
                       "linear, nuisance_jitter 0": {**NO_JITTER, "response": "linear"},
                       "saturating, factor_scales 0.5,0.75,1,1.5,2, nuisance_jitter 0": {**NO_JITTER, "factor_scales": SCALES},
                       "linear, factor_scales 0.5,0.75,1,1.5,2, nuisance_jitter 0":
                           {**NO_JITTER, "response": "linear", "factor_scales": SCALES}}


def change_geometry(options: dict, shift: float = 2.0, num: int = 512, seed: int = 0) -> dict:
    """No training: the image changes D_i = G(z + shift f_i) - G(z) along the five true factor
    directions, over ``num`` latents. Returns their RMS size per factor and the Gram matrix
    M_ij = E_z <D_i, D_j> as cosines. To first order an orthonormal basis B = F U of the factor
    subspace gives image changes with Gram U^T M U: if M is a multiple of the identity (equal
    sizes, orthogonal effects) every rotation U looks exactly like the true factors to R."""
    gen = make_generator(options)
    f = gen.factor_directions()
    z = gen.sample_latents(num, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        base = gen(z).flatten(1)
        d = torch.stack([gen.shifted(z, shift * f[:, i]).flatten(1) - base for i in range(f.shape[1])])  # (5, num, P)
    gram = torch.einsum("inp,jnp->ij", d, d) / (num * d.shape[2])
    rms = gram.diagonal().sqrt()
    cos = gram / torch.outer(rms, rms)
    off = cos[~torch.eye(len(rms), dtype=torch.bool)].abs()
    eig, vecs = torch.linalg.eigh(gram)
    return {"eigenvectors": vecs.tolist(), "eigenvector_recovery": vecs.abs().max(1).values.mean().item(),
            "generator": options, "shift": shift, "rms_change": rms.tolist(), "cosines": cos.tolist(),
            "max_offdiag_cos": off.max().item(), "mean_offdiag_cos": off.mean().item(),
            "eigen_ratio": (eig.max() / eig.min()).item()}


def geometry_markdown(rows: list[dict]) -> str:
    lines = ["## geometry: image changes along the true factors (no training)", "",
             f"D_i = G(z + {rows[0][1]['shift']:g} f_i) - G(z) over 512 latents; RMS change per pixel per factor, "
             "|cosine| between the factors' changes (mean / max off-diagonal of E_z <D_i, D_j>), and the "
             "max/min eigenvalue ratio of that Gram matrix (1 = every rotation of the factor basis is alike "
             "to first order).", "",
             "| generator | " + " | ".join(f"RMS {n}" for n in FACTOR_NAMES) + " | mean abs cos | max abs cos | eigen ratio | eigenbasis recovery |",
             "|---|" + "---|" * len(FACTOR_NAMES) + "---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in r["rms_change"])
                     + f" | {r['mean_offdiag_cos']:.2f} | {r['max_offdiag_cos']:.2f} | {r['eigen_ratio']:.1f} | "
                     f"{r['eigenvector_recovery']:.2f} |")
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "" if x is None else f"{x:.2f}"


def markdown(records: list[dict]) -> str:
    lines = []
    main = [r for r in records if r["rca"]]
    if main:
        lines += ["## RCA and recovery: discovered vs random vs coordinate", "",
                  "| trial | directions | RCA | recovery | " + " | ".join(FACTOR_NAMES) + " | in subspace | recovery within | eigenbasis recovery |",
                  "|---|---|---|---|" + "---|" * len(FACTOR_NAMES) + "---|---|---|"]
        for r in main:
            for arm in ("directions", "random", "coordinate"):
                if arm not in r:
                    continue
                m = r[arm]
                label = "discovered" if arm == "directions" else arm
                lines.append(f"| {r['name']} | {label} | {_fmt(m.get('rca'))} | {_fmt(m['recovery'])} | "
                             + " | ".join(_fmt(c) for c in m["recovery_per_factor"])
                             + f" | {_fmt(m['in_subspace'])} | {_fmt(m['recovery_within'])} | "
                             f"{_fmt(m.get('recovery_eigen'))} |")
        lines.append("")
    probes = [r for r in records if "basis" in r]
    if probes:
        lines += ["## probe: R alone against frozen bases of the factor subspace (K = 5)", "",
                  "| frozen basis | lambda | recovery of the basis | train acc @100 | @200 | final train acc | held-out acc "
                  "| final train loss | CE part | shift error | held-out shift error per direction | steps | s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in probes:
            curve = dict((int(s_), a) for s_, a in r["accuracy_curve"])
            lines.append(f"| {r['name'].removeprefix('frozen basis: ')} | {r['discovery']['shift_weight']:g} | {_fmt(r.get('basis_recovery'))} | {_fmt(curve.get(100))} | "
                         f"{_fmt(curve.get(200))} | {_fmt(r['train_accuracy'])} | {_fmt(r['heldout_accuracy'])} | "
                         f"{r['train_loss']:.3f} | {r['train_loss'] - r['discovery']['shift_weight'] * r['shift_error']:.3f} | "
                         f"{r['shift_error']:.2f} | "
                         + " / ".join(f"{v:.2f}" for v in r.get("heldout_shift_error_per_direction", []))
                         + f" | {r['discovery']['steps']} | "
                         f"{r['seconds_discovery']:.0f} |")
        lines.append("")
    def references(group):
        names = ABLATIONS[group][0] if group in ABLATIONS else ()
        names = (names,) if isinstance(names, str) else names
        return [r for name in names for r in records if r["group"] == "main" and r["name"] in (name, f"{name} (seed 0)")]

    order = ["probe-start", *ABLATIONS]
    groups = sorted({r["group"] for r in records if r["group"] != "main" and "basis" not in r},
                    key=lambda g: (order.index(g) if g in order else len(order), g))
    for group in groups:
        rows = [{**ref, "name": f"reference: main {ref['name']}"} for ref in references(group)]
        rows += [r for r in records if r["group"] == group]
        lines += [f"## {group}", "",
                  "| trial | train acc | recovery | " + " | ".join(FACTOR_NAMES)
                  + " | in subspace | recovery within | eigenbasis recovery | random recovery | RCA discovered / random / coordinate | steps | s |",
                  "|---|---|---|" + "---|" * len(FACTOR_NAMES) + "---|---|---|---|---|---|---|"]
        for r in rows:
            m = r["directions"]
            rnd = r.get("random", {}).get("recovery")
            lines.append(f"| {r['name']} | {_fmt(r['train_accuracy'])} | {_fmt(m['recovery'])} | "
                         + " | ".join(_fmt(c) for c in m["recovery_per_factor"])
                         + f" | {_fmt(m['in_subspace'])} | {_fmt(m['recovery_within'])} | "
                         f"{_fmt(m.get('recovery_eigen'))} | {_fmt(rnd)} | "
                         + (" / ".join(_fmt(r[a]["rca"]) for a in ("directions", "random", "coordinate")) if r["rca"] else "")
                         + " | "
                         f"{r['discovery']['steps']} | {r['seconds_discovery']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="main table only, seed 0, 300 steps (default: off)")
    parser.add_argument("--only", nargs="+", metavar="GROUP", default=None,
                        help="run only these groups: main, probe, probe-start, " + ", ".join(ABLATIONS)
                             + " (default: all)")
    parser.add_argument("--rca-steps", type=int, default=None,
                        help="reconstructor steps for RCA (default: the trial's discovery steps)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: benchmarks/results/planted_study[_quick].json)")
    parser.add_argument("--fresh", action="store_true", help="ignore results already in the JSON file")
    parser.add_argument("--list", action="store_true", help="print the trials and exit")
    parser.add_argument("--geometry", action="store_true",
                        help="only the image-change geometry of the factors (no training, seconds); writes "
                             "benchmarks/results/planted_study_geometry.json and .md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.geometry:
        rows = [(name, change_geometry(opts)) for name, opts in GEOMETRY_GENERATORS.items()]
        text = geometry_markdown(rows)
        print(text)
        (RESULTS / "planted_study_geometry.json").write_text(json.dumps(dict(rows), indent=1))
        (RESULTS / "planted_study_geometry.md").write_text(text)
        return
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
        if "basis" in record:
            print(f"    held-out acc {record['heldout_accuracy']:.3f}, train loss {record['train_loss']:.3f},"
                  f" curve {record['accuracy_curve'][:3]}", flush=True)
        else:
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
