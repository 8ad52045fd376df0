"""The ``latentdirs`` command: one console script, subcommands that only wrap the Python API.

Run ``latentdirs SUBCOMMAND --help`` for the options of each, with defaults and examples.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES_DISCOVER = """examples:
  latentdirs discover                                   # shipped shapes3d GAN, paper defaults scaled to CPU
  latentdirs discover --generator planted --num-directions 10 --steps 2000 --lr 1e-3
  latentdirs discover --generator sngan-mnist --checkpoint SN_MNIST/ --num-directions 64 --steps 100000
  latentdirs discover --generator stylegan2 --checkpoint g.pt --space w+ --layers 0-4 --parametrization ortho
  latentdirs discover --resume runs/00003-discover-shapes3d-k32     # continue an interrupted run
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def shift_list(text: str) -> list[float]:
    """'-8:8:9' (start:stop:count) or '-4,-2,0,2,4'."""
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            import numpy as np
            return np.linspace(float(start), float(stop), int(count)).tolist()
        return [float(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"shifts must look like -8:8:9 or -4,0,4; got {text!r}") from None


def index_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"direction indices must look like 0,3,5; got {text!r}") from None


def layer_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(s) for s in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"layers must look like 0-4 (first-last, end exclusive); got {text!r}") from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"layer range {text!r} is empty")
    return lo, hi


def add_generator_options(parser: argparse.ArgumentParser, default: str | None = "shapes3d") -> None:
    g = parser.add_argument_group("generator")
    g.add_argument("--generator", default=default, metavar="KIND",
                   help="generator kind (`latentdirs generators` lists them)")
    g.add_argument("--checkpoint", default=None, metavar="PATH", help="checkpoint file or folder for public generators")
    g.add_argument("--space", choices=("z", "w", "w+"), default=None, help="latent space to move in (StyleGAN2)")
    g.add_argument("--layers", type=layer_range, default=None, help="W+ layer range, e.g. 0-4 (StyleGAN2)")
    g.add_argument("--classes", type=index_list, default=None, help="class indices, e.g. 239 or 1,207 (BigGAN)")
    g.add_argument("--truncation", type=positive_float, default=None, help="truncation (BigGAN, StyleGAN2)")
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow unpickling a checkpoint (runs code from the file: only for files you trust)")
    g.add_argument("-O", "--generator-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other loader option, VALUE parsed as JSON when possible (repeatable)")


def generator_from_args(args: argparse.Namespace):
    from .generators import load_generator
    options = {}
    for name, key in (("space", "space"), ("layers", "layers"), ("classes", "classes"), ("truncation", "truncation")):
        if getattr(args, name, None) is not None:
            options[key] = getattr(args, name)
    if getattr(args, "trust_pickle", False):
        options["trust_pickle"] = True
    for item in getattr(args, "generator_option", []):
        if "=" not in item:
            raise SystemExit(f"error: --generator-option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    try:
        return load_generator(args.generator, args.checkpoint, **options)
    except TypeError as exc:
        raise SystemExit(f"error: generator {args.generator!r} does not take these options ({exc})") from None


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: all)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")


