"""Seconds per discovery-style step for each public-checkpoint adapter, on CPU.

Per adapter, with random weights (a step's cost does not depend on their values) in the
published architecture:

- ``g_forward``: G(z) without autograd (the base images of a step);
- ``g_backward``: ``G.shifted(z, shift)`` forward and backward to the input only (the shifted
  images; G's weights are frozen). For StyleGAN2 in w+ only the layer range moves;
- ``ld_step``: one real ``latentdirs.discovery.train_step`` (LeNet reconstructor, K=32, Adam),
  i.e. both of the above plus the reconstructor, when the discovery module is importable.

Times are process CPU seconds (with one thread: the work done, even when other jobs share the
machine); the median over ``--rounds`` rounds is reported. Results go to
``benchmarks/results/adapters_step_cpu.json`` and a Markdown table is printed.

    python benchmarks/adapters_step.py                                  # every adapter, default batches
    python benchmarks/adapters_step.py --configs sngan-mnist stylegan2-256 --batch 8 --rounds 3
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


def build(name: str):
    """(generator, description) with the published architecture and random weights."""
    from latentdirs.generators import biggan, proggan, sngan, stylegan2
    torch.manual_seed(0)
    if name == "sngan-mnist":
        return sngan.SNGANGenerator("sn_resnet32", 128, 1, name=name), "SN-GAN ResNet, 32x32x1, d=128"
    if name == "sngan-anime":
        return sngan.SNGANGenerator("sn_resnet64", 128, 3, name=name), "SN-GAN ResNet, 64x64x3, d=128"
    if name == "proggan-256":
        net = proggan.ZooGenerator(512, [512, 512, 512, 512, 256, 128, 64])
        return proggan.ProgGANGenerator(net, 512, "pytorch_GAN_zoo", {}), "PGAN zoo celebAHQ-256, d=512"
    if name == "proggan-1024":
        widths = [512] * 8 + [256, 256, 128, 128, 64, 64, 32, 32, 16, 16]
        net = proggan.PtrblckGenerator(widths)
        return proggan.ProgGANGenerator(net, 512, "ptrblck", {}), "ptrblck ProgGAN 1024 (GanLatentDiscovery), d=512"
    if name.startswith("stylegan2-"):
        size = int(name.split("-")[1].rstrip("wplus"))
        space = "w+" if name.endswith("wplus") else "z"
        net = stylegan2.StyleGAN2Network(size, 512, 8, stylegan2.default_channels(size, 2))
        layers = (0, 4) if space == "w+" else None
        gen = stylegan2.StyleGAN2Generator(net, space=space, layers=layers)
        return gen, f"StyleGAN2 config-f {size}x{size}, space {space}" + (", layers 0-4" if layers else "")
    if name == "biggan-128":
        return biggan.BigGANGenerator(biggan.BigGANDeep(biggan.DEFAULT_CONFIG_128), classes=207), \
            "BigGAN-deep 128, d=128, one class"
    raise SystemExit(f"unknown configuration {name!r}")


DEFAULT_BATCH = {"sngan-mnist": 32, "sngan-anime": 16, "proggan-256": 4, "proggan-1024": 2, "stylegan2-64": 8,
                 "stylegan2-256": 4, "stylegan2-256wplus": 4, "stylegan2-1024": 2, "biggan-128": 4}


class Bench:
    def __init__(self, name: str, batch: int) -> None:
        gen, self.note = build(name)
        self.gen = gen.freeze()
        self.batch = batch
        self.rng = torch.Generator().manual_seed(0)
        self.step_state = self._discovery_state()

    def _discovery_state(self):
        try:
            from latentdirs.directions import DirectionMatrix
            from latentdirs.discovery import DiscoveryConfig, _Trainable
            from latentdirs.reconstructors import make_reconstructor
        except ImportError as exc:
            return f"n/a ({exc})"
        cfg = DiscoveryConfig(num_directions=32, reconstructor="lenet", batch_size=self.batch)
        with torch.no_grad():
            image_shape = tuple(self.gen(self.gen.sample_latents(1, generator=self.rng)).shape[1:])
        try:
            matrix = DirectionMatrix(self.gen.latent_dim, 32, "unit")
            recon = make_reconstructor("lenet", image_shape, 32)
        except Exception as exc:  # e.g. a reconstructor that does not take this image size
            return f"n/a ({type(exc).__name__}: {exc})"
        trainable = _Trainable(matrix, recon, self.gen, cfg.channels_last)
        optimizer = torch.optim.Adam(trainable.parameters(), lr=1e-4)
        return cfg, trainable, optimizer

    def g_forward(self) -> None:
        z = self.gen.sample_latents(self.batch, generator=self.rng)
        with torch.inference_mode():
            self.gen(z)

    def g_backward(self) -> None:
        z = self.gen.sample_latents(self.batch, generator=self.rng)
        shift = (0.1 * torch.randn(self.batch, self.gen.latent_dim, generator=self.rng)).requires_grad_(True)
        out = self.gen.shifted(z, shift)
        torch.autograd.grad(out, shift, grad_outputs=torch.ones_like(out))

    def ld_step(self) -> None:
        from latentdirs.discovery import sample_pairs, train_step
        cfg, trainable, optimizer = self.step_state
        z, index, shift = sample_pairs(self.gen, cfg, self.batch, self.rng, torch.device("cpu"))
        train_step(trainable, self.gen, optimizer, cfg, z, index, shift)

    def time(self, variant: str) -> float:
        # process CPU time: with one thread it is the work done, whatever else the machine runs
        start = time.process_time()
        getattr(self, variant)()
        return time.process_time() - start


def run(name: str, batch: int, rounds: int) -> dict:
    bench = Bench(name, batch)
    variants = ["g_forward", "g_backward"] + (["ld_step"] if isinstance(bench.step_state, tuple) else [])
    for variant in variants:  # warm-up (allocator, oneDNN primitive caches)
        bench.time(variant)
    times = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:  # interleaved: machine speed drifts with the other jobs
            times[variant].append(bench.time(variant))
    row = {"config": name, "note": bench.note, "batch": batch, "params_M": sum(p.numel() for p in bench.gen.parameters()) / 1e6}
    row.update({f"{v}_s": statistics.median(t) for v, t in times.items()})
    if not isinstance(bench.step_state, tuple):
        row["ld_step_s"] = bench.step_state
    if bench.gen.latent_space == "w+":
        row["note"] += "; ld_step and g_backward move the layer range only (G.shifted)"
    return row


def markdown(rows: list[dict]) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| adapter | batch | params (M) | G forward (s) | G fwd+bwd to input (s) | LD step (s) | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['batch']} | {r['params_M']:.1f} | {cell(r['g_forward_s'])} | "
                     f"{cell(r['g_backward_s'])} | {cell(r.get('ld_step_s', 'n/a'))} | {r['note']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_BATCH), choices=list(DEFAULT_BATCH),
                        help="adapters to time (default: all)")
    parser.add_argument("--batch", type=int, default=None, help="latents per step (default: per adapter, see DEFAULT_BATCH)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds after one warm-up (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1; the machine is shared)")
    parser.add_argument("--out", type=Path, default=RESULTS / "adapters_step_cpu.json", help="JSON results file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.configs:
        rows.append(run(name, args.batch or DEFAULT_BATCH[name], args.rounds))
        print(json.dumps(rows[-1]), flush=True)
        # written after every adapter: a full run takes long and should not lose finished rows
        args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                                        "torch": torch.__version__, "rounds": args.rounds, "rows": rows}, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
