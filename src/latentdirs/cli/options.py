"""What the subcommands share: argparse value types, the generator options, ``--threads``
and ``--device``, the direction sets a command reads, the ratings database (each declared
here once), and options generated from a config dataclass.

It imports argparse, the text -> value parsers of config fields (``latentdirs.configs``, which
sweep's grid uses too) and, only inside functions, the generator registry and the ratings store's
file name.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import textwrap

from .. import configs


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default and keeps the examples in descriptions as written."""


# -- value types: a wrong value is refused with what was expected ----------------------
def argparse_type(parse):
    """``parse`` (text -> value, a ValueError with the reason) as an argparse type that shows the reason."""
    def typed(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    typed.__name__ = parse.__name__
    typed.__doc__ = parse.__doc__
    return typed


positive_int = argparse_type(configs.positive_int)
nonnegative_int = argparse_type(configs.nonnegative_int)
nonnegative_float = argparse_type(configs.nonnegative_float)
positive_float = argparse_type(configs.positive_float)
optional_int = argparse_type(configs.optional_int)
int_tuple = argparse_type(configs.int_tuple)
str_tuple = argparse_type(configs.str_tuple)


def shift_list(text: str) -> list[float]:
    """'-8:8:9' (start:stop:count) or '-4,-2,0,2,4'."""
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            import numpy as np
            shifts = np.linspace(float(start), float(stop), int(count)).tolist()
        else:
            shifts = [float(s) for s in text.split(",")]
    except ValueError:
        shifts = []
    if not shifts or not all(math.isfinite(s) for s in shifts):
        raise argparse.ArgumentTypeError(f"shifts must look like -8:8:9 or -4,0,4 (finite, at least one); "
                                         f"got {text!r}")
    return shifts


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


# -- runtime: where and on how many threads --------------------------------------------
def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (None: all)")


def add_runtime_options(parser) -> None:
    add_threads_option(parser)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (cuda when available)")


def set_threads(threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


# -- the generator ---------------------------------------------------------------------
def add_generator_options(parser: argparse.ArgumentParser, default: str | None = "shapes3d") -> None:
    g = parser.add_argument_group("generator")
    g.add_argument("--generator", default=default, metavar="KIND",
                   help="generator kind (`latentdirs generators` lists them, with those installed packages register), "
                        "or package.module:factory for your own: a function returning a latentdirs Generator or "
                        "dict(module=net, latent_dim=...) (docs/generators.md); the set records it, so later "
                        "commands reload it")
    g.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="checkpoint file or folder for public generators (passed to a factory as its first argument)")
    g.add_argument("--space", choices=("z", "w", "w+"), default=None, help="latent space to move in (StyleGAN2)")
    g.add_argument("--layers", type=layer_range, default=None, help="W+ layer range, e.g. 0-4 (StyleGAN2)")
    g.add_argument("--classes", type=index_list, default=None, help="class indices, e.g. 239 or 1,207 (BigGAN)")
    g.add_argument("--truncation", type=positive_float, default=None, help="truncation (BigGAN, StyleGAN2)")
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow unpickling a checkpoint (runs code from the file: only for files you trust)")
    g.add_argument("-O", "--generator-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other loader option, VALUE parsed as JSON when possible (repeatable)")


def generator_from_args(args: argparse.Namespace):
    from ..generators import load_generator
    options = {name: getattr(args, name) for name in ("space", "layers", "classes", "truncation")
               if getattr(args, name, None) is not None}
    if getattr(args, "trust_pickle", False):
        options["trust_pickle"] = True
    for item in getattr(args, "generator_option", []):
        key, _, value = item.partition("=")
        if not key.strip() or "=" not in item:
            raise SystemExit(f"error: --generator-option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    try:
        return load_generator(args.generator, args.checkpoint, **options)
    except TypeError as exc:
        raise SystemExit(f"error: generator {args.generator!r} does not take these options ({exc})") from None


def add_set_options(parser, nargs: str | None = None, help: str = "run folder or direction-set folder",
                    **kwargs) -> None:
    """The direction set a command reads (``sets`` when ``nargs="+"``), then the generator options, unset:
    :func:`generator_for_set` reloads the generator the set records unless ``--generator`` names one."""
    parser.add_argument("sets" if nargs == "+" else "set", nargs=nargs, help=help, **kwargs)
    add_generator_options(parser, default=None)


def generator_for_set(args: argparse.Namespace, directions):
    """The generator named on the command line, else the one the direction set records."""
    from ..generators import generator_from_spec
    if getattr(args, "generator", None):
        return generator_from_args(args)
    described = directions.meta.get("generator") or {}
    return generator_from_spec(described.get("spec"), described)


# -- the rating session (`latentdirs serve` writes the answers, `latentdirs mos` reads them) --
def add_rating_options(parser, help: str) -> None:
    """The run folders of a rating session and the database of its answers."""
    from ..web.ratings import DB_NAME  # the SQLite store needs no extra; Flask loads only when serving
    parser.add_argument("sets", nargs="+", metavar="RUN_DIR", help=help)
    parser.add_argument("--db", default=None, help=f"answers database (default: FIRST_RUN_DIR/{DB_NAME})")


# -- options generated from a config dataclass -----------------------------------------
def field_docs(cls) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string right under each field), litgpt-style."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen install): options keep working without help
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_METAVARS = {"int": "N", "float": "X", "int | None": "N|none", "tuple[int, ...]": "N,N,...",
             "tuple[str, ...]": "A,B,...", "dict[int, int]": "K=N,..."}


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def add_config_options(group, cls, defaults, names=None, short: dict[str, str] | None = None) -> None:
    """One option per field of dataclass ``cls`` (or those in ``names``): flag, type, choices and
    help from the field, the default shown from ``defaults`` (an instance of ``cls``).

    Options left out of the command line stay absent from the parsed namespace
    (``argparse.SUPPRESS``), so :func:`config_from_args` can lay them over any preset.
    """
    docs = field_docs(cls)
    choices = getattr(cls, "CHOICES", {})
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        default = getattr(defaults, f.name)
        flags = [short[f.name]] if short and f.name in short else []
        help_text = f"{docs.get(f.name, f.name)} (default: {_shown(default)})".replace("%", "%%")
        kind = str(f.type)
        if kind.startswith("bool"):
            group.add_argument(*flags, flag(f.name), action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(*flags, flag(f.name), type=argparse_type(configs.field_parser(cls, f.name)),
                               choices=choices.get(f.name), default=argparse.SUPPRESS, help=help_text,
                               metavar=None if f.name in choices else _METAVARS.get(kind, "VALUE"))


def config_from_args(args: argparse.Namespace, cls, defaults, **extra):
    """``defaults`` with every field the command line gave (and ``extra``) laid over it."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return dataclasses.replace(defaults, **{**given, **extra})
