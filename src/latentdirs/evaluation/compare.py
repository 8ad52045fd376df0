"""``latentdirs compare``: LD, SeFa, GANSpace, LatentCLR and the baselines on one generator, side by side.

For every method and seed: find ``k`` directions (LD keeps its top ``k`` by importance
score), save them in ``METHOD/seedS/``, then measure
  - RCA: a fresh reconstructor trained against the frozen directions (Voynov & Babenko);
  - MIG, DCI and modularity with the ground-truth encoder protocol (Khrulkov et al.),
    when the generator has a dataset with known factors (planted, shapes3d);
  - factor cosine: mean best |cos| to the true factor directions (planted generator only);
  - names: the factor each direction moves and its purity, read by the shipped factor classifier
    (:func:`latentdirs.name_directions`; generators with the procedural 3D-Shapes factors);
  - the time each method takes to find its directions.
A Markdown report (mean ± std over seeds) and a bar chart close the run. Finished
method/seed cells are kept: re-running the same command into the same folder resumes.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from ..cells import read_result, run_cells, write_result
from ..configs import check_declared
from ..directions import DirectionError, DirectionSet, best_cosines
from ..discovery import PRESETS, STARTS
from ..generators.base import Generator, GeneratorError
from ..runs import Run, new_run_dir

METHODS = ("ld-unit", "ld-ortho", "sefa", "ganspace", "random", "identity")
KNOWN_METHODS = METHODS + ("ld-cayley", "ld-linear", "sefa-raw", "latentclr")
# "ld-unit-K32": train K = 32 directions, keep the top k by importance (the protocol's selection lever).
_LD_VARIANT = re.compile(r"ld-(unit|ortho|cayley|linear)(?:-K([1-9][0-9]*))?")
METRICS = ("rca", "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "modularity",
           "factor_cosine", "purity", "factors_named", "encoder_r2", "find_seconds")
METRIC_LABELS = {"rca": "RCA", "mig": "MIG", "dci_disentanglement": "DCI-D", "dci_completeness": "DCI-C",
                 "dci_informativeness": "DCI-I", "modularity": "Modularity", "factor_cosine": "factor cos",
                 "encoder_r2": "encoder R²", "find_seconds": "time to find (s)", "purity": "name purity",
                 "factors_named": "factors named"}
_SET_BY_COMPARE = {"num_directions": "-k, ld_num_directions or the method's -K<n>",
                   "parametrization": "the method name", "steps": "ld_steps", "batch_size": "batch_size",
                   "lr": "lr", "seed": "seeds", "device": "device", "start": "ld_start"}
LD_PRESET = PRESETS["disentangle"]
"""LD's options in a comparison where CompareConfig does not set them (``ld_preset``'s default)."""


@dataclass
class CompareConfig:
    """Every setting of a comparison; saved as ``config.json`` in its folder."""

    num_directions: int = 10
    """k, directions per method that are evaluated (the protocol's top k)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds, comma-separated on the command line; every method runs once per seed."""
    methods: tuple[str, ...] = METHODS
    """Comma-separated, from: ld-unit, ld-ortho, ld-cayley, ld-linear, sefa, sefa-raw (SeFa without weight
    normalization), ganspace, latentclr (contrastive, Yüksel et al. 2021; not in the default set), random,
    identity; or ld-<parametrization>-K<n>: LD trains n directions and keeps its top k."""
    ld_num_directions: int | None = None
    """K that LD trains before its top k are kept (None = k)."""
    ld_preset: str = "disentangle"
    """The discover preset LD's other options come from: disentangle (SeFa start, no shift regression,
    overlap penalty; beat SeFa and GANSpace on MIG and DCI-D) or short (the paper's loss, as the tables on the first shipped GAN ran it), ..."""
    ld_steps: int | None = None
    """LD and LatentCLR training steps (None = ld_preset's)."""
    ld_start: str | None = None
    """Where every LD method's A starts (None = ld_preset's): axes (the paper's), sefa or ganspace
    (their top directions; label-free, LD then refines the closed form)."""
    ld_options: dict = field(default_factory=dict)
    """Other DiscoveryConfig fields for every LD method, over ld_preset (``--ld-set KEY=VALUE``,
    e.g. ``overlap_weight=10``): one comparison folder per LD variant measures a lever."""
    batch_size: int = LD_PRESET.batch_size
    """Batch of LD, RCA and the ground-truth encoder; LatentCLR moves batch / k latents along all k
    directions per step, about LD's number of images."""
    lr: float = LD_PRESET.lr
    """Adam learning rate of LD, LatentCLR and the RCA reconstructor (the paper's 1e-4 needs ~10x the steps)."""
    rca_steps: int = 600
    """Reconstructor steps per RCA measurement (0 = skip RCA)."""
    ganspace_samples: int = 20_000
    """Latents sampled for GANSpace's PCA."""
    gt_train: int = 5_000
    """Generated pairs the ground-truth encoder trains on (the paper: 500k; 0 = skip ground truth)."""
    gt_steps: int = 1_500
    """Training steps of the ground-truth encoder."""
    gt_eval: int = 5_000
    """Real points scored (the paper: 10k)."""
    gt_image_size: int | None = 32
    """Encoder input size (None = the generator's resolution)."""
    name_latents: int = 64
    """Latents the factor classifier reads per direction and shift to name each direction (0 = no names;
    only generators whose ground truth has the shipped classifier's factors, the shapes3d GANs)."""
    dci_predictor: str = "gbt"
    """DCI's per-factor predictor: gbt (disentanglement_lib's gradient boosting, comparable with published
    DCI) or forest (about 20x faster on CPU; its D and C run lower on mixed codes)."""
    device: str = "auto"
    """cpu, cuda, cuda:1 or auto (cuda when available)."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("num_directions", "ld_steps", "batch_size", "ganspace_samples", "gt_steps",
                                           "gt_eval")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"dci_predictor": ("gbt", "forest"), "ld_preset": tuple(PRESETS),
                                                     "ld_start": STARTS}

    def __post_init__(self) -> None:
        check_declared(self)
        unknown = [m for m in self.methods if m not in KNOWN_METHODS and not _LD_VARIANT.fullmatch(m)]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join(KNOWN_METHODS)} "
                             "or ld-<parametrization>-K<n> (train n directions, keep the top k)")
        for method in self.methods:
            trained = _ld_trained(method, self)
            if trained is not None and trained < self.num_directions:
                raise ValueError(f"{method} trains {trained} directions, fewer than k = {self.num_directions}")
        from ..discovery import DiscoveryConfig
        known = {f.name for f in fields(DiscoveryConfig)}
        for key in self.ld_options:
            if key in _SET_BY_COMPARE:
                raise ValueError(f"LD's {key} is set by compare itself ({_SET_BY_COMPARE[key]}), not by ld_options")
            if key not in known:
                raise ValueError(f"unknown LD option {key!r} in ld_options; options: {', '.join(sorted(known))}")
        if not self.methods or not self.seeds:
            raise ValueError("need at least one method and one seed")
        if 0 < self.gt_train < 20:  # checked here, before any method runs, not after the first cell
            raise ValueError(f"gt_train must be 0 (skip ground truth) or >= 20 (a tenth is held out), got "
                             f"{self.gt_train}")


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
        trained = _ld_trained(method, cfg)
        start = {} if cfg.ld_start is None else {"start": cfg.ld_start}
        found = discover(generator, PRESETS[cfg.ld_preset], num_directions=trained, parametrization=variant.group(1),
                         steps=ld_steps(cfg), batch_size=cfg.batch_size, seed=seed, lr=cfg.lr, device=cfg.device,
                         out_dir=None if folder is None else folder / "discovery", progress=progress,
                         **start, **cfg.ld_options)
        directions = found.directions
        return directions.top(k)  # by importance score; in trained order when unscored
    if method in ("sefa", "sefa-raw"):
        from ..closed_form import sefa
        return sefa(generator, k, normalize=method == "sefa")
    if method == "ganspace":
        from ..closed_form import ganspace
        return ganspace(generator, k, num_samples=cfg.ganspace_samples, seed=seed)
    if method == "latentclr":
        from ..contrastive import latentclr
        # N latents each moved along all k directions: N = batch / k renders about LD's images per step.
        return latentclr(generator, k, steps=ld_steps(cfg), batch_size=max(2, cfg.batch_size // k), lr=cfg.lr,
                         seed=seed, device=cfg.device, progress=progress)
    if method == "random":
        return DirectionSet.random(d, k, seed=seed)
    if method == "identity":
        return DirectionSet.identity(d, k)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(KNOWN_METHODS)}")


def ld_steps(cfg: CompareConfig) -> int:
    """Training steps of LD and LatentCLR: ``ld_steps``, else the LD preset's."""
    return cfg.ld_steps or PRESETS[cfg.ld_preset].steps


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
        from ..devices import resolve_device
        gt = ground_truth_scores(generator, directions, images, factors, num_train=cfg.gt_train,
                                 steps=cfg.gt_steps, batch_size=cfg.batch_size, image_size=cfg.gt_image_size or None,
                                 seed=seed, device=str(resolve_device(cfg.device)), dci_predictor=cfg.dci_predictor)
        scores.update({key: gt[key] for key in ("mig", "dci_disentanglement", "dci_completeness",
                                                "dci_informativeness", "modularity", "encoder_r2")})
        scores["ground_truth_seconds"] = gt["seconds"]
    truth = generator.factor_directions()
    if truth is not None:
        scores["factor_cosine"] = best_cosines(directions.matrix, truth.cpu()).mean().item()
    from .naming import has_factor_classifier, name_directions
    if cfg.name_latents and has_factor_classifier(generator):
        names = name_directions(generator, directions, num_latents=cfg.name_latents, seed=seed)
        scores.update(names.summary(), names=[names.label(k) for k in range(names.num_directions)])
    return scores


def compare(generator: Generator, k: int = 10, seeds=(0, 1, 2), methods=METHODS, out_dir: str | Path | None = None,
            runs_dir: str | Path = "runs", progress: bool = True, **settings) -> Comparison:
    """Run every method for every seed on ``generator``; return the results and the report's path.

    ``settings`` are the fields of :class:`CompareConfig` (``ld_steps``, ``rca_steps``, ``gt_train``...).
    """
    cfg = CompareConfig(num_directions=k, seeds=tuple(seeds), methods=tuple(methods), **settings)
    out = Path(out_dir) if out_dir is not None else new_run_dir(runs_dir, f"compare-{generator.name}-k{k}")
    out.mkdir(parents=True, exist_ok=True)
    # Kept cells must have been measured with these settings; seeds and methods may be added.
    # (folders written before ``ld_start`` was the one name store it as ld_init: checked under both)
    run = Run(out)
    run.check_config("compare", {**asdict(cfg), "ld_init": cfg.ld_start}, ignore={"seeds", "methods", "device"},
                     generator=generator.describe())
    run.save_config({"compare": asdict(cfg), "generator": generator.describe()})
    cells = [(method, seed, out / method / f"seed{seed}") for seed in cfg.seeds for method in cfg.methods]
    done = {folder: read_result(folder) for _, _, folder in cells}
    todo = [cell for cell in cells if done[cell[2]] is None]
    # The real images are rendered once, and not at all when every cell is done.
    dataset = (_real_dataset(generator, cfg, run) or None) if todo else None
    jobs = [(generator, method, seed, cfg, folder, dataset, progress) for method, seed, folder in todo]
    for result in run_cells(_run_cell, jobs, progress=False):
        run.append(result)
        run.log(f"{result['method']} seed {result['seed']}: "
                + ", ".join(f"{m}={result[m]:.3f}" for m in METRICS if m in result)
                + (f" error: {result['error']}" if "error" in result else ""))
        if progress:
            print(_cell_line(result), flush=True)
        done[out / result["method"] / f"seed{result['seed']}"] = result
    results = [done[folder] for _, _, folder in cells]
    comparison = Comparison(out, results)
    comparison.chart = write_chart(results, cfg.methods, out / "comparison.png")
    comparison.report = write_report(results, cfg, generator, out, comparison.chart)
    return comparison


def _run_cell(generator, method, seed, cfg, folder, dataset, progress) -> dict:
    """Find and measure one method x seed; its result.json marks the cell done."""
    result = {"method": method, "seed": seed}
    tick = time.perf_counter()
    try:
        directions = find_directions(generator, method, cfg, seed, folder, progress)
    except (DirectionError, GeneratorError) as exc:  # e.g. no first-layer weight, or k > what the method gives
        result["error"] = str(exc)
    else:
        result["find_seconds"] = time.perf_counter() - tick
        directions.meta.setdefault("method", method)
        directions.meta.setdefault("generator", generator.describe())  # the space and W+ layer range every set lives in
        directions.save(folder / "directions")
        result.update(evaluate(generator, directions, cfg, seed, dataset))
    write_result(folder, result)
    return result


def _real_dataset(generator: Generator, cfg: CompareConfig, run: Run):
    if not cfg.gt_train:
        return None
    from .ground_truth import ground_truth_dataset
    try:
        images, factors, names = ground_truth_dataset(generator, cfg.gt_eval, seed=10_000)
    except GeneratorError as exc:
        run.log(f"no ground-truth metrics: {exc}")
        return None
    run.log(f"ground truth: {len(factors)} real points, factors {', '.join(names)}")
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
    named = [r for r in results if r.get("names")]
    if named:
        first = min(r["seed"] for r in named)
        sections.append(("Named directions", "Each direction's dominant factor and its purity (the share of the "
                         "factor classifier's read change that falls on it; `latentdirs.name_directions`), seed "
                         f"{first}. 'name purity' above is the mean over the k directions, 'factors named' how many "
                         "factors have a direction of purity >= 0.5.\n\n"
                         + report.table(["method", "directions (best first): #index factor purity"],
                                        [[r["method"], "; ".join(f"#{i} {n}" for i, n in enumerate(r["names"]))]
                                         for method in cfg.methods for r in named
                                         if r["method"] == method and r["seed"] == first])))
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
    if metric == "factors_named":  # a count of factors
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.3f} ± {std:.3f}"


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def write_chart(results: list[dict], methods, path: Path) -> Path | None:
    """Grouped bars (one group per metric in [0, 1], one bar per method) with std error bars."""
    from ..charts import grouped_bars
    summary = summarize(results, methods)
    metrics = [m for m in ("rca", "mig", "dci_disentanglement", "modularity", "factor_cosine")
               if any(m in summary[method] for method in methods)]
    if not metrics:
        return None
    series = {method: ([summary[method].get(m, (0.0, 0.0, 0))[0] for m in metrics],
                       [summary[method].get(m, (0.0, 0.0, 0))[1] for m in metrics]) for method in methods}
    return grouped_bars([METRIC_LABELS[m] for m in metrics], series, path)


def _cell_line(result: dict) -> str:
    if "error" in result:
        return f"{result['method']:>10} seed {result['seed']}: could not run ({result['error']})"
    parts = [f"{METRIC_LABELS[m]} {result[m]:.3f}" for m in METRICS if m in result and m != "find_seconds"]
    return f"{result['method']:>10} seed {result['seed']}: " + ", ".join(parts) + f" ({result['find_seconds']:.1f} s to find)"
