"""Cost of the orthonormal parametrizations of A at scale, alone and as a share of a step.

A = first K columns of exp(S), S skew-symmetric (d x d), recomputed every step since S is
trained. Methods, forward + backward each:

- matrix_exp: ``torch.linalg.matrix_exp(S)[:, :K]`` (the backward exponentiates a 2d x 2d
  block matrix);
- taylor: ``latentdirs.directions.expm_columns`` (degree-16 Taylor, Paterson-Stockmeyer,
  scaling and squaring, autograd through the matmuls; only K columns carried where possible);
  the same A as matrix_exp to float precision, now the default of ``ortho``;
- cayley: (I - S)^-1 (I + S) restricted to K columns (one LU solve): a *different*
  orthonormal parametrization, offered as ``cayley``;
- unit: column-normalized d x K matrix, for scale.

Accuracy is measured against float64 matrix_exp (values and gradients). The share of a full
step uses a tiny generator with a ProgGAN-sized latent (d=512) and LeNet at batch 128: the
worst case, since a real ProgGAN step costs far more than this generator.

    python benchmarks/ortho_scale.py            # ~5 min on one busy core
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from latentdirs import directions as dirs

RESULTS = Path(__file__).resolve().parent / "results"


def torch_expm_columns(s: torch.Tensor, k: int) -> torch.Tensor:
    return torch.linalg.matrix_exp(s)[:, :k]


def cayley_columns(s: torch.Tensor, k: int) -> torch.Tensor:
    d = s.shape[0]
    return torch.linalg.solve(torch.eye(d, dtype=s.dtype) - s, torch.eye(d, k, dtype=s.dtype) + s[:, :k])


def unit_columns(w: torch.Tensor, k: int) -> torch.Tensor:
    return w[:, :k] / w[:, :k].norm(dim=0, keepdim=True)


METHODS = {"matrix_exp": torch_expm_columns, "taylor": dirs.expm_columns, "cayley": cayley_columns,
           "unit": unit_columns}


def skew_with_norm(d: int, norm1: float, seed: int = 0) -> torch.Tensor:
    """A random P whose skew part S = P - P^T has 1-norm ``norm1`` (0 = the initial S)."""
    p = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = p - p.t()
    return p * (norm1 / s.abs().sum(0).max()) if norm1 else p * 0


def parametrization_times(d: int, k: int, norm1: float, rounds: int) -> dict:
    p0 = skew_with_norm(d, norm1)
    w = torch.randn(d, k, generator=torch.Generator().manual_seed(1))
    ref_a = torch_expm_columns((p0 - p0.t()), k)
    p64 = p0.clone().requires_grad_(True)
    (torch_expm_columns(p64 - p64.t(), k) * w.double()).sum().backward()
    ref_g = p64.grad
    out = {"d": d, "k": k, "norm1": norm1, "ms": {}, "value_error": {}, "grad_rel_error": {}}
    params = {}
    for name, fn in METHODS.items():
        p = p0.float().clone().requires_grad_(True)
        a = fn(p - p.t(), k) if name != "unit" else fn(p + 1.0, k)
        (a * w).sum().backward()
        params[name] = p
        if name in ("matrix_exp", "taylor"):
            out["value_error"][name] = (a.detach().double() - ref_a).abs().max().item()
            out["grad_rel_error"][name] = ((p.grad.double() - ref_g).abs().max() / ref_g.abs().max()).item()
    def once(name: str) -> None:
        p, fn = params[name], METHODS[name]
        p.grad = None
        a = fn(p - p.t(), k) if name != "unit" else fn(p + 1.0, k)
        (a * w).sum().backward()

    # Clock = this process's CPU time (one thread; other jobs share the machine). Each sample
    # repeats a call for >= 50 ms: CPU-time ticks are coarse for millisecond-sized calls.
    reps = {}
    for name in METHODS:
        t = time.process_time()
        once(name)
        reps[name] = max(1, int(0.05 / max(time.process_time() - t, 1e-6)))
    times = {name: [] for name in METHODS}
    for r in range(rounds):
        for name in (list(METHODS) if r % 2 == 0 else list(METHODS)[::-1]):
            t = time.process_time()
            for _ in range(reps[name]):
                once(name)
            times[name].append((time.process_time() - t) / reps[name])
    out["ms"] = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
    return out


class TinyGenerator(nn.Module):
    """512-d latent -> 32x32 RGB in three cheap up-convolutions."""

    def __init__(self, d: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 64 * 4 * 4), nn.Unflatten(1, (64, 4, 4)), nn.ReLU(),
                                 nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def step_share(d: int, k: int, rounds: int) -> dict:
    """Seconds per full train_step with each parametrization (A moved away from S = 0 first)."""
    import latentdirs
    from latentdirs.directions import DirectionMatrix
    from latentdirs.discovery import DiscoveryConfig, _Trainable, sample_pairs, step_rng, train_step
    from latentdirs.reconstructors import make_reconstructor
    torch.manual_seed(0)
    gen = latentdirs.wrap(TinyGenerator(d), latent_dim=d, name="tiny-512")
    setups = {}
    for label, kind in (("unit", "unit"), ("ortho taylor", "ortho"), ("ortho matrix_exp", "ortho"),
                        ("cayley", "cayley")):
        cfg = DiscoveryConfig(num_directions=k, parametrization=kind, batch_size=128)
        a = DirectionMatrix(d, k, kind)
        if kind != "unit":
            with torch.no_grad():
                a.skew.copy_(skew_with_norm(d, 5.0).float())  # a trained-looking S, not the trivial S = 0
        r = make_reconstructor("lenet", gen.image_shape, k)
        trainable = _Trainable(a, r, gen, False)
        setups[label] = (cfg, trainable, torch.optim.Adam(trainable.parameters(), lr=1e-4))
    times = {label: [] for label in setups}
    original = dirs.expm_columns
    try:
        for r in range(rounds + 1):
            for label in (list(setups) if r % 2 == 0 else list(setups)[::-1]):
                cfg, trainable, opt = setups[label]
                dirs.expm_columns = torch_expm_columns if label == "ortho matrix_exp" else original
                z, index, shift = sample_pairs(gen, cfg, cfg.batch_size, step_rng(0, 0, r), torch.device("cpu"))
                t = time.process_time()
                train_step(trainable, gen, opt, cfg, z, index, shift)
                if r:  # round 0 is warm-up
                    times[label].append(time.process_time() - t)
    finally:
        dirs.expm_columns = original
    med = {label: statistics.median(ts) for label, ts in times.items()}
    return {"d": d, "k": k, "generator": "TinyGenerator (3 up-convs, 32x32x3)", "reconstructor": "lenet",
            "batch": 128, "sec_per_step": med,
            "share_of_step": {label: (med[label] - med["unit"]) / med[label] for label in med}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for d, k in ((512, 200), (128, 128), (120, 120)):
        for norm1 in (0.0, 5.0, 20.0):
            row = parametrization_times(d, k, norm1, args.rounds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    share = step_share(512, 200, args.rounds)
    print(json.dumps(share), flush=True)
    print("\n| d | K | ‖S‖₁ | matrix_exp ms | taylor ms | cayley ms | unit ms | matrix_exp / taylor "
          "| grad rel. error matrix_exp | taylor |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m, g = r["ms"], r["grad_rel_error"]
        print(f"| {r['d']} | {r['k']} | {r['norm1']:.0f} | {m['matrix_exp']:.1f} | {m['taylor']:.1f} "
              f"| {m['cayley']:.1f} | {m['unit']:.2f} | {m['matrix_exp'] / m['taylor']:.1f}x "
              f"| {g['matrix_exp']:.1e} | {g['taylor']:.1e} |")
    print("\n| parametrization | s/step (d=512, K=200, tiny G, LeNet, batch 128) | share of the step |\n|---|---|---|")
    for label, sec in share["sec_per_step"].items():
        print(f"| {label} | {sec:.3f} | {share['share_of_step'][label]:.0%} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ortho_scale_cpu.json"
    out.write_text(json.dumps({"torch": torch.__version__, "threads": args.threads, "parametrizations": rows,
                               "step_share": share}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
