"""The ``latentdirs`` command: one console script, subcommands that only wrap the Python API.

Run ``latentdirs SUBCOMMAND --help`` for the options of each, with defaults and examples.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .options import Formatter

# Subcommand -> the module in this package that declares it. Each module's add_parser() only
# declares options; the API behind it (Flask, the U-Net, ...) is imported when the command runs.
COMMANDS = {"demo": "demo", "discover": "discover", "rca": "rca", "render": "render", "export": "export",
            "sweep": "sweep", "compare": "compare", "generators": "generators", "serve": "serve", "mos": "mos",
            "saliency": "saliency", "train-gan": "train_gan", "edit": "edit", "zoo": "zoo"}
# Third-party modules that only an extra installs: the missing one names the extra.
EXTRAS = {"flask": "web", "werkzeug": "web"}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="latentdirs", description=__doc__, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"latentdirs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f".{module}", __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
            IndexError) as exc:
        # Bad input, one line, exit 2 (docs/promises.md). Every refusal of the package is a ValueError
        # (DirectionError, GeneratorError, CheckpointError, RatingError, ...) whose message names the file.
        where = (" (a file stands where a folder must be: give another output path)"
                 if isinstance(exc, (FileExistsError, NotADirectoryError)) else "")
        print(f"error: {exc}{where}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        if isinstance(exc.code, str) and exc.code.startswith("error:"):  # raise SystemExit("error: ...")
            print(exc.code, file=sys.stderr)
            exc.code = 2  # bad input, as above, not the 1 that a message alone exits with
        raise
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS:
            raise
        extra = EXTRAS[root]
        print(f"error: `latentdirs {args.command}` needs the {extra!r} extra ({root} is not installed); install it "
              f"with: pip install -e \".[{extra}]\"  (or pip install \"latentdirs[{extra}]\")", file=sys.stderr)
        return 2