# -- discover ------------------------------------------------------------------------
def add_discover_parser(sub) -> None:
    p = sub.add_parser("discover", help="find directions with the LD method (Voynov & Babenko 2020)",
                       description=__doc__ + "\n" + EXAMPLES_DISCOVER, formatter_class=_Formatter)
    add_generator_options(p)
    t = p.add_argument_group("training")
    t.add_argument("-k", "--num-directions", type=positive_int, default=32, help="K, directions to find")
    t.add_argument("--parametrization", choices=("unit", "ortho", "cayley", "linear"), default="unit",
                   help="how A is constrained")
    t.add_argument("--reconstructor", choices=("lenet", "resnet18"), default="lenet")
    t.add_argument("--steps", type=positive_int, default=3000)
    t.add_argument("--batch-size", type=positive_int, default=128)
    t.add_argument("--lr", type=positive_float, default=1e-3,
                   help="Adam learning rate (the paper: 1e-4 for 1e5 steps; 1e-3 suits CPU budgets)")
    t.add_argument("--shift-weight", type=nonnegative_float, default=0.25, help="lambda, weight of the shift loss")
    t.add_argument("--shift-range", type=positive_float, default=6.0, help="eps ~ U[-range, range]")
    t.add_argument("--shifts-per-latent", type=positive_int, default=1, help="M shifted partners per G(z)")
    t.add_argument("--micro-batches", type=positive_int, default=1, help="gradient accumulation chunks per step")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", default=None, metavar="sefa|SET",
                   help="where A starts: 'sefa' (SeFa's top K directions, then refined by LD) or a saved direction "
                        "set / run folder with K directions; default: the coordinate axes")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last (NHWC) memory format for G and R; unset = on for CPU, off for CUDA")
    t.add_argument("--compile", action="store_true", help="torch.compile the trainable parts")
    t.add_argument("--amp", action="store_true",
                   help="bf16 autocast for the shifted G pass and R (faster on bf16 hardware; see docs/scale.md)")
    t.add_argument("--tf32", action="store_true", help="CUDA only: TF32 matmuls")
    t.add_argument("--checkpoint-every", type=positive_int, default=500)
    t.add_argument("--log-every", type=positive_int, default=50)
    o = p.add_argument_group("output")
    o.add_argument("--runs-dir", default="runs", help="parent folder of numbered run folders")
    o.add_argument("--out", default=None, help="exact run folder (instead of a new numbered one)")
    o.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in this folder")
    o.add_argument("--no-render", action="store_true", help="skip charts at the end")
    add_common(p)
    p.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    from .discovery import discover
    from .render import render_run
    from .runs import new_run_dir
    import os
    _set_threads(args.threads)
    options = dict(shift_weight=args.shift_weight, shift_range=args.shift_range,
                   shifts_per_latent=args.shifts_per_latent, micro_batches=args.micro_batches,
                   channels_last=args.channels_last, compile=args.compile, amp=args.amp, tf32=args.tf32,
                   checkpoint_every=args.checkpoint_every,
                   log_every=args.log_every)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if args.resume:
        run_dir = Path(args.resume)
        config = _read_run_config(run_dir)
        spec = config["generator"].get("spec")
        from .generators import generator_from_spec
        gen = generator_from_spec(spec)
        d = config["discovery"]
        keep = {k: d[k] for k in ("shift_weight", "shift_range", "min_shift", "shifts_per_latent", "micro_batches",
                                  "channels_last", "compile", "amp", "tf32", "checkpoint_every", "log_every",
                                  "snapshot_every") if k in d}
        result = discover(gen, d["num_directions"], d["parametrization"], d["reconstructor"], d["steps"],
                          d["batch_size"], d["seed"], d["lr"], args.device, out_dir=run_dir, resume=True, **keep)
    else:
        gen = generator_from_args(args)
        if args.out:
            run_dir = Path(args.out)
        elif rank0:
            run_dir = new_run_dir(args.runs_dir, f"discover-{gen.name}-k{args.num_directions}-{args.parametrization}")
        else:
            run_dir = None
        init = _starting_directions(args.init, gen, args.num_directions)
        try:
            result = discover(gen, args.num_directions, args.parametrization, args.reconstructor, args.steps,
                              args.batch_size, args.seed, args.lr, args.device, out_dir=run_dir, init=init,
                              **options)
        except Exception:
            if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # leave no empty numbered folder behind a rejected request
            raise
    if rank0 and not args.no_render:
        render_run(gen, result.directions, run_dir / "charts", snapshots=result.snapshots)
    if rank0:
        print(f"directions: {run_dir / 'directions'}  (final training accuracy {result.accuracy:.3f})")
    return 0


def _starting_directions(source: str | None, gen, num_directions: int):
    if source is None:
        return None
    from .directions import DirectionSet
    if source == "sefa":
        from .closed_form import sefa
        return sefa(gen, num_directions)
    found = DirectionSet.load(source)
    if found.num_directions < num_directions:
        raise SystemExit(f"error: --init {source} holds {found.num_directions} directions, fewer than -k {num_directions}")
    return found.top(num_directions)  # best first by score; in stored order when unscored


def _read_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.exists():
        raise SystemExit(f"error: {run_dir} is not a discovery run folder (no config.json)")
    return json.loads(path.read_text())


# -- rca -----------------------------------------------------------------------------
def add_rca_parser(sub) -> None:
    p = sub.add_parser("rca", help="reconstructor classification accuracy of direction sets vs baselines",
                       description="Train a fresh reconstructor against each frozen direction set and report its "
                                   "accuracy on held-out pairs, next to random and coordinate baselines.\n\n"
                                   "examples:\n  latentdirs rca runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs rca runs/00003-*/ runs/00004-*/ --steps 2000 --no-baselines",
                       formatter_class=_Formatter)
    p.add_argument("sets", nargs="+", help="run folders or direction-set folders")
    add_generator_options(p, default=None)
    p.add_argument("--steps", type=positive_int, default=1000)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reconstructor", choices=("lenet", "resnet18"), default="lenet")
    p.add_argument("--no-baselines", action="store_true", help="skip the random and coordinate baselines")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    add_common(p)
    p.set_defaults(func=cmd_rca)


def _generator_for_set(args, directions):
    from .generators import generator_from_spec
    if getattr(args, "generator", None):
        return generator_from_args(args)
    return generator_from_spec(directions.meta.get("generator", {}).get("spec"))


