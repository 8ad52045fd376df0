"""Latency of the web app's slider update: one ``/api/image`` request over real HTTP.

Serves a direction set of the shipped GAN (``shapes3d``; ``planted`` when its weights are
not there) on a loopback port and times requests the way the explorer sends them. Every
timed request has a shift never asked before, so the image cache cannot hide the cost of
rendering; a cached repeat and a rating chart (10 latents x 9 shifts, uncached) are timed
for comparison. One torch thread, as ``latentdirs serve`` uses by default.

    python benchmarks/web_latency.py                  # table + benchmarks/results/web_latency.json
    python benchmarks/web_latency.py --generator planted --requests 100
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch

torch.set_num_threads(1)
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request


def load(kind: str | None):
    import latentdirs
    for candidate in ([kind] if kind else ["shapes3d", "planted"]):
        try:
            return latentdirs.load_generator(candidate)
        except Exception as exc:  # shapes3d's weights may not ship yet
            print(f"{candidate}: not available ({exc}); falling back")
    raise SystemExit("no generator available")


def timed(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return (time.perf_counter() - start) * 1000, len(body)


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"n": len(times), "median_ms": round(statistics.median(times), 2),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2), "mean_ms": round(statistics.fmean(times), 2),
            "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default=None, help="generator kind (default: shapes3d, else planted)")
    parser.add_argument("--requests", type=int, default=50, help="timed slider updates")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "web_latency.json"))
    args = parser.parse_args()

    from werkzeug.serving import make_server
    from latentdirs import DirectionSet
    from latentdirs.runs import cpu_model
    from latentdirs.web.app import create_app

    gen = load(args.generator)
    num_directions = min(8, gen.latent_dim)
    with tempfile.TemporaryDirectory() as tmp:
        ds = DirectionSet.random(gen.latent_dim, num_directions, seed=0)
        ds.meta["generator"] = gen.describe()
        ds.save(Path(tmp) / "bench" / "directions")
        app = create_app([str(Path(tmp) / "bench")], generator=gen, db_path=Path(tmp) / "r.sqlite")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            for i in range(5):  # warm-up: first forward passes, allocator, imports
                timed(f"{base}/api/image?set=bench&seed={1000 + i}&shifts=0:{i / 10}")
            # the explorer sends one request per slider move: distinct shifts, so each one renders
            slider, size = [], 0
            for i in range(args.requests):
                k, s = i % num_directions, -8 + 16 * i / max(args.requests - 1, 1)
                ms, size = timed(f"{base}/api/image?set=bench&seed=7&shifts={k}:{s:.4f},{(k + 1) % num_directions}:1.5")
                slider.append(ms)
            cached = [timed(f"{base}/api/image?set=bench&seed=7&shifts=0:-8.0000,1:1.5")[0] for _ in range(args.requests)]
            charts = [timed(f"{base}/api/chart?set=bench&direction={k % num_directions}&seeds=0-9&shifts=-8:8:9"
                            f"&scale=1")[0] for k in range(5)]
        finally:
            server.shutdown()

    rows = {"slider update (/api/image, uncached)": summary(slider),
            "same image again (cached)": summary(cached),
            "rating chart 10x9 (/api/chart, uncached)": summary(charts)}
    result = {"generator": gen.name, "generator_meta": gen.describe(), "image_shape": list(gen.image_shape), "latent_dim": gen.latent_dim,
              "png_bytes": size, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "cpu": cpu_model(), "cpu_count": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows}
    print(f"generator {gen.name} {tuple(gen.image_shape)}, torch {torch.__version__}, 1 thread, "
          f"{result['cpu']}, load average {result['load_average']}")
    print(f"{'request':44s} {'n':>4s} {'median':>9s} {'p90':>9s} {'min':>9s} {'max':>9s}")
    for name, r in rows.items():
        print(f"{name:44s} {r['n']:4d} {r['median_ms']:7.1f}ms {r['p90_ms']:7.1f}ms {r['min_ms']:7.1f}ms "
              f"{r['max_ms']:7.1f}ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
