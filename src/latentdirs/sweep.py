"""Ablations as a feature: a grid over discovery options, one run folder per cell.

    latentdirs sweep --generator planted --grid num_directions=5,10,20,40 --grid shift_weight=0.25 \\
                     --set steps=2000 --out runs/sweep-k

Every cell is an ordinary discovery run folder (``k10-lambda0.25-unit-seed0/``: config.json,
log.txt, metrics.jsonl, checkpoint.pt, directions/) plus ``result.json`` with the cell's
measures: RCA (a fresh reconstructor against the frozen directions), the held-out accuracy
of the jointly trained reconstructor, the number of distinct directions and the collapse
check (:mod:`latentdirs.evaluation.diversity`), optionally ground-truth scores. The sweep
folder holds ``sweep.log``, ``results.jsonl`` (one line per cell) and ``report.md`` with
tables and line plots (metric vs K, metric vs lambda, ...).

Re-running the same command skips complete cells (directions saved + result written) and
continues an interrupted cell from its checkpoint, so a killed sweep just resumes. Cells
run one after another, or in ``workers`` processes with one thread each.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import ClassVar

from .cells import RESULT, read_json, run_cells, write_result
from .configs import check_declared, parse_field
from .discovery import CHECKPOINT, PRESETS, DiscoveryConfig
from .runs import Run, atomic_write_text, read_jsonl, write_jsonl

OVERVIEW = "overview.png"
ALIASES = {"k": "num_directions", "lambda": "shift_weight", "lam": "shift_weight", "param": "parametrization",
           "bs": "batch_size"}
# How a cell folder names its values: k10-lambda0.25-unit-seed0 (+ any other grid key).
SHORT = {"num_directions": "k", "shift_weight": "lambda", "parametrization": "", "seed": "seed",
         "batch_size": "bs", "reconstructor": "", "shift_range": "range"}
NAMED_ALWAYS = ("num_directions", "shift_weight", "parametrization", "seed")
METRICS = (("rca", "RCA"), ("joint_accuracy", "joint acc."), ("distinct", "distinct dirs"),
           ("mean_abs_cos", "mean \\|cos\\|"), ("collapse_ratio_min", "min spread ratio"),
           ("collapsed_fraction", "collapsed"))


@dataclass
class SweepConfig:
    """How cells are run and measured (the discovery options themselves come from the grid)."""

    rca_steps: int = 1000
    """Training steps of the fresh RCA reconstructor per cell (0 = report only the joint accuracy)."""
    rca_batch_size: int | None = None
    """Batch of the RCA reconstructor (None = the cell's batch size)."""
    eval_latents: int = 16
    """Fixed latents for the change fields and the collapse check (the same for every cell)."""
    change_shift: float = 3.0
    """s in the change field G(z + s h) - G(z)."""
    same_threshold: float = 0.9
    """Two directions are the same when their change fields have |cos| above this."""
    collapse_shift: float = 8.0
    """s at which the spread of G(z + s h) over z is measured (beyond the training range 6)."""
    collapse_threshold: float = 0.1
    """A direction is collapsed when that spread is below this fraction of the spread of G(z)."""
    ground_truth: bool = False
    """Also score each cell against known factors (generators with factors only)."""
    ground_truth_top: int = 10
    """Directions scored against the factors: the top this many by image change (the protocol's k)."""
    ground_truth_steps: int = 1500
    """Training steps of the ground-truth encoder."""
    ground_truth_points: int = 5000
    """Real images with known factors that the codes are scored on."""
    workers: int = 1
    """Cells run in this many processes at once."""
    threads: int | None = None
    """torch threads per process (default: 1 with several workers, else torch's default)."""
    reevaluate: str | None = None
    """Measure complete cells again, keeping their directions: "all", or "measures" (all but RCA: cheap)."""
    render: bool = True
    """Draw each cell's directions into ``overview.png`` (rows = directions by image change, columns = shifts)."""
    progress: bool = True
    """Progress bars and the log echoed on the terminal."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("eval_latents", "ground_truth_top", "ground_truth_steps",
                                           "ground_truth_points", "workers")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"reevaluate": ("all", "measures")}

    def __post_init__(self) -> None:
        check_declared(self)


@dataclass
class SweepResult:
    out_dir: Path
    cells: list[dict] = field(default_factory=list)
    report: Path | None = None


# -- the grid ------------------------------------------------------------------------
def canonical_key(key: str) -> str:
    """'K', 'lambda', 'num-directions' -> the DiscoveryConfig field name."""
    key = key.strip().replace("-", "_")
    key = ALIASES.get(key.lower(), key)
    options = sorted(f.name for f in dataclasses.fields(DiscoveryConfig))
    if key not in options:
        raise ValueError(f"unknown discovery option {key!r}; options: {', '.join(options)} "
                         f"(aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})")
    return key


def parse_assignment(text: str) -> tuple[str, list]:
    """'num_directions=5,10,20' -> ('num_directions', [5, 10, 20]); values parsed as the command line does."""
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE[,VALUE...], got {text!r}")
    key, values = text.split("=", 1)
    key = canonical_key(key)
    parsed = [parse_field(DiscoveryConfig, key, v) for v in values.split(",") if v.strip()]
    if not parsed:
        raise ValueError(f"no values for {key} in {text!r}")
    return key, parsed


def parse_settings(items: list[str], flag: str, hint: str = "") -> dict:
    """``--set``-style arguments, one value each -> {option: value}; ``hint`` ends the error for several."""
    settings = {}
    for item in items:
        key, values = parse_assignment(item)
        if len(values) != 1:
            raise ValueError(f"{flag} {key} takes one value, got {values}{hint}")
        settings[key] = values[0]
    return settings


def parse_grid(items: list[str]) -> dict[str, list]:
    """``--grid`` arguments -> {option: [values]}; a key given twice keeps the union, in order."""
    grid: dict[str, list] = {}
    for item in items:
        key, values = parse_assignment(item)
        grid.setdefault(key, [])
        grid[key] += [v for v in values if v not in grid[key]]
    return grid


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def cell_name(options: dict, grid_keys=()) -> str:
    """k10-lambda0.25-unit-seed0, plus every other grid key (steps2000, lr0.001, ...)."""
    keys = list(NAMED_ALWAYS) + [k for k in grid_keys if k not in NAMED_ALWAYS]
    return "-".join(f"{SHORT.get(k, k.replace('_', ''))}{_fmt(options[k])}" for k in keys)


def expand(grid: dict[str, list], base_options: dict | None = None, design: str = "product") -> list[tuple[str, dict]]:
    """Cells as (name, full discovery options). ``product``: every combination of the grid's
    values; ``one-at-a-time``: each key varies alone while the others stay at their base
    value (the paper's ablations: K at the default lambda, lambda at the default K); the
    keys take turns (first value of each key, then the second...), so list the values that
    matter most first."""
    grid = {canonical_key(k): list(v) for k, v in grid.items()}
    empty = [k for k, values in grid.items() if not values]
    if empty:  # product() would silently give no cells at all
        raise ValueError(f"the grid gives {', '.join(empty)} no values: list at least one for each option")
    base = dataclasses.asdict(PRESETS["sweep"])
    base.update({canonical_key(k): v for k, v in (base_options or {}).items()})
    if design == "product":
        combos = [dict(zip(grid, values)) for values in product(*grid.values())]
    elif design == "one-at-a-time":  # keys take turns, so a sweep cut short has a bit of every curve
        turns = max((len(v) for v in grid.values()), default=0)
        combos = [{key: values[i]} for i in range(turns) for key, values in grid.items() if i < len(values)] or [{}]
    else:
        raise ValueError(f"design must be 'product' or 'one-at-a-time', got {design!r}")
    cells, seen = [], set()
    for combo in combos:
        options = {**base, **combo}
        name = cell_name(options, grid)
        if name not in seen:
            seen.add(name)
            cells.append((name, options))
    return cells


# -- one cell ------------------------------------------------------------------------
def cell_state(cell_dir: Path) -> str:
    """'complete' (directions + result), 'evaluate' (directions only), 'resume' (checkpoint) or 'new'."""
    if (cell_dir / "directions" / "directions.safetensors").exists():
        return "complete" if (cell_dir / RESULT).exists() else "evaluate"
    return "resume" if (cell_dir / CHECKPOINT).exists() else "new"


def _check_same_config(cell_dir: Path, options: dict, generator) -> None:
    Run(cell_dir).check_config("discovery", options, ignore=DiscoveryConfig.RUNTIME, generator=generator.describe())


def run_cell(generator, name: str, options: dict, cell_dir: Path, cfg: SweepConfig, progress: bool = False) -> dict:
    """Discover (or resume, or reuse) one cell's directions, measure them, write result.json."""
    from .directions import DirectionSet
    from .discovery import discover, reconstructor_accuracy
    cell_dir = Path(cell_dir)
    _check_same_config(cell_dir, options, generator)
    state = cell_state(cell_dir)
    discover_options = {k: v for k, v in options.items() if k != "device"}
    previous = read_json(cell_dir / RESULT)
    if state == "complete" and cfg.reevaluate == "measures" and previous:
        directions = DirectionSet.load(cell_dir)
        result = {**previous, **evaluate_directions(generator, directions, options, cfg, with_rca=False)}
        result.update({k: previous.get(k) for k in ("rca", "rca_seconds")})
        result["eval_seconds"] += previous.get("rca_seconds") or 0.0
        return _finish_cell(generator, directions, result, cell_dir, cfg)
    if state == "evaluate" and not (cell_dir / CHECKPOINT).exists():
        directions = DirectionSet.load(cell_dir)  # checkpoint deleted: the training accuracy stands in
        joint = directions.meta.get("final_accuracy")
    else:
        found = discover(generator, out_dir=cell_dir, resume=True, progress=progress, device=options.get("device"),
                         **discover_options)
        directions = found.directions
        joint = reconstructor_accuracy(generator, found.direction_matrix, found.reconstructor,
                                       DiscoveryConfig(**{k: v for k, v in options.items()}))
    result = {"cell": name, "options": options, "state_before": state, "joint_accuracy": joint,
              "final_train_accuracy": directions.meta.get("final_accuracy"),
              **evaluate_directions(generator, directions, options, cfg)}
    return _finish_cell(generator, directions, result, cell_dir, cfg)


def _finish_cell(generator, directions, result: dict, cell_dir: Path, cfg: SweepConfig) -> dict:
    result["train_seconds"] = training_seconds(cell_dir)
    result["seconds"] = result["train_seconds"] + result["eval_seconds"]
    if cfg.render:  # one latent, every direction strongest first, s = -8..8: enough to see "all alike"
        from .render import overview, save_image
        ranked = directions.sorted()
        save_image(overview(generator, ranked, indices=list(range(ranked.num_directions))), cell_dir / OVERVIEW)
    write_result(cell_dir, result)
    return result


def evaluate_directions(generator, directions, options: dict, cfg: SweepConfig, with_rca: bool = True) -> dict:
    from .evaluation.diversity import diversity_report
    from .evaluation.rca import rca
    tick = time.perf_counter()
    out: dict = {"rca": None}
    if cfg.rca_steps and with_rca:
        out["rca"] = rca(generator, directions, steps=cfg.rca_steps, seed=options["seed"],
                         batch_size=cfg.rca_batch_size or options["batch_size"], lr=options["lr"],
                         reconstructor=options["reconstructor"], device=options.get("device"),
                         shift_range=options["shift_range"], min_shift=options["min_shift"])
    out["rca_seconds"] = time.perf_counter() - tick
    out.update(diversity_report(generator, directions.matrix, num_latents=cfg.eval_latents,
                                change_shift=cfg.change_shift, same_threshold=cfg.same_threshold,
                                collapse_shift=cfg.collapse_shift, collapse_threshold=cfg.collapse_threshold))
    if cfg.ground_truth:
        out["ground_truth"] = _ground_truth(generator, directions, cfg)
    out["eval_seconds"] = time.perf_counter() - tick
    return out


def training_seconds(cell_dir: Path) -> float:
    """Discovery time of a run folder from its metrics.jsonl (counts every resumed part once)."""
    total, previous = 0.0, 0
    for record in read_jsonl(Path(cell_dir) / "metrics.jsonl"):
        total += record.get("sec_per_step", 0.0) * max(record["step"] - previous, 0)
        previous = max(previous, record["step"])
    return total


_GROUND_TRUTH_DATA: dict[str, tuple] = {}


def _ground_truth(generator, directions, cfg: SweepConfig) -> dict:
    """MIG / DCI / modularity of the top directions (Khrulkov et al. protocol), if available here."""
    try:
        from .evaluation.ground_truth import ground_truth_dataset, ground_truth_scores
    except ImportError as exc:
        return {"error": f"latentdirs.evaluation.ground_truth is not available ({exc})"}
    try:
        key = json.dumps(generator.describe(), sort_keys=True, default=str)
        if key not in _GROUND_TRUTH_DATA:  # the same real images for every cell
            _GROUND_TRUTH_DATA[key] = ground_truth_dataset(generator, cfg.ground_truth_points, seed=10_000)[:2]
        images, factors = _GROUND_TRUTH_DATA[key]
        top = directions.top(min(cfg.ground_truth_top, directions.num_directions)) if directions.scores is not None \
            else directions
        scores = ground_truth_scores(generator, top, images, factors, steps=cfg.ground_truth_steps)
    except Exception as exc:  # a generator without known factors, or an API that moved
        return {"error": f"{type(exc).__name__}: {exc}"}
    return scores if isinstance(scores, dict) else {"scores": scores}


# -- worker processes ----------------------------------------------------------------
_WORKER_GENERATORS: dict[str, object] = {}


def _worker_cell(payload, name: str, options: dict, cell_dir: str, cfg: SweepConfig, progress: bool = False) -> dict:
    if isinstance(payload, dict):  # a load spec: load once per process
        key = json.dumps(payload, sort_keys=True, default=str)
        if key not in _WORKER_GENERATORS:
            from .generators import generator_from_spec
            _WORKER_GENERATORS[key] = generator_from_spec(payload)
        generator = _WORKER_GENERATORS[key]
    else:
        generator = payload
    return run_cell(generator, name, options, Path(cell_dir), cfg, progress=progress)


# -- the sweep -----------------------------------------------------------------------
def _resolve_generator(spec_or_generator):
    from .generators import Generator, generator_from_spec, load_generator
    if isinstance(spec_or_generator, Generator):
        return spec_or_generator
    if isinstance(spec_or_generator, str):
        return load_generator(spec_or_generator)
    return generator_from_spec(spec_or_generator)


def sweep(generator, grid: dict[str, list] | list[dict[str, list]], base_options: dict | None = None,
          out_dir: str | Path = "runs/sweep", design: str = "product", config: SweepConfig | None = None,
          **sweep_options) -> SweepResult:
    """Run a grid of discovery runs and measure each; resumable.

    ``generator``: a Generator, a kind ("planted") or a load spec. ``grid``: {option: values}
    (or a list of grids, whose cells are joined); options are :class:`DiscoveryConfig`
    fields or their aliases (k, lambda). ``base_options`` fixes the others. ``sweep_options``
    are :class:`SweepConfig` fields (``rca_steps``, ``workers``...).
    """
    cfg = dataclasses.replace(config or SweepConfig(), **sweep_options)
    gen = _resolve_generator(generator)
    cells, names = [], set()
    if isinstance(grid, list) and not grid:
        raise ValueError("no grid: give {option: values}, or a list of such grids")
    for g in grid if isinstance(grid, list) else [grid]:
        for name, options in expand(g, base_options, design):
            if name not in names:
                names.add(name)
                cells.append((name, options))
    for _, options in cells:
        DiscoveryConfig(**options)  # a bad value fails here, before any cell runs
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out, log="sweep.log", echo=cfg.progress)
    _record_invocation(out, gen, grid, base_options, design, cfg, [n for n, _ in cells])
    todo = []
    for name, options in cells:
        state = cell_state(out / name)
        if state == "complete" and not cfg.reevaluate:
            _check_same_config(out / name, options, gen)
            run.log(f"skip {name} (complete)")
        else:
            verb = {"new": "run", "resume": "resume", "evaluate": "evaluate", "complete": "re-evaluate"}[state]
            run.log(f"{verb} {name}")
            todo.append((name, options))
    tick = time.perf_counter()
    # Worker processes load the generator from its spec (a module does not pickle well).
    payload = (getattr(gen, "load_spec", None) or gen) if cfg.workers > 1 else gen
    jobs = [(payload, name, options, str(out / name), cfg, cfg.progress and cfg.workers <= 1) for name, options in todo]
    for result in run_cells(_worker_cell, jobs, cfg.workers, cfg.threads, cfg.progress, desc="sweep cells"):
        run.log(f"done {result['cell']} in {result['seconds']:.1f} s: rca {_fmt_metric(result['rca'])}, "
                f"distinct {result['distinct']}/{result['options']['num_directions']}, "
                f"collapsed {result['collapsed']}")
        run.append(_flat(result), "results.jsonl")
    run.log(f"sweep finished: {len(todo)} cells run, {len(cells) - len(todo)} skipped, "
            f"{time.perf_counter() - tick:.1f} s")
    results = collect_results(out)
    write_jsonl(out / "results.jsonl", results)
    report = write_report(out)
    wanted = set(names)
    return SweepResult(out, [r for r in results if r["cell"] in wanted], report)


def _record_invocation(out: Path, gen, grid, base_options, design, cfg: SweepConfig, cells: list[str]) -> None:
    path = out / "sweep.json"
    record = read_json(path) or {"invocations": []}
    record["invocations"].append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "generator": gen.describe(),
                                  "grid": grid, "base_options": base_options or {}, "design": design,
                                  "config": dataclasses.asdict(cfg), "cells": cells})
    atomic_write_text(path, json.dumps(record, indent=1, default=str))


