"""``latentdirs compare``: LD, SeFa, GANSpace and the baselines on one generator, side by side.

For every method and seed: find ``k`` directions (LD keeps its top ``k`` by importance
score), save them in ``METHOD/seedS/``, then measure
  - RCA: a fresh reconstructor trained against the frozen directions (Voynov & Babenko);
  - MIG, DCI and modularity with the ground-truth encoder protocol (Khrulkov et al.),
    when the generator has a dataset with known factors (planted, shapes3d);
  - factor cosine: mean best |cos| to the true factor directions (planted generator only);
  - the time each method takes to find its directions.
A Markdown report (mean ± std over seeds) and a bar chart close the run. Finished
method/seed cells are kept: re-running the same command into the same folder resumes.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..directions import DirectionError, DirectionSet, best_cosines
from ..generators.base import Generator, GeneratorError
from ..runs import MetricsLog, atomic_write_text, new_run_dir, save_config

METHODS = ("ld-unit", "ld-ortho", "sefa", "ganspace", "random", "identity")
KNOWN_METHODS = METHODS + ("ld-cayley", "ld-linear", "sefa-raw")
# "ld-unit-K32": train K = 32 directions, keep the top k by importance (the protocol's selection lever).
_LD_VARIANT = re.compile(r"ld-(unit|ortho|cayley|linear)(?:-K([1-9][0-9]*))?")
METRICS = ("rca", "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "modularity",
           "factor_cosine", "encoder_r2", "find_seconds")
METRIC_LABELS = {"rca": "RCA", "mig": "MIG", "dci_disentanglement": "DCI-D", "dci_completeness": "DCI-C",
                 "dci_informativeness": "DCI-I", "modularity": "Modularity", "factor_cosine": "factor cos",
                 "encoder_r2": "encoder R²", "find_seconds": "time to find (s)"}
RESULT = "result.json"


@dataclass
class CompareConfig:
    """Every setting of a comparison; saved as ``config.json`` in its folder."""

    num_directions: int = 10
    """k, directions per method that are evaluated (the protocol's top k)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    ld_num_directions: int | None = None
    """K that LD trains before its top k are kept (None = k)."""
    ld_steps: int = 1_500
    batch_size: int = 64
    lr: float = 1e-3
    """Adam learning rate of LD and of the RCA reconstructor (the paper's 1e-4 needs ~10x the steps)."""
    rca_steps: int = 600
    """Reconstructor steps per RCA measurement (0 = skip RCA)."""
    ganspace_samples: int = 20_000
    gt_train: int = 5_000
    """Generated pairs the ground-truth encoder trains on (the paper: 500k; 0 = skip ground truth)."""
    gt_steps: int = 1_500
    gt_eval: int = 5_000
    """Real points scored (the paper: 10k)."""
    gt_image_size: int | None = 32
    device: str | None = None

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in KNOWN_METHODS and not _LD_VARIANT.fullmatch(m)]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join(KNOWN_METHODS)} "
                             "or ld-<parametrization>-K<n> (train n directions, keep the top k)")
        for method in self.methods:
            trained = _ld_trained(method, self)
            if trained is not None and trained < self.num_directions:
                raise ValueError(f"{method} trains {trained} directions, fewer than k = {self.num_directions}")
        if not self.methods or not self.seeds:
            raise ValueError("need at least one method and one seed")
        if self.num_directions < 1:
            raise ValueError(f"num_directions must be >= 1, got {self.num_directions}")


@dataclass
class Comparison:
    out_dir: Path
    results: list[dict] = field(default_factory=list)
    report: Path | None = None
    chart: Path | None = None


def find_directions(generator: Generator, method: str, cfg: CompareConfig, seed: int,
                    folder: Path | None = None, progress: bool = False) -> DirectionSet:
    """``cfg.num_directions`` directions of ``generator`` by ``method``, best first where the method ranks them."""
    k, d = cfg.num_directions, generator.latent_dim
    variant = _LD_VARIANT.fullmatch(method)
    if variant:
        from ..discovery import discover
        found = discover(generator, num_directions=_ld_trained(method, cfg), parametrization=variant.group(1),
                         steps=cfg.ld_steps, batch_size=cfg.batch_size, seed=seed, lr=cfg.lr, device=cfg.device,
                         out_dir=None if folder is None else folder / "discovery", progress=progress)
        directions = found.directions
        return directions.top(k)  # by importance score; in trained order when unscored
    if method in ("sefa", "sefa-raw"):
        from ..closed_form import sefa
        return sefa(generator, k, normalize=method == "sefa")
    if method == "ganspace":
        from ..closed_form import ganspace
        return ganspace(generator, k, num_samples=cfg.ganspace_samples, seed=seed)
    if method == "random":
        return DirectionSet.random(d, k, seed=seed)
    if method == "identity":
        return DirectionSet.identity(d, k)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(KNOWN_METHODS)}")


