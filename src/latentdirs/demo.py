"""``latentdirs demo``: what works, on the shipped GAN, on CPU, in minutes.

On a generator with a W space (the shipped ``shapes3d``) the demo moves in W, where directions
disentangle (docs/compare.md), and runs:

  1. LD with the ``demo-disentangle`` preset (the ``disentangle`` recipe at the demo's budget:
     A starts at SeFa's directions, no shift regression, overlap penalty; no labels), and beside
     it SeFa and GANSpace in the same space, all with K = 10;
  2. RCA of LD against random and coordinate directions (the paper's table);
  3. on a generator with ground truth: MIG and DCI-D of LD, SeFa and GANSpace (the encoder
     protocol of :mod:`latentdirs.evaluation.ground_truth`, reduced), and every direction named by
     the factor it moves (:func:`latentdirs.name_directions`); without ground truth these are
     skipped and the report says so;
  4. charts drawn on the image manifold (shifts up to 3 standard deviations of the latents along
     each direction), rows labelled with their names, and ``report.md``.

Every part is a cell of the run folder (``methods/METHOD/result.json``, written atomically):
``run_demo(out_dir=RUN_DIR)`` / ``latentdirs demo --resume RUN_DIR`` skips what is done and
continues LD's training from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from . import report
from .cells import read_result, write_result
from .directions import DirectionError, DirectionSet
from .devices import resolve_device
from .discovery import PRESETS, DiscoveryConfig, discover, load_snapshots, resolve_config
from .evaluation.rca import rca
from .generators import Generator, GeneratorError, load_generator
from .generators.base import StyleSpaceGenerator
from .render import MANIFOLD_SIGMAS, overview, render_run, sample_latents, save_image, sigma_labels
from .runs import Run, cpu_model, new_run_dir

PRESET = "demo-disentangle"
"""The discover preset the demo's LD runs."""
RCA_STEPS = 200
"""Reconstructor steps per RCA measurement in the demo."""
GT_TRAIN, GT_STEPS, GT_EVAL = 2_000, 500, 2_000
"""Ground-truth encoder protocol at the demo's size: generated pairs, encoder steps, real points scored."""
NAME_LATENTS = 32
"""Latents per direction and shift that the factor classifier reads to name a direction."""
METHOD_LABELS = {"ld": "LD ({})", "sefa": "SeFa", "ganspace": "GANSpace", "random": "random orthonormal",
                 "identity": "coordinate axes"}


def demo_generator(generator: str | Generator, space: str | None = "auto") -> Generator:
    """The generator the demo runs on: in its W space when it has one and ``space`` is "auto"."""
    if isinstance(generator, Generator):
        return generator
    G = load_generator(generator)
    if space == "auto":
        return load_generator(generator, space="w") if isinstance(G, StyleSpaceGenerator) else G
    return load_generator(generator, space=space) if space and space != G.latent_space else G


