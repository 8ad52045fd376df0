"""Seconds and memory per LD training step: a naive step, ours, and the limit.

- naive: what a straightforward implementation does: G's weights require gradients, both
  G passes run with autograd, one latent per pair, a few ``.item()`` calls per step;
- ours: ``latentdirs.discovery.train_step`` exactly as ``discover`` calls it (sampling and
  Adam included);
- limit: the work no implementation of the method can skip, each part timed alone and
  summed: G(z) without autograd + G(z') forward and backward to the input only + R's
  forward and backward (to its weights and to its input image, through which A learns).

Timing: one process per configuration, one thread, the variants interleaved round by round,
the median over rounds reported. On CPU the clock is the process's CPU time: this machine is
shared (load ~8 per core while these numbers were taken), and wall time would mostly measure
the other jobs. ``--threads N`` makes CPU time a sum over threads: use wall time then.
Memory: a fresh subprocess per (configuration, variant) runs two steps and reports the
growth of the peak resident set size (``ru_maxrss``) over the value just before the first
step, i.e. activations + gradients + optimizer state + allocator slack, not the weights.
On CUDA the peak of ``torch.cuda.max_memory_allocated`` is reported instead.

    python benchmarks/step_speed.py                          # all configurations, CPU, 1 thread
    python benchmarks/step_speed.py --configs planted --rounds 5
    python benchmarks/step_speed.py --fast-paths --configs sngan-mnist   # channels_last / amp / compile
    python benchmarks/step_speed.py --device cuda            # on a GPU machine
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ("planted", "sngan-mnist", "shapes3d", "shapes3d-dcgan")
# generator, K, reconstructor: the paper's MNIST setting for the SN-GAN, the CLI defaults elsewhere
SETTINGS = {"planted": (10, "lenet"), "sngan-mnist": (64, "lenet"), "shapes3d": (32, "lenet"),
            "shapes3d-dcgan": (32, "lenet")}


def build_generator(name: str):
    """(generator, note). Random weights are fine: the cost of a step does not depend on them."""
    import latentdirs
    if name == "planted":
        return latentdirs.load_generator("planted"), "procedural, d=16, 32x32x3"
    if name == "sngan-mnist":
        from latentdirs.generators.sngan import SNGANGenerator
        return SNGANGenerator("sn_resnet32", 128, 1, name="sngan-mnist").freeze(), \
            "SN-GAN ResNet (3 up-blocks, 256 ch), d=128, 32x32x1, random weights"
    if name == "shapes3d":  # the shipped GAN (dcgan-w: mapping network + styled synthesis), in Z
        gen = latentdirs.load_generator("shapes3d")
        return gen, f"shipped shapes3d ({gen.describe().get('architecture')}), Z, d={gen.latent_dim}, 64x64x3"
    if name == "shapes3d-dcgan":
        try:
            # the first shipped GAN: the step times of step_speed_cpu.json's "shapes3d" row were measured on it
            return latentdirs.load_generator("shapes3d-dcgan"), "first shipped shapes3d DCGAN (shapes3d-dcgan)"
        except ValueError as exc:  # not registered, or no weights shipped yet
            try:
                from latentdirs.gan.networks import DCGANGenerator, NetworkConfig
                from latentdirs.generators.shapes3d import Shapes3DGenerator
            except ImportError:
                raise SystemExit(f"skip: {exc}") from None
            net = DCGANGenerator(NetworkConfig(latent_dim=64, base_channels=24))
            return Shapes3DGenerator(net), "shapes3d DCGAN architecture (d=64, 64x64x3), random weights: " \
                                           "the shipped weights were not there yet"
    raise SystemExit(f"unknown configuration {name!r}")


class Bench:
    """Everything one configuration needs to run each variant's step."""

    def __init__(self, name: str, device: str, batch: int, flags: dict) -> None:
        from latentdirs.directions import DirectionMatrix
        from latentdirs.discovery import DiscoveryConfig, _Trainable
        from latentdirs.reconstructors import make_reconstructor
        self.device = torch.device(device)
        flags = {"channels_last": False, **flags}  # plain NCHW fp32 unless a fast path is asked for
        gen, self.note = build_generator(name)
        self.gen = gen.to(self.device)
        if flags.get("channels_last"):
            self.gen.to(memory_format=torch.channels_last)  # as discover() does
        k, recon = SETTINGS[name]
        self.image_shape = tuple(self.gen.image_shape)
        self.cfg = DiscoveryConfig(num_directions=k, reconstructor=recon, batch_size=batch, **flags)
        torch.manual_seed(0)
        matrix = DirectionMatrix(gen.latent_dim, k, "unit").to(self.device)
        r = make_reconstructor(recon, self.image_shape, k).to(self.device)
        if self.cfg.channels_last:
            r = r.to(memory_format=torch.channels_last)
        self.trainable = _Trainable(matrix, r, self.gen, self.cfg.channels_last)
        self.model = torch.compile(self.trainable) if self.cfg.compile else self.trainable
        self.opt = torch.optim.Adam(self.trainable.parameters(), lr=1e-4)
        # The naive variant owns copies, so its G gradients never touch the real ones.
        self.naive_gen = copy.deepcopy(gen).to(self.device)
        for p in self.naive_gen.parameters():
            p.requires_grad_(True)
        self.naive_a = copy.deepcopy(matrix)
        self.naive_r = copy.deepcopy(r)
        self.naive_opt = torch.optim.Adam(list(self.naive_a.parameters()) + list(self.naive_r.parameters()), lr=1e-4)
        self.limit_r = copy.deepcopy(r)
        self.step = 0

    def sample(self):
        from latentdirs.discovery import sample_pairs, step_rng
        self.step += 1
        return sample_pairs(self.gen, self.cfg, self.cfg.batch_size, step_rng(0, 0, self.step), self.device)

    def ours(self) -> None:
        from latentdirs.discovery import train_step
        z, index, shift = self.sample()
        train_step(self.model, self.gen, self.opt, self.cfg, z, index, shift)

    def naive(self) -> None:
        z, index, shift = self.sample()
        self.naive_opt.zero_grad()
        base = self.naive_gen(z)
        shifted = self.naive_gen(z + self.naive_a(index, shift))
        logits, shift_pred = self.naive_r(torch.cat([base, shifted], 1))
        loss = F.cross_entropy(logits, index) + 0.25 * (shift_pred - shift).abs().mean()
        loss.backward()
        self.naive_opt.step()
        _ = loss.item(), (logits.argmax(1) == index).float().mean().item()

    # -- the three parts of the limit ------------------------------------------------
    def g_forward(self) -> None:
        z, _, _ = self.sample()
        with torch.inference_mode():
            self.gen(z)

    def g_input_backward(self) -> None:
        z, _, _ = self.sample()
        z.requires_grad_(True)
        out = self.gen(z)
        torch.autograd.grad(out, z, grad_outputs=torch.ones_like(out))

    def r_forward_backward(self) -> None:
        _, index, shift = self.sample()
        c, h, w = self.image_shape
        pair = torch.rand(len(index), 2 * c, h, w, device=self.device) * 2 - 1
        if self.cfg.channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        pair.requires_grad_(True)  # the gradient must reach A through the shifted image
        logits, shift_pred = self.limit_r(pair)
        (F.cross_entropy(logits, index) + 0.25 * (shift_pred - shift).abs().mean()).backward()
        self.limit_r.zero_grad(set_to_none=True)

    def run(self, variant: str) -> float:
        """Seconds for one call of ``variant``: CPU time of this single-threaded process on CPU
        (robust to the other jobs preempting it), wall time around synchronizations on CUDA."""
        cuda = self.device.type == "cuda"
        clock = time.perf_counter if cuda or torch.get_num_threads() > 1 else time.process_time
        if cuda:
            torch.cuda.synchronize()
        t = clock()
        getattr(self, variant)()
        if cuda:
            torch.cuda.synchronize()
        return clock() - t


