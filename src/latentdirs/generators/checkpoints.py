"""Reading public GAN checkpoints safely and loading them strictly, with errors that say what is wrong.

Every adapter goes through three steps:

1. :func:`read_checkpoint` opens the file with ``weights_only=True``. Harmless classes that
   some formats pickle beside the tensors (rosinality's ``argparse.Namespace``, pytorch_GAN_zoo's
   ``BaseConfig``) are allow-listed as inert stand-ins, so no code from the file runs. Anything
   else needs ``trust_pickle=True``.
2. :func:`guess_kind` names the format a checkpoint looks like from its key names, so that a
   StyleGAN2 file given to the SN-GAN loader says "this looks like a stylegan2 checkpoint".
3. :func:`load_strict` compares the file's tensors with the module built from the inferred
   config and lists missing keys, unexpected keys and shape mismatches (key and both shapes)
   before anything is copied.
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from ..runs import load_error_reason, read_json_object, safe_torch_load
from .base import GeneratorError


class CheckpointError(GeneratorError):
    """A checkpoint file cannot be read or does not fit the adapter it was given to."""


class PGANZooConfig:
    """Inert stand-in for pytorch_GAN_zoo's pickled ``models.utils.config.BaseConfig``.

    The weights-only unpickler only sets attributes on it (no code from the file runs), which
    is enough to read ``depthOtherScales``, ``alpha`` etc. without the zoo's source.
    """


PGANZooConfig.__module__ = "models.utils.config"
PGANZooConfig.__qualname__ = PGANZooConfig.__name__ = "BaseConfig"

# Classes that public checkpoints pickle next to their tensors and that are safe to rebuild
# as plain attribute holders.
SAFE_EXTRA_GLOBALS = [argparse.Namespace, PGANZooConfig]


def read_checkpoint(path: str | Path, trust_pickle: bool = False, kind: str | None = None):
    """``torch.load`` a checkpoint on CPU, refusing arbitrary pickled objects unless trusted."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such checkpoint file: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; expected a checkpoint file"
                              + (f" for {kind}" if kind else "") + ".")
    if path.stat().st_size == 0:
        raise CheckpointError(f"could not read {path}: the file is empty (truncated or not a checkpoint).")
    try:
        with torch.serialization.safe_globals(SAFE_EXTRA_GLOBALS):
            return safe_torch_load(path, map_location="cpu", trust_pickle=trust_pickle)
    except ValueError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        unsafe = _unsafe_globals(path) if not trust_pickle else []
        # "Unsupported global" = a real pickled object; other unpickler errors mean garbage bytes
        if not trust_pickle and isinstance(cause, pickle.UnpicklingError) and (unsafe or "Unsupported global" in str(cause)):
            what = f" ({', '.join(unsafe)})" if unsafe else ""
            raise CheckpointError(
                f"{path} contains pickled Python objects{what} that are not loaded without your consent. "
                "If you trust the file's source, pass trust_pickle=True (CLI: --trust-pickle); unpickling "
                "can run arbitrary code and may need the original project's code on sys.path.") from exc
        if trust_pickle and isinstance(cause, ModuleNotFoundError):
            raise CheckpointError(
                f"{path} pickles objects of the module {cause.name!r}, which is not importable here. Put the "
                "original project's code on sys.path (PYTHONPATH), or load without trust_pickle: latentdirs reads "
                "the supported formats weights-only.") from exc
        raise CheckpointError(
            f"could not read {path}: the file is truncated or not a checkpoint "
            f"({load_error_reason(cause)}). "
            "Download it again and compare its size with the published one.") from exc


def read_config(path: str | Path) -> dict:
    """The JSON object of a checkpoint's config file (args.json, config.json); anything else names it."""
    try:
        return read_json_object(path, " (the checkpoint's config)")
    except ValueError as exc:
        raise CheckpointError(f"{exc}; restore it, or download the checkpoint again.") from None


def built_from_config(build, config_path, *args):
    """``build(*args)``, with a config whose values have the wrong types reported as the config's fault."""
    try:
        return build(*args)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        if isinstance(exc, GeneratorError):
            raise
        raise CheckpointError(f"{config_path} holds values a model cannot be built from "
                              f"({type(exc).__name__}: {exc}); restore the file or download it again.") from None


def _unsafe_globals(path: Path) -> list[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # old (non-zip) format or an older torch: the message just has no list
        return []
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in SAFE_EXTRA_GLOBALS}
    return [name for name in found if name not in allowed]


# -- recognising formats by their key names -----------------------------------------------
# (kind, keys that must all be present) in the order they are tried; the first match wins.
_SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("stylegan2", ("input.input", "conv1.conv.modulation.weight", "style.1.weight")),
    ("proggan", ("formatLayer.module.weight", "groupScale0.0.module.weight")),
    ("proggan", ("features.0.conv.weight", "features.0.wscale.scale", "output.conv.weight")),
    ("biggan", ("embeddings.weight", "generator.gen_z.weight_orig")),
    ("biggan-pytorch (ajbrock G_ema.pth; not supported, see docs/generators.md)", ("shared.weight", "linear.weight")),
    ("sngan-mnist or sngan-anime", ("model.0.weight", "model.2.conv1.weight", "model.2.model.0.running_var")),
]
# container keys that name a format on their own
_CONTAINER_SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("stylegan2", ("g_ema",)),
    ("proggan", ("netG", "config")),
    ("proggan", ("avgG",)),
]


