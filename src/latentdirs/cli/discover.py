"""``latentdirs discover``: find directions with the LD method (Voynov & Babenko 2020).

Every training option is a field of :class:`latentdirs.discovery.DiscoveryConfig`; ``--preset``
picks the defaults (``cpu`` unless given), options given on the command line override them.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from ..discovery import PRESETS, STARTS, DiscoveryConfig
from .options import (Formatter, add_config_options, add_generator_options, add_runtime_options, config_from_args,
                      field_docs, generator_from_args, set_threads)

DEFAULT_PRESET = "cpu"
EXAMPLES = """examples:
  latentdirs discover                                   # shipped shapes3d GAN, the cpu preset
  latentdirs discover --preset disentangle                 # SeFa start, overlap penalty: the disentangling recipe
  latentdirs discover --generator planted --num-directions 10 --steps 2000 --lr 1e-3
  latentdirs discover --generator sngan-mnist --checkpoint SN_MNIST/ --preset paper --num-directions 64
  latentdirs discover --generator stylegan2 --checkpoint g.pt --space w+ --layers 0-4 --parametrization ortho
  latentdirs discover --resume runs/00003-discover-shapes3d-k32     # continue an interrupted run
"""
SHORT_FLAGS = {"num_directions": "-k"}


def add_parser(sub) -> None:
    p = sub.add_parser("discover", help="find directions with the LD method (Voynov & Babenko 2020)",
                       description=__doc__ + "\n" + EXAMPLES, formatter_class=Formatter)
    add_generator_options(p)
    t = p.add_argument_group("training (DiscoveryConfig fields)",
                             f"Defaults shown are the {DEFAULT_PRESET} preset's; --preset picks another base.")
    t.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                   help="named defaults: " + "; ".join(f"{name}: K {c.num_directions}, {c.steps} steps, lr {c.lr:g}, "
                                                       f"batch {c.batch_size}" for name, c in PRESETS.items()))
    add_config_options(t, DiscoveryConfig, PRESETS[DEFAULT_PRESET], names=[n for n in training_options() if n != "start"],
                       short=SHORT_FLAGS)
    t.add_argument("--start", default=argparse.SUPPRESS, metavar="{" + ",".join(STARTS) + "}|SET",
                   help=f"{field_docs(DiscoveryConfig)['start']} SET: a direction set or run folder, its top K "
                        f"(default: {PRESETS[DEFAULT_PRESET].start})")
    # `--init` was the flag of a saved start until `--start` took both; README.md showed `--init RUN_DIR`.
    t.add_argument("--init", dest="start", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    o = p.add_argument_group("output")
    o.add_argument("--runs-dir", default="runs", help="parent folder of numbered run folders")
    o.add_argument("--out", default=None, help="exact run folder (instead of a new numbered one)")
    o.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in this folder")
    o.add_argument("--no-render", action="store_true", help="skip charts at the end")
    add_runtime_options(p)
    p.set_defaults(func=run)


def training_options() -> list[str]:
    """The DiscoveryConfig fields that are options of their own (``device`` is the shared --device)."""
    return [f.name for f in dataclasses.fields(DiscoveryConfig) if f.name != "device"]


def resolved_config(args: argparse.Namespace) -> DiscoveryConfig:
    """The preset with every option the command line gave laid over it."""
    return config_from_args(args, DiscoveryConfig, PRESETS[args.preset], device=args.device)


def run(args: argparse.Namespace) -> int:
    from ..discovery import discover
    from ..render import render_run
    from ..runs import new_run_dir
    set_threads(args.threads)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if args.resume:
        run_dir = Path(args.resume)
        stored = _read_run_config(run_dir)
        from ..generators import generator_from_spec
        try:
            gen = generator_from_spec(stored["generator"].get("spec"), stored["generator"])
        except (ValueError, TypeError, AttributeError) as exc:  # a spec that no longer loads, or a damaged one
            raise ValueError(f"{run_dir / 'config.json'}: its generator cannot be reloaded ({exc})") from None
        known = set(training_options())
        try:
            config = DiscoveryConfig(**{k: v for k, v in stored["discovery"].items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{run_dir / 'config.json'}: its discovery settings are not valid ({exc})") from None
        config = config_from_args(args, DiscoveryConfig, config, device=args.device)  # e.g. a longer --steps
        result = discover(gen, config, out_dir=run_dir, resume=True)
    else:
        saved_start = getattr(args, "start", None) not in (None, *STARTS)
        if saved_start:  # a direction set on disk, not a closed-form name: passed to discover, not the config
            source = args.start
            del args.start
        config = resolved_config(args)
        gen = generator_from_args(args)
        if args.out:
            run_dir = Path(args.out)
        elif rank0:
            run_dir = new_run_dir(args.runs_dir, f"discover-{gen.name}-k{config.num_directions}-{config.parametrization}")
        else:
            run_dir = None
        start = {"start": _saved_start(source, config.num_directions)} if saved_start else {}
        try:
            result = discover(gen, config, out_dir=run_dir, **start)
        except Exception:
            if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # leave no empty numbered folder behind a rejected request
            raise
    if rank0 and not args.no_render:
        render_run(gen, result.directions, run_dir / "charts", snapshots=result.snapshots)
    if rank0:
        print(f"directions: {run_dir / 'directions'}  (final training accuracy {result.accuracy:.3f})")
    return 0


def _saved_start(source: str, num_directions: int):
    from ..directions import DirectionSet
    found = DirectionSet.load(source)
    if found.num_directions < num_directions:
        raise SystemExit(f"error: --start {source} holds {found.num_directions} directions, fewer than -k {num_directions}")
    return found.top(num_directions)  # best first by score; in stored order when unscored


def _read_run_config(run_dir: Path) -> dict:
    from ..runs import read_json_object
    path = run_dir / "config.json"
    if not path.exists():
        raise SystemExit(f"error: {run_dir} is not a discovery run folder (no config.json)")
    stored = read_json_object(path, " (the settings of a discovery run)")
    if not isinstance(stored.get("discovery"), dict) or not isinstance(stored.get("generator"), dict):
        raise ValueError(f"{path} is not the config of a discovery run (it needs 'discovery' and 'generator' objects); "
                         "restore it, or start a new run")
    return stored