LIMIT_PARTS = ("g_forward", "g_input_backward", "r_forward_backward")


def time_config(name: str, device: str, batch: int, rounds: int, flags: dict) -> dict:
    bench = Bench(name, device, batch, flags)
    variants = ("naive", "ours") + LIMIT_PARTS
    for v in variants:  # warm-up: allocator, oneDNN primitive caches, compile
        bench.run(v)
    times = {v: [] for v in variants}
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]  # cancel drift within a round
        for v in order:
            times[v].append(bench.run(v))
    med = {v: statistics.median(ts) for v, ts in times.items()}
    med["limit"] = sum(med[p] for p in LIMIT_PARTS)
    return {"config": name, "note": bench.note, "image_shape": bench.image_shape,
            "latent_dim": bench.gen.latent_dim, "num_directions": bench.cfg.num_directions,
            "batch": batch, "rounds": rounds, "median_sec": med, "all_sec": times}


def time_fast_paths(name: str, device: str, batch: int, rounds: int) -> dict:
    """ours with each fast path alone, interleaved against plain ours in the same process."""
    options = {"plain": {}, "channels_last": {"channels_last": True}, "amp": {"amp": True}, "compile": {"compile": True}}
    benches = {}
    for label, flags in options.items():
        try:
            benches[label] = Bench(name, device, batch, flags)
            benches[label].run("ours")
            benches[label].run("ours")  # compile may recompile once on the second call
        except Exception as exc:  # e.g. no C++ compiler for inductor
            print(f"{label}: unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
    times = {label: [] for label in benches}
    for r in range(rounds):
        for label in (list(benches) if r % 2 == 0 else list(benches)[::-1]):
            times[label].append(benches[label].run("ours"))
    med = {label: statistics.median(ts) for label, ts in times.items()}
    return {"config": name, "batch": batch, "rounds": rounds, "median_sec": med, "all_sec": times,
            "speedup_vs_plain": {k: med["plain"] / v for k, v in med.items()}}


def memory_worker(name: str, device: str, batch: int, variant: str) -> dict:
    bench = Bench(name, device, batch, {})
    if bench.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    parts = LIMIT_PARTS if variant == "limit" else (variant,)
    for _ in range(2):
        for p in parts:
            bench.run(p)
    if bench.device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"config": name, "variant": variant, "peak_mb": peak_mb}