def guess_kind(checkpoint) -> str | None:
    """Which generator kind a loaded checkpoint (a state dict or a container dict) looks like."""
    if not isinstance(checkpoint, Mapping):
        return None
    for kind, needed in _SIGNATURES:
        if all(k in checkpoint for k in needed):
            return kind
    for kind, needed in _CONTAINER_SIGNATURES:
        if all(k in checkpoint for k in needed):
            return kind
    if "G_ema" in checkpoint or "G" in checkpoint:
        return "an NVlabs/ajbrock-style container (see docs/generators.md)"
    return None


def wrong_kind_error(checkpoint, expected_kind: str, source: str, expected_what: str) -> CheckpointError:
    """The error for a file that is not the format a loader expects, naming what it looks like."""
    guess = guess_kind(checkpoint)
    if isinstance(checkpoint, Mapping):
        keys = list(checkpoint.keys())
        preview = ", ".join(map(str, keys[:6])) + (", ..." if len(keys) > 6 else "")
        found = f"a dict with keys [{preview}]"
    else:
        found = f"a {type(checkpoint).__name__}"
    msg = f"{source} is not a {expected_kind} checkpoint: expected {expected_what}, found {found}."
    if guess is not None and guess != expected_kind:
        msg += f" It looks like a {guess} checkpoint" + (
            f": load it with load_generator({guess!r}, path)." if " " not in guess else ".")
    return CheckpointError(msg)


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], kind: str, source: str,
                config_note: str = "", assign: bool = False) -> None:
    """Copy ``state_dict`` into ``module`` after checking every key and shape.

    ``config_note`` says where the architecture came from (e.g. "args.json says
    model=sn_resnet32"), so that a config/weights mismatch is easy to tell from a bad file.
    A module built on the meta device takes the file's tensors with ``assign=True``.
    """
    expected = module.state_dict()
    found = {k: v for k, v in state_dict.items()}
    not_tensors = [k for k, v in found.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{source}: entries {_preview(not_tensors)} are not tensors; "
                              f"this is not a {kind} state dict.")
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [(k, tuple(found[k].shape), tuple(expected[k].shape))
                  for k in expected if k in found and found[k].shape != expected[k].shape]
    if not (missing or unexpected or mismatched):
        _check_values(found, expected, kind, source)
        module.load_state_dict(found, strict=True, assign=assign)
        return
    guess = guess_kind(found)
    if guess is not None and guess != kind and len(missing) > len(expected) // 2:
        raise CheckpointError(
            f"{source} does not look like a {kind} checkpoint ({len(missing)} of {len(expected)} expected "
            f"keys are missing); its keys look like a {guess} checkpoint"
            + (f": load it with load_generator({guess!r}, path)." if " " not in guess else "."))
    lines = [f"{source} does not match the {kind} architecture" + (f" ({config_note})" if config_note else "") + ":"]
    if mismatched:
        lines.append(f"  {len(mismatched)} shape mismatch(es), file vs model:")
        lines += [f"    {k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in mismatched[:8]]
        if len(mismatched) > 8:
            lines.append(f"    ... and {len(mismatched) - 8} more")
    if missing:
        lines.append(f"  {len(missing)} missing key(s) (in the model, not in the file): {_preview(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected key(s) (in the file, not in the model): {_preview(unexpected)}")
    lines.append("  A truncated download, a different model size, or options that do not fit the file "
                 "(see docs/generators.md) are the usual causes.")
    raise CheckpointError("\n".join(lines))


def _check_values(found: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], kind: str,
                  source: str) -> None:
    """Integer tensors where the model has float weights, or NaN/inf weights: a damaged file, refused
    here rather than as NaN images (or silently rounded weights) later."""
    wrong_dtype = [k for k in expected if found[k].is_floating_point() != expected[k].is_floating_point()
                   or found[k].is_complex()]
    if wrong_dtype:
        key = wrong_dtype[0]
        raise CheckpointError(f"{source}: {len(wrong_dtype)} tensor(s) of the wrong kind for a {kind} checkpoint, "
                              f"e.g. {key} is {str(found[key].dtype).replace('torch.', '')} where the model has "
                              f"{str(expected[key].dtype).replace('torch.', '')}; the file is damaged or not a "
                              f"{kind} checkpoint.")
    not_finite = [k for k, v in found.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if not_finite:
        raise CheckpointError(f"{source}: {_preview(not_finite)} hold NaN or inf; the file is damaged "
                              "(download it again) or the training diverged.")


def _preview(keys: Iterable[str], limit: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