def _ld_trained(method: str, cfg: CompareConfig) -> int | None:
    """K that an LD method trains (None for other methods)."""
    variant = _LD_VARIANT.fullmatch(method)
    if not variant:
        return None
    return int(variant.group(2)) if variant.group(2) else cfg.ld_num_directions or cfg.num_directions


def evaluate(generator: Generator, directions: DirectionSet, cfg: CompareConfig, seed: int,
             dataset: tuple | None) -> dict:
    """RCA, ground-truth scores and factor cosine of one direction set (missing parts are left out)."""
    scores: dict = {}
    if cfg.rca_steps:
        from .rca import rca
        tick = time.perf_counter()
        scores["rca"] = rca(generator, directions, steps=cfg.rca_steps, seed=seed, batch_size=cfg.batch_size,
                            lr=cfg.lr, device=cfg.device)
        scores["rca_seconds"] = time.perf_counter() - tick
    if cfg.gt_train and dataset is not None:
        from .ground_truth import ground_truth_scores
        images, factors = dataset
        gt = ground_truth_scores(generator, directions, images, factors, num_train=cfg.gt_train,
                                 steps=cfg.gt_steps, batch_size=cfg.batch_size, image_size=cfg.gt_image_size,
                                 seed=seed, device=cfg.device)
        scores.update({key: gt[key] for key in ("mig", "dci_disentanglement", "dci_completeness",
                                                "dci_informativeness", "modularity", "encoder_r2")})
        scores["ground_truth_seconds"] = gt["seconds"]
    truth = generator.factor_directions()
    if truth is not None:
        scores["factor_cosine"] = best_cosines(directions.matrix, truth.cpu()).mean().item()
    return scores


def compare(generator: Generator, k: int = 10, seeds=(0, 1, 2), methods=METHODS, out_dir: str | Path | None = None,
            runs_dir: str | Path = "runs", progress: bool = True, **settings) -> Comparison:
    """Run every method for every seed on ``generator``; return the results and the report's path.

    ``settings`` are the fields of :class:`CompareConfig` (``ld_steps``, ``rca_steps``, ``gt_train``...).
    """
    cfg = CompareConfig(num_directions=k, seeds=tuple(seeds), methods=tuple(methods), **settings)
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else new_run_dir(runs_dir, f"compare-{generator.name}-k{k}")
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, cfg)
    save_config(out, {"compare": asdict(cfg), "generator": generator.describe()})
    log = MetricsLog(out)
    dataset = None  # rendered on first need: a resumed comparison with every cell done skips it
    results = []
    for seed in cfg.seeds:
        for method in cfg.methods:
            folder = out / method / f"seed{seed}"
            if (folder / RESULT).exists():  # finished earlier: resume past it
                results.append(json.loads((folder / RESULT).read_text()))
                continue
            if dataset is None:
                dataset = _real_dataset(generator, cfg, log) or ()
            result = _run_cell(generator, method, seed, cfg, folder, dataset or None, progress)
            atomic_write_text(folder / RESULT, json.dumps(result, indent=1))
            log.write(result)
            log.log(f"{method} seed {seed}: " + ", ".join(f"{m}={result[m]:.3f}" for m in METRICS if m in result)
                    + (f" error: {result['error']}" if "error" in result else ""))
            if progress:
                print(_cell_line(result), flush=True)
            results.append(result)
    comparison = Comparison(out, results)
    comparison.chart = write_chart(results, cfg.methods, out / "comparison.png")
    comparison.report = write_report(results, cfg, generator, out, comparison.chart)
    return comparison


def _check_resumable(out: Path, cfg: CompareConfig) -> None:
    """Cells kept from an earlier run must have been measured with the same settings."""
    path = out / "config.json"
    if not path.exists():
        return
    before = json.loads(path.read_text()).get("compare", {})
    now = json.loads(json.dumps(asdict(cfg)))  # tuples -> lists, as stored
    changed = sorted(key for key in now if key not in ("seeds", "methods") and before.get(key) != now[key])
    if changed:
        raise ValueError(f"{out} holds a comparison with other settings ({', '.join(changed)}); "
                         "use a new --out folder or the same settings")


def _run_cell(generator, method, seed, cfg, folder, dataset, progress) -> dict:
    result = {"method": method, "seed": seed}
    tick = time.perf_counter()
    try:
        directions = find_directions(generator, method, cfg, seed, folder, progress)
    except (DirectionError, GeneratorError) as exc:  # e.g. no first-layer weight, or k > what the method gives
        result["error"] = str(exc)
        return result
    result["find_seconds"] = time.perf_counter() - tick
    directions.meta.setdefault("method", method)
    directions.meta.setdefault("generator", generator.describe())  # the space and W+ layer range every set lives in
    directions.save(folder / "directions")
    result.update(evaluate(generator, directions, cfg, seed, dataset))
    return result