def _flat(result: dict) -> dict:
    """One results.jsonl line: the cell's varying options and scalar measures (no per-direction lists)."""
    keep = {k: v for k, v in result.items() if not isinstance(v, (list, dict))}
    options = result["options"]
    keep.update({k: options[k] for k in ("num_directions", "shift_weight", "parametrization", "seed", "steps",
                                         "batch_size", "lr", "reconstructor")})
    if isinstance(result.get("ground_truth"), dict):
        keep.update({f"gt_{k}": v for k, v in result["ground_truth"].items() if isinstance(v, (int, float))})
    return keep


def collect_results(out_dir: str | Path) -> list[dict]:
    """The flat results of every complete cell in a sweep folder, in sweep order."""
    out = Path(out_dir)
    order = [c for inv in read_json(out / "sweep.json").get("invocations", []) for c in inv["cells"]]
    rank = {name: i for i, name in reversed(list(enumerate(order)))}
    results = [_flat(read_json(p)) for p in sorted(out.glob(f"*/{RESULT}"))]
    return sorted(results, key=lambda r: (rank.get(r["cell"], len(rank)), r["cell"]))


# -- the report ----------------------------------------------------------------------
def _fmt_metric(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _varying(results: list[dict]) -> list[str]:
    keys = ("num_directions", "shift_weight", "parametrization", "steps", "batch_size", "lr", "reconstructor", "seed")
    return [k for k in keys if len({json.dumps(r[k]) for r in results}) > 1]


def _slices(results: list[dict], key: str, varying: list[str]) -> dict[tuple, list[dict]]:
    """Cells grouped by the values of the other varying keys, each group sorted by ``key``."""
    others = [k for k in varying if k != key]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault(tuple((k, r[k]) for k in others), []).append(r)
    return {g: sorted(cells, key=lambda r: r[key]) for g, cells in groups.items() if len(cells) > 1}


LABELS = {"num_directions": "K", "shift_weight": "lambda", "parametrization": "parametrization", "steps": "steps",
          "batch_size": "batch", "lr": "lr", "reconstructor": "reconstructor", "seed": "seed"}


def _ground_truth_columns(results: list[dict]) -> tuple:
    skip = {"gt_num_train", "gt_steps", "gt_num_eval", "gt_seconds"}
    keys = dict.fromkeys(k for r in results for k in r if k.startswith("gt_") and k not in skip)
    return tuple((k, k[3:].replace("_", " ")) for k in keys)


def _group_label(group: tuple) -> str:
    return ", ".join(f"{LABELS.get(k, k)} = {_fmt(v)}" for k, v in group) or "all cells"


def write_report(out_dir: str | Path) -> Path:
    """``report.md`` with one table and one plot per varying option, and the table of all cells."""
    from . import report
    out = Path(out_dir)
    results = collect_results(out)
    invocations = read_json(out / "sweep.json").get("invocations", [])
    sections = []
    if invocations:
        last = invocations[-1]
        sections.append(("Settings", f"Generator: `{last['generator'].get('name')}`; evaluation: RCA with "
                         f"{last['config']['rca_steps']} reconstructor steps; distinct = clusters of change fields "
                         f"with |cos| > {last['config']['same_threshold']}; collapsed = spread of G(z + s h) over z "
                         f"below {last['config']['collapse_threshold']} x that of G(z) at "
                         f"s = +-{last['config']['collapse_shift']}."))
    gt = _ground_truth_columns(results)
    varying = _varying(results)
    for key in [k for k in varying if k != "seed"]:
        slices = _slices(results, key, varying)
        if not slices:
            continue
        label = LABELS.get(key, key)
        tables = [f"{_group_label(group)}:\n\n" + report.table(
            [label] + [_fmt(r[key]) for r in cells],
            [[name] + [_fmt_metric(r.get(metric)) for r in cells] for metric, name in METRICS + gt])
            for group, cells in slices.items()]
        png = plot_metric_lines(slices, key, out / f"plot_{label.replace(' ', '_')}.png")
        sections.append((f"Metrics vs {label}", "\n\n".join(tables + [f"![metrics vs {label}]({png.name})"])))
    rows = [[r["cell"], r["num_directions"], _fmt(r["shift_weight"]), r["parametrization"], r["seed"], r["steps"],
             _fmt_metric(r.get("rca")), _fmt_metric(r.get("joint_accuracy")), r.get("distinct"), r.get("inactive"),
             _fmt_metric(r.get("mean_abs_cos")), r.get("collapsed"), _fmt_metric(r.get("seconds", 0) / 60, 1)]
            for r in results]
    sections.append(("All cells", report.table(["cell", "K", "lambda", "param", "seed", "steps", "RCA", "joint acc.",
                                                 "distinct", "inactive", "mean abs cos", "collapsed", "minutes"], rows)
                     if results else "No complete cells yet."))
    sheets = [r["cell"] for r in results if (out / r["cell"] / OVERVIEW).exists()]
    if sheets:
        sections.append(("Directions per cell", "One latent, each row a direction (strongest first), columns "
                         "s = -8..8:\n\n" + "\n".join(f"- [{name}]({name}/{OVERVIEW})" for name in sheets)))
    if gt:
        sections.append(("Ground truth", "Top directions by image change, Khrulkov et al. protocol:\n\n" + report.table(
            ["cell"] + [k[3:] for k, _ in gt], [[r["cell"]] + [_fmt_metric(r.get(k)) for k, _ in gt] for r in results])))
    return report.write(out / "report.md", f"Sweep: {out.name}", sections)


def plot_metric_lines(slices: dict[tuple, list[dict]], key: str, path: Path) -> Path:
    """A 2x2 figure (RCA and joint accuracy, distinct directions, mean |cos|, collapsed
    fraction) against ``key``, one line per slice; x positions are the values in order."""
    from .charts import line_panels
    xs = sorted({json.dumps(r[key]) for cells in slices.values() for r in cells}, key=lambda s: json.loads(s))
    position = {x: i for i, x in enumerate(xs)}
    ticks = [_fmt(json.loads(x)) for x in xs]
    panels = []
    for metrics, title in ((("rca", "joint_accuracy"), "RCA (solid), joint acc. (dashed)"),
                           (("distinct",), "distinct directions"), (("mean_abs_cos",), "mean |cos| of change fields"),
                           (("collapsed_fraction",), "collapsed fraction")):
        lines = []
        for g, (group, cells) in enumerate(slices.items()):
            for m, metric in enumerate(metrics):
                pts = [(position[json.dumps(r[key])], r.get(metric)) for r in cells]
                pts = [(x, y) for x, y in pts if y is not None and not (isinstance(y, float) and math.isnan(y))]
                lines.append({"label": _group_label(group) if m == 0 else None, "points": pts, "dashed": m > 0,
                              "group": g})
        panel = {"title": title, "lines": lines}
        if title.startswith(("RCA", "collapsed")):
            panel["ylim"] = (-0.03, 1.03)
        if metrics == ("distinct",) and key == "num_directions":
            panel["reference"] = ("K (all distinct)", [float(t) for t in ticks])
        panels.append(panel)
    return line_panels(panels, ticks, LABELS.get(key, key), path, legend=len(slices) > 1)