def run_worker(args, *extra) -> dict:
    cmd = [sys.executable, __file__, "--device", args.device, "--batch", str(args.batch), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    lines = ["| generator | batch | naive s/step | ours s/step | limit s/step | naive / ours | ours / limit "
             "| peak MB naive | ours | limit |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m, mem = r["median_sec"], r.get("peak_mb", {})
        lines.append(f"| {r['config']} | {r['batch']} | {m['naive']:.3f} | {m['ours']:.3f} | {m['limit']:.3f} "
                     f"| {m['naive'] / m['ours']:.2f}x | {m['ours'] / m['limit']:.2f} "
                     f"| {mem.get('naive', float('nan')):.0f} | {mem.get('ours', float('nan')):.0f} "
                     f"| {mem.get('limit', float('nan')):.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list from {', '.join(CONFIGS)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128, help="pairs per step (the paper: 128)")
    p.add_argument("--batch-for", action="append", default=[], metavar="NAME=N",
                   help="another batch for one configuration, e.g. sngan-mnist=16 (its step at 128 takes minutes "
                        "on one CPU core; convolution cost is linear in the batch)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (median reported)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fast-paths", action="store_true", help="time channels_last / amp / compile instead")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/step_speed_DEVICE.json)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        kind, arg = args.worker
        name, variant = arg.split(":")
        if kind == "time":
            print(json.dumps(time_config(name, args.device, args.batch, int(variant), {})))
        elif kind == "fast":
            print(json.dumps(time_fast_paths(name, args.device, args.batch, int(variant))))
        else:
            print(json.dumps(memory_worker(name, args.device, args.batch, variant)))
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    default_batch = args.batch
    import os

    from latentdirs.runs import cpu_model
    env = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
           "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": args.threads, "device": args.device,
           "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "note": "2-core VM, another training job on the other core: ratios within one run are what count"}
    rows = []
    batches = dict(item.split("=") for item in args.batch_for)
    for name in args.configs.split(","):
        args.batch = int(batches.get(name, default_batch))
        kind = "fast" if args.fast_paths else "time"
        try:
            row = run_worker(args, "--threads", str(args.threads), "--worker", kind, f"{name}:{args.rounds}")
        except subprocess.CalledProcessError as exc:
            print(f"{name}: skipped ({(exc.stdout or '').strip() or exc.stderr.strip().splitlines()[-1]})")
            continue
        if not args.fast_paths and not args.no_memory:
            row["peak_mb"] = {v: run_worker(args, "--threads", str(args.threads), "--worker", "memory",
                                            f"{name}:{v}")["peak_mb"] for v in ("naive", "ours", "limit")}
        rows.append(row)
        print(json.dumps({k: row[k] for k in row if k != "all_sec"}), flush=True)
    if args.fast_paths:
        print("| generator | " + " | ".join(rows[0]["median_sec"]) + " |" if rows else "")
        for r in rows:
            print(f"| {r['config']} | " + " | ".join(f"{s:.3f} s ({r['speedup_vs_plain'][k]:.2f}x)"
                                                      for k, s in r["median_sec"].items()) + " |")
        out = RESULTS / f"fast_paths_{args.device}.json"
    else:
        print(markdown(rows))
        out = RESULTS / f"step_speed_{args.device}.json"
    out = Path(args.out) if args.out else out
    env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