def _real_dataset(generator: Generator, cfg: CompareConfig, log: MetricsLog):
    if not cfg.gt_train:
        return None
    from .ground_truth import ground_truth_dataset
    try:
        images, factors, names = ground_truth_dataset(generator, cfg.gt_eval, seed=10_000)
    except GeneratorError as exc:
        log.log(f"no ground-truth metrics: {exc}")
        return None
    log.log(f"ground truth: {len(factors)} real points, factors {', '.join(names)}")
    return images, factors


# -- summary ---------------------------------------------------------------------------
def summarize(results: list[dict], methods) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{method: {metric: (mean, std, count)}} over seeds; std is the sample std (0 for one seed)."""
    summary: dict = {}
    for method in methods:
        rows = [r for r in results if r["method"] == method and "error" not in r]
        summary[method] = {}
        for metric in METRICS:
            values = [r[metric] for r in rows if r.get(metric) is not None]
            if values:
                mean = sum(values) / len(values)
                std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
                summary[method][metric] = (mean, std, len(values))
    return summary


def write_report(results: list[dict], cfg: CompareConfig, generator: Generator, out: Path,
                 chart: Path | None) -> Path:
    from .. import report
    summary = summarize(results, cfg.methods)
    shown = [m for m in METRICS if any(m in summary[method] for method in cfg.methods)]
    rows = []
    for method in cfg.methods:
        cells = [_mean_std(m, *summary[method][m][:2]) if m in summary[method] else "—" for m in shown]
        rows.append([method] + cells)
    errors = sorted({(r["method"], r["error"]) for r in results if "error" in r})
    settings = [[key, value] for key, value in asdict(cfg).items()]
    sections = [
        ("Results", f"Mean ± std over seeds {list(cfg.seeds)}; k = {cfg.num_directions} directions per method. "
         "RCA chance level = 1/k. MIG, DCI and modularity come from the ground-truth encoder protocol "
         f"({cfg.gt_train} generated pairs, {cfg.gt_steps} steps, {cfg.gt_eval} real points; the paper uses "
         "500k pairs and 10k points). Encoder R² is the encoder's held-out fit on generated pairs: "
         "directions that move parts of the latent the image ignores cannot be predicted from the image, "
         "so a low R² is itself informative. Times are wall-clock on the machine as it was (shared machines "
         "inflate them).\n\n" + report.table(["method"] + [METRIC_LABELS[m] for m in shown], rows)),
    ]
    if chart is not None:
        sections.append(("Chart", report.image(chart, out, "comparison")))
    if errors:
        sections.append(("Methods that could not run", "\n".join(f"- {m}: {e}" for m, e in errors)))
    sections.append(("Settings", report.table(["option", "value"], settings)
                     + f"\n\nGenerator: `{json.dumps(generator.describe(), default=str)}`"))
    return report.write(out / "report.md", f"Comparison of direction-finding methods on {generator.name}", sections)


def _mean_std(metric: str, mean: float, std: float) -> str:
    if metric == "find_seconds":  # from 1e-4 s (baselines) to minutes (LD)
        return f"{_seconds(mean)} ± {_seconds(std)}"
    return f"{mean:.3f} ± {std:.3f}"


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def write_chart(results: list[dict], methods, path: Path) -> Path | None:
    """Grouped bars (one group per metric in [0, 1], one bar per method) with std error bars."""
    summary = summarize(results, methods)
    metrics = [m for m in ("rca", "mig", "dci_disentanglement", "modularity", "factor_cosine")
               if any(m in summary[method] for method in methods)]
    if not metrics:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _chart_with_pillow(summary, methods, metrics, path)
    fig, ax = plt.subplots(figsize=(2.6 + 1.4 * len(metrics), 3.6), dpi=120)
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        means = [summary[method].get(m, (0.0, 0.0, 0))[0] for m in metrics]
        stds = [summary[method].get(m, (0.0, 0.0, 0))[1] for m in metrics]
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(metrics))]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=method)
    ax.set_xticks(range(len(metrics)), [METRIC_LABELS[m] for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _chart_with_pillow(summary, methods, metrics, path: Path) -> Path:
    # Fallback without matplotlib: the same grouped bars, drawn by hand.
    from PIL import Image, ImageDraw
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127)]
    group, height, top, bottom, left = 40 + 18 * len(methods), 300, 20, 40, 40
    image = Image.new("RGB", (left + group * len(metrics) + 120, height + top + bottom), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(left, top), (left, top + height), (image.width - 120, top + height)], fill="black")
    for tick in (0.0, 0.5, 1.0):
        y = top + height * (1 - tick)
        draw.text((4, y - 6), f"{tick:.1f}", fill="black")
    for j, metric in enumerate(metrics):
        x0 = left + j * group + 20
        for i, method in enumerate(methods):
            mean, std, _ = summary[method].get(metric, (0.0, 0.0, 0))
            x = x0 + 18 * i
            draw.rectangle([x, top + height * (1 - min(mean, 1)), x + 14, top + height], fill=palette[i % len(palette)])
            draw.line([(x + 7, top + height * (1 - min(mean + std, 1.05))), (x + 7, top + height * (1 - max(mean - std, 0)))],
                      fill="black")
        draw.text((x0, top + height + 8), METRIC_LABELS[metric], fill="black")
    for i, method in enumerate(methods):
        y = top + 14 * i
        draw.rectangle([image.width - 112, y, image.width - 102, y + 10], fill=palette[i % len(palette)])
        draw.text((image.width - 98, y - 1), method, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _cell_line(result: dict) -> str:
    if "error" in result:
        return f"{result['method']:>10} seed {result['seed']}: could not run ({result['error']})"
    parts = [f"{METRIC_LABELS[m]} {result[m]:.3f}" for m in METRICS if m in result and m != "find_seconds"]
    return f"{result['method']:>10} seed {result['seed']}: " + ", ".join(parts) + f" ({result['find_seconds']:.1f} s to find)"


# -- command line ----------------------------------------------------------------------
EXAMPLES = """examples:
  latentdirs compare                                            # shipped shapes3d GAN, k=10, 3 seeds
  latentdirs compare --generator planted -k 5 --seeds 0 --ld-steps 800 --gt-steps 500
  latentdirs compare --methods sefa,ganspace,random --rca-steps 0     # closed-form only, ground truth only
  latentdirs compare --out runs/00012-compare-shapes3d-k10            # resume an interrupted comparison