def run_demo(generator: str | Generator = "shapes3d", config: DiscoveryConfig | None = None, *,
             rca_steps: int = RCA_STEPS, gt_train: int = GT_TRAIN, gt_steps: int = GT_STEPS, gt_eval: int = GT_EVAL,
             name_latents: int = NAME_LATENTS, space: str | None = "auto", runs_dir: str | Path = "runs",
             out_dir: str | Path | None = None, threads: int | None = None, progress: bool = True,
             **overrides) -> Path:
    """Run the demo and return the path of its ``report.md``.

    ``config`` defaults to ``PRESETS["demo-disentangle"]``; ``overrides`` are DiscoveryConfig
    fields (``run_demo("planted", steps=800)``). ``gt_train=0`` skips MIG / DCI, ``name_latents=0``
    the naming. ``out_dir`` resumes (or starts) the demo in that folder instead of a new
    ``runs_dir/NNNNN-demo-...``.
    """
    import torch
    counts = dict(rca_steps=rca_steps, gt_train=gt_train, gt_steps=gt_steps, gt_eval=gt_eval, name_latents=name_latents)
    bad = [f"{name}={value!r}" for name, value in counts.items() if not (isinstance(value, int) and value >= 0)]
    if bad or 0 < gt_train < 20:  # before any folder or training: the ground-truth encoder holds out a tenth
        raise ValueError(f"the demo needs integer counts >= 0 and gt_train 0 or >= 20, got {', '.join(bad) or gt_train}")
    if threads:
        torch.set_num_threads(threads)
    wall, cpu, load_before = time.time(), time.process_time(), _load()
    cfg = resolve_config(config or PRESETS[PRESET], overrides)
    if "log_every" not in overrides and config is None:
        cfg = resolve_config(cfg, {"log_every": max(cfg.steps // 20, 1)})  # about 20 points whatever the steps
    G = demo_generator(generator, space)
    k = cfg.num_directions
    settings = dict(generator=G.name, space=G.latent_space, preset=PRESET if config is None else "given",
                    num_directions=k, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                    parametrization=cfg.parametrization, start=cfg.start, rca_steps=rca_steps, gt_train=gt_train,
                    gt_steps=gt_steps, gt_eval=gt_eval, name_latents=name_latents)
    run_dir = Path(out_dir) if out_dir is not None else new_run_dir(runs_dir, f"demo-{G.name}-k{k}")
    run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(run_dir)
    run.check_config("demo", settings, generator=G.describe())
    run.save_config({"demo": settings, "discovery": dataclasses.asdict(cfg), "generator": G.describe()})
    timings: dict[str, dict] = {}

    def timed(stage: str, fn, *args, **kwargs):
        w, c = time.time(), time.process_time()
        out = fn(*args, **kwargs)
        timings[stage] = {"wall_s": round(time.time() - w, 1), "cpu_s": round(time.process_time() - c, 1)}
        return out

    # 1. the direction sets
    sets, errors, snapshots = {}, {}, {}
    ld_dir = run_dir / "methods" / "ld"
    if read_result(ld_dir) is None:
        found = timed("discover (LD)", discover, G, cfg, out_dir=run_dir / "discovery", resume=True, progress=progress)
        sets["ld"] = found.directions.top(k)
        snapshots = _in_top_order(found.snapshots, sets["ld"])  # evolution_K.png must follow direction K
        _save_set(sets["ld"], ld_dir, "ld", G)
        write_result(ld_dir, {"method": "ld", **timings["discover (LD)"]})
    else:
        sets["ld"] = DirectionSet.load(ld_dir / "directions")
        try:
            snapshots = _in_top_order(load_snapshots(run_dir / "discovery"), sets["ld"])
        except FileNotFoundError:
            snapshots = {}
    for method in ("sefa", "ganspace", "random", "identity"):
        folder = run_dir / "methods" / method
        if (folder / "directions").exists() and read_result(folder) is not None:
            sets[method] = DirectionSet.load(folder / "directions")
            continue
        try:
            sets[method] = timed(f"find ({method})", _find, G, method, k, cfg.seed)
        except (DirectionError, GeneratorError) as exc:  # no first-layer weight, k > latent size, ...
            errors[method] = str(exc)
            continue
        _save_set(sets[method], folder, method, G)
        write_result(folder, {"method": method, **timings[f"find ({method})"]})

    # 2-3. the measures, each kept in its method's result.json as soon as it is measured
    results = {m: read_result(run_dir / "methods" / m) or {"method": m} for m in sets}
    truth = G.ground_truth()
    dataset = None
    for method in ("ld", "random", "identity"):
        if method in sets and rca_steps and "rca" not in results[method]:
            acc = timed(f"RCA ({method})", rca, G, sets[method], steps=rca_steps, seed=cfg.seed,
                        batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device, progress=progress)
            _record(run_dir, results[method], run, rca=acc, rca_time=timings[f"RCA ({method})"])
        if "rca" in results.get(method, {}):
            print(f"RCA {results[method]['rca']:.3f}  {_label(method, cfg)}", flush=True)
    if truth is not None and gt_train:
        for method in ("ld", "sefa", "ganspace"):
            if method in sets and "mig" not in results[method]:
                from .evaluation.ground_truth import ground_truth_dataset, ground_truth_scores
                if dataset is None:
                    dataset = timed("ground-truth data", ground_truth_dataset, G, gt_eval, seed=10_000)
                gt = timed(f"MIG / DCI ({method})", ground_truth_scores, G, sets[method], dataset[0], dataset[1],
                           num_train=gt_train, steps=gt_steps, batch_size=cfg.batch_size, seed=cfg.seed,
                           device=str(resolve_device(cfg.device)), progress=progress)
                _record(run_dir, results[method], run, gt_time=timings[f"MIG / DCI ({method})"],
                        **{key: gt[key] for key in ("mig", "dci_disentanglement", "dci_completeness",
                                                    "dci_informativeness", "modularity", "encoder_r2")})
            if "mig" in results.get(method, {}):
                print(f"MIG {results[method]['mig']:.3f}  DCI-D {results[method]['dci_disentanglement']:.3f}  "
                      f"{_label(method, cfg)}", flush=True)
    from .evaluation.naming import DirectionNames, has_factor_classifier, name_directions
    names: dict[str, DirectionNames] = {}
    can_name = name_latents > 0 and has_factor_classifier(G)
    for method in ("ld", "sefa", "ganspace"):
        if method in sets and can_name:
            if "names" not in results[method]:
                named = timed(f"naming ({method})", name_directions, G, sets[method], num_latents=name_latents,
                              seed=cfg.seed)
                _record(run_dir, results[method], run, names=named.to_dict(), **named.summary(),
                        naming_time=timings[f"naming ({method})"])
            names[method] = DirectionNames.from_dict(results[method]["names"])

    # 4. charts and the report
    charts_dir = run_dir / "charts"
    labels = {m: [n.label(i) for i in range(n.num_directions)] for m, n in names.items()}
    charts = timed("charts", render_run, G, sets["ld"], charts_dir, indices=list(range(min(4, k))),
                   shifts="manifold", snapshots=snapshots, labels=labels.get("ld"))
    latent = sample_latents(G, 1, 0)
    for method in ("sefa", "ganspace"):
        if method in sets:
            charts.append(save_image(overview(G, sets[method], latent, "manifold", labels=labels.get(method),
                                              col_labels=sigma_labels()), charts_dir / f"overview_{method}.png"))
    timings["total"] = {"wall_s": round(time.time() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}
    timings = _with_earlier_sessions(run_dir, timings)
    machine = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "load_average_before": load_before, "load_average_after": _load(), "torch": torch.__version__}
    run.append({"timings": timings, "machine": machine}, "timings.jsonl")
    path = _write_report(run_dir, G, cfg, settings, sets, results, names, errors, charts, timings, machine, truth)
    return path


def _with_earlier_sessions(run_dir: Path, timings: dict) -> dict:
    """This session's stage times over those of earlier (interrupted) sessions of the run; totals add up."""
    path = run_dir / "timings.jsonl"
    if not path.exists():
        return timings
    import json
    earlier = json.loads(path.read_text().splitlines()[-1])["timings"]
    merged = {**earlier, **{k: v for k, v in timings.items() if k != "total"}}
    merged["total"] = {key: round(earlier["total"][key] + timings["total"][key], 1) for key in ("wall_s", "cpu_s")}
    merged["total"]["sessions"] = earlier["total"].get("sessions", 1) + 1
    return merged


def _find(G: Generator, method: str, k: int, seed: int) -> DirectionSet:
    from .closed_form import ganspace, sefa
    if method == "sefa":
        return sefa(G, k)
    if method == "ganspace":
        return ganspace(G, k, num_samples=5_000, seed=seed)
    if method == "random":
        return DirectionSet.random(G.latent_dim, k, seed=seed)
    if k > G.latent_dim:
        raise DirectionError(f"only {G.latent_dim} coordinate axes for k = {k}")
    return DirectionSet.identity(G.latent_dim, k)


def _save_set(directions: DirectionSet, folder: Path, method: str, G: Generator) -> None:
    directions.meta.setdefault("method", method)
    directions.meta.setdefault("generator", G.describe())
    directions.save(folder / "directions")


def _in_top_order(snapshots: dict, top: DirectionSet) -> dict:
    """LD's snapshots over training, columns in the order of the kept (top-k) set."""
    order = top.meta.get("selected_from")
    return {s: m[:, order] for s, m in snapshots.items()} if order else snapshots


def _record(run_dir: Path, result: dict, run: Run, **values) -> None:
    result.update(values)
    write_result(run_dir / "methods" / result["method"], result)
    run.append({"method": result["method"], **{k: v for k, v in values.items() if k != "names"}})


def _label(method: str, cfg: DiscoveryConfig) -> str:
    return METHOD_LABELS[method].format(cfg.parametrization)


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _write_report(run_dir, G, cfg, settings, sets, results, names, errors, charts, timings, machine, truth) -> Path:
    k = cfg.num_directions
    total = timings["total"]
    load = machine["load_average_before"]
    setting_rows = [[key, value] for key, value in settings.items()]
    sections = [("Settings", report.table(["option", "value"], setting_rows) + "\n\n"
                 f"Whole demo: **{total['wall_s']:.0f} s** wall, {total['cpu_s']:.0f} CPU-seconds (process time)"
                 + (f" over {total['sessions']} sessions (resumed)" if total.get("sessions", 1) > 1 else "") + ", "
                 f"{machine['threads']} torch threads on {machine['cpu_count']} cores ({machine['cpu']}; load average "
                 f"at the start {load[0] if load else '?'}). Per stage:\n\n"
                 + report.table(["stage", "wall (s)", "CPU (s)"], [[s, f"{t['wall_s']:.1f}", f"{t['cpu_s']:.1f}"]
                                                                   for s, t in timings.items() if s != "total"]))]
    rca_rows = [[_label(m, cfg), results[m]["rca"], f"{results[m]['rca_time']['wall_s']:.0f} s"]
                for m in ("ld", "random", "identity") if "rca" in results.get(m, {})]
    if rca_rows:
        sections.append(("RCA: discovered vs baselines", "Accuracy of a fresh reconstructor trained against each "
                         f"frozen set for {settings['rca_steps']} steps, on held-out pairs (chance = {1 / k:.3f}).\n\n"
                         + report.table(["directions", "RCA", "time"], rca_rows)))
    gt_rows = [[_label(m, cfg), results[m]["mig"], results[m]["dci_disentanglement"], results[m]["modularity"],
                results[m]["encoder_r2"]] for m in ("ld", "sefa", "ganspace") if "mig" in results.get(m, {})]
    if gt_rows:
        sections.append(("Ground truth: MIG and DCI-D", "The encoder protocol of Khrulkov et al. at the demo's size: "
                         f"an encoder trained on {settings['gt_train']} generated pairs for {settings['gt_steps']} steps "
                         f"maps {settings['gt_eval']} real scenes with known factors to codes, scored with MIG, "
                         "disentanglement_lib's DCI (gradient boosting) and modularity. docs/compare.md has the full "
                         "size (3 seeds); these are one seed and smaller, so noisier.\n\n"
                         + report.table(["directions", "MIG", "DCI-D", "modularity", "encoder R²"], gt_rows)))
    elif truth is None:
        sections.append(("Ground truth", f"{G.name} has no data with known factors (`ground_truth()`): MIG, DCI "
                         "and the direction names are skipped."))
    if names:
        sections.append(("Named directions", "What each direction moves, read by the shipped factor classifier "
                         "(`latentdirs.name_directions`): over shifts up to 3 standard deviations of the latents "
                         "along the direction, how far the classifier's reading of each factor moves (expected "
                         "value for scale and orientation, hue angle for the hues, total variation for shape; each "
                         "on a 0-1 scale, over the images whose unshifted reading of the factor is confident), as "
                         "shares of the direction's whole read change; the name is the dominant factor and its share "
                         "(purity). 'read change' is the whole change (0 to 6). The classifier is least sure of scale "
                         "and shape on generated scenes, so their readings move a little under any change: about "
                         "0.15-0.25 of every row sits on them, and a purity of 0.35-0.7 already marks a direction "
                         "that clearly moves one factor.\n\n"
                         + _names_section(names, cfg)))
    elif truth is not None:
        sections.append(("Named directions", f"No factor classifier reads {G.name}'s factors: directions are not named."))
    sections.append(("All directions", f"One latent; columns are shifts from -{MANIFOLD_SIGMAS:g} to "
                     f"+{MANIFOLD_SIGMAS:g} standard deviations of the latents along each direction (sd), so every "
                     "row stays where the generator's latents lie (framed: the unshifted image); rows are labelled "
                     "with their names where there are names, else their image-change score.\n\n"
                     + "\n\n".join(f"**{_label(m, cfg)}**\n\n" + report.image(p, run_dir, p.stem) for m, p in
                                   (("ld", run_dir / "charts" / "overview.png"),
                                    ("sefa", run_dir / "charts" / "overview_sefa.png"),
                                    ("ganspace", run_dir / "charts" / "overview_ganspace.png")) if p.exists())))
    top = [p for p in charts if p.name.startswith("direction_")]
    sections.append((f"Strongest directions of {_label('ld', cfg)}", "Rows are latents, columns are shifts "
                     "(in latent units, up to 3 sd).\n\n" + "\n\n".join(report.image(p, run_dir, p.stem) for p in top)))
    evolution = [p for p in charts if p.name.startswith("evolution_")][:1]
    sections.append(("Evolution over training", "\n\n".join(report.image(p, run_dir, p.stem) for p in evolution)
                     or "(no snapshots)"))
    if errors:
        sections.append(("Methods that could not run", "\n".join(f"- {m}: {e}" for m, e in errors.items())))
    return report.write(run_dir / "report.md", f"latentdirs demo on {G.name} ({G.latent_space.upper()} space)",
                        sections)


def _names_section(names, cfg) -> str:
    from .evaluation.naming import names_table
    return names_table({_label(m, cfg): n for m, n in names.items()})