def cmd_rca(args: argparse.Namespace) -> int:
    from .directions import DirectionSet
    from .evaluation.rca import rca
    _set_threads(args.threads)
    sets = {s: DirectionSet.load(s) for s in args.sets}
    first = next(iter(sets.values()))
    gen = _generator_for_set(args, first)
    d, k = first.latent_dim, first.num_directions
    if not args.no_baselines:
        sets["random"] = DirectionSet.random(d, k, seed=args.seed)
        if k <= d:
            sets["coordinate"] = DirectionSet.identity(d, k)
    results = {}
    for name, ds in sets.items():
        results[name] = rca(gen, ds, steps=args.steps, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                            reconstructor=args.reconstructor, device=args.device, progress=True)
        print(f"{results[name]:.3f}  {name}", flush=True)
    if args.json:
        from .runs import atomic_write_text
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0


# -- render --------------------------------------------------------------------------
def add_render_parser(sub) -> None:
    p = sub.add_parser("render", help="charts G(z + s h), overview sheet and evolution figures",
                       description="Draw charts for a direction set: rows are latents, columns are shifts.\n\n"
                                   "examples:\n  latentdirs render runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs render RUN --directions 0,4,7 --shifts=-10:10:11 --num-latents 8",
                       formatter_class=_Formatter)
    p.add_argument("set", help="run folder or direction-set folder")
    add_generator_options(p, default=None)
    p.add_argument("--directions", type=index_list, default=None, help="indices to chart (default: top 8 by score)")
    p.add_argument("--shifts", type=shift_list, default="-8:8:9", help="start:stop:count or a comma list")
    p.add_argument("--num-latents", type=positive_int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (same seed = same rows)")
    p.add_argument("--out", default=None, help="output folder (default: SET/charts)")
    add_common(p)
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from .directions import DirectionSet
    from .render import render_run
    _set_threads(args.threads)
    ds = DirectionSet.load(args.set)
    gen = _generator_for_set(args, ds)
    snapshots = None
    try:
        from .discovery import load_snapshots
        snapshots = load_snapshots(args.set)
    except FileNotFoundError:
        pass
    out = Path(args.out) if args.out else Path(args.set) / "charts"
    paths = render_run(gen, ds, out, indices=args.directions, num_latents=args.num_latents, shifts=args.shifts,
                       seed=args.seed, snapshots=snapshots)
    print(f"wrote {len(paths)} images to {out}")
    return 0


# -- generators / export -------------------------------------------------------------
def add_generators_parser(sub) -> None:
    p = sub.add_parser("generators", help="list the generator kinds", formatter_class=_Formatter)
    p.set_defaults(func=lambda args: print("\n".join(f"{k:14s} {v}" for k, v in
                                                     __import__("latentdirs").available_generators().items())) or 0)


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a direction set as .npy (K, d) or copy it as safetensors + JSON",
                       description="examples:\n  latentdirs export runs/00003-*/ directions.npy\n"
                                   "  latentdirs export runs/00003-*/ my_set/ --top 10",
                       formatter_class=_Formatter)
    p.add_argument("set", help="run folder or direction-set folder")
    p.add_argument("target", help="a .npy file, or a folder for safetensors + JSON")
    p.add_argument("--top", type=positive_int, default=None, help="keep only the top N by score")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from .directions import DirectionSet
    ds = DirectionSet.load(args.set)
    if args.top:
        ds = ds.top(args.top)
    if args.target.endswith(".npy"):
        ds.export_npy(args.target)
    else:
        ds.save(args.target)
    print(f"wrote {ds.num_directions} directions to {args.target}")
    return 0


def _optional(module: str, func: str):
    """Subcommands whose modules may be absent in a partial install are added when importable."""
    import importlib
    try:
        return getattr(importlib.import_module(f"latentdirs.{module}"), func, None)
    except ModuleNotFoundError as exc:
        if exc.name and f"latentdirs.{module}".startswith(exc.name):
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentdirs", description=__doc__, formatter_class=_Formatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"latentdirs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (add_discover_parser, add_rca_parser, add_render_parser, add_export_parser, add_generators_parser):
        add(sub)
    for module, func in (("demo", "add_demo_parser"), ("gan.train", "add_train_gan_parser"),
                         ("evaluation.compare", "add_compare_parser"), ("sweep", "add_sweep_parser"),
                         ("web.app", "add_serve_parser"), ("web.ratings", "add_mos_parser"),
                         ("saliency.cli", "add_saliency_parser"),
                         ("edit_cli", "add_parser")):
        add = _optional(module, func)
        if add is not None:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .directions import DirectionError
    from .generators.base import GeneratorError
    try:
        return args.func(args) or 0
    except (GeneratorError, DirectionError, FileNotFoundError, ValueError, IndexError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