"""


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like 0,1,2; got {text!r}") from None


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    from ..cli import _Formatter, add_generator_options, positive_float, positive_int
    p = subparsers.add_parser("compare", help="LD vs SeFa vs GANSpace vs baselines: RCA, MIG, DCI, modularity, time",
                              description=__doc__ + "\n" + EXAMPLES, formatter_class=_Formatter)
    add_generator_options(p)
    m = p.add_argument_group("methods")
    m.add_argument("-k", "--num-directions", type=positive_int, default=10, help="directions evaluated per method")
    m.add_argument("--methods", type=_comma_list, default=",".join(METHODS),
                   help=f"comma-separated, from: {', '.join(KNOWN_METHODS)} (sefa-raw = SeFa without weight "
                        "normalization), or ld-<parametrization>-K<n>: LD trains n directions and keeps its top k")
    m.add_argument("--seeds", type=_seed_list, default="0,1,2", help="comma-separated seeds")
    m.add_argument("--ld-num-directions", type=positive_int, default=None,
                   help="K trained by LD before keeping its top k; unset = k")
    m.add_argument("--ld-steps", type=positive_int, default=1_500, help="LD training steps")
    m.add_argument("--batch-size", type=positive_int, default=64, help="batch of LD, RCA and the encoder")
    m.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate of LD and RCA")
    m.add_argument("--ganspace-samples", type=positive_int, default=20_000, help="latents sampled for GANSpace's PCA")
    e = p.add_argument_group("evaluation")
    e.add_argument("--rca-steps", type=int, default=600, help="reconstructor steps per RCA (0 = no RCA)")
    e.add_argument("--gt-train", type=int, default=5_000,
                   help="generated pairs for the ground-truth encoder (paper: 500k; 0 = no ground truth)")
    e.add_argument("--gt-steps", type=positive_int, default=1_500, help="encoder training steps")
    e.add_argument("--gt-eval", type=positive_int, default=5_000, help="real points scored (paper: 10k)")
    e.add_argument("--gt-image-size", type=int, default=32, help="encoder input size (0 = generator resolution)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="comparison folder; unset = a new numbered folder in --runs-dir")
    o.add_argument("--runs-dir", default="runs", help="where numbered run folders go")
    o.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch; unset = all")
    o.add_argument("--device", default=None, help="cpu, cuda, cuda:1; unset = cuda when available")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args: argparse.Namespace) -> int:
    from ..cli import generator_from_args
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = generator_from_args(args)
    comparison = compare(
        generator, k=args.num_directions, seeds=args.seeds, methods=args.methods, out_dir=args.out,
        runs_dir=args.runs_dir, ld_num_directions=args.ld_num_directions, ld_steps=args.ld_steps,
        batch_size=args.batch_size, lr=args.lr, rca_steps=args.rca_steps, ganspace_samples=args.ganspace_samples,
        gt_train=args.gt_train, gt_steps=args.gt_steps, gt_eval=args.gt_eval,
        gt_image_size=args.gt_image_size or None, device=args.device)
    print(f"report: {comparison.report}")
    return 0
