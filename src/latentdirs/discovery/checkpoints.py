"""A discovery run's ``checkpoint.pt`` and A's ``snapshots.safetensors``: tensors and plain values only,
read back checked (a damaged file is a ValueError that names it and says what to do)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from ..directions import DirectionMatrix
from ..runs import atomic_path, load_error_reason
from .config import DiscoveryConfig

CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots.safetensors"
_START_AGAIN = "delete it to start the run again from step 0 (config.json keeps its options), or copy back a good one"


def checkpoint_state(trainable: nn.Module, optimizer, step: int, history: list, snapshots: dict) -> dict:
    """What checkpoint.pt holds (``Run.save_checkpoint`` writes it atomically)."""
    return {"trainable": trainable.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "history": json.dumps(history), "snapshots": snapshots}


def read_checkpoint(path: Path, dev: torch.device) -> dict:
    """checkpoint.pt as :func:`checkpoint_state` made it, checked; anything else is a ValueError naming the file.

    (Not ``Run.load_checkpoint``: no --trust-pickle hint, a file that needs it is not one this loop wrote.)"""
    try:
        state = torch.load(path, map_location=dev, weights_only=True) if path.stat().st_size else None
    except Exception as exc:
        raise ValueError(f"could not read {path}: truncated or not a checkpoint of a latentdirs run "
                         f"({load_error_reason(exc)}); {_START_AGAIN}") from None
    if state is None:
        raise ValueError(f"could not read {path}: the file is empty; {_START_AGAIN}")
    expected = {"trainable": dict, "optimizer": dict, "step": int, "history": str, "snapshots": dict}
    wrong = [key for key, kind in expected.items() if not isinstance(state.get(key) if isinstance(state, dict) else None,
                                                                    kind)]
    if wrong:
        raise ValueError(f"{path} is not a checkpoint of a latentdirs run (missing or wrong: {', '.join(wrong)}); "
                         f"{_START_AGAIN}")
    tensors = list(state["trainable"].values()) + list(state["snapshots"].values()) + _tensors_in(state["optimizer"])
    if not all(isinstance(t, torch.Tensor) for t in tensors) or state["step"] < 0:
        raise ValueError(f"{path} holds values of the wrong kind; {_START_AGAIN}")
    if not all(torch.isfinite(t).all() for t in tensors if t.is_floating_point()):
        raise ValueError(f"{path} holds NaN or inf weights; {_START_AGAIN}")
    try:
        history = json.loads(state["history"])
        snapshots = {int(k): v for k, v in state["snapshots"].items()}
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: its metrics history or snapshots cannot be read ({exc}); {_START_AGAIN}") from None
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ValueError(f"{path}: its metrics history is not a list of records; {_START_AGAIN}")
    return {**state, "history": history, "snapshots": snapshots}


def _tensors_in(value) -> list:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    return [value] if isinstance(value, torch.Tensor) else []


def load_checkpoint(path: Path, state: dict, trainable: nn.Module, optimizer) -> None:
    """Put a read checkpoint's A, R and Adam state into this run's; a checkpoint of another shape is a ValueError."""
    expected = trainable.state_dict()
    wrong = [k for k, v in state["trainable"].items()
             if k in expected and v.is_floating_point() != expected[k].is_floating_point()]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong[:4])} hold(s) {state['trainable'][wrong[0]].dtype} "
                         f"values where the run has {expected[wrong[0]].dtype}; {_START_AGAIN}")
    try:
        trainable.load_state_dict(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} does not fit this run ({str(exc).splitlines()[0]}); {_START_AGAIN}") from None


def snapshot_steps(cfg: DiscoveryConfig) -> set[int]:
    every = cfg.snapshot_every or max(cfg.steps // 4, 1)
    return set(range(0, cfg.steps + 1, every)) | {cfg.steps}


def take_snapshot(snapshots: dict, step: int, steps: set[int], matrix: DirectionMatrix) -> None:
    if step in steps:
        snapshots[step] = matrix.matrix().detach().cpu().clone()


def save_snapshots(run_dir: Path, snapshots: dict[int, torch.Tensor]) -> None:
    if not snapshots:
        return
    from safetensors.torch import save_file
    with atomic_path(run_dir / SNAPSHOTS) as tmp:
        save_file({f"step_{k:09d}": v.contiguous() for k, v in sorted(snapshots.items())}, str(tmp))


def load_snapshots(run_dir: str | Path, latent_dim: int | None = None) -> dict[int, torch.Tensor]:
    """A's snapshots over training, {step: (d, K) matrix}, from a run folder (``latent_dim``: the d they must have)."""
    from safetensors.torch import load_file
    path = Path(run_dir) / SNAPSHOTS
    if not path.exists():
        raise FileNotFoundError(f"no snapshots in {run_dir} (only trained parametrizations keep them)")
    skip = "delete it (the charts of A's evolution are then skipped)"
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError: the Rust error names no file
        raise ValueError(f"could not read {path}: truncated or not a safetensors file ({exc}); {skip}") from None
    steps = {key: re.fullmatch(r"step_(\d+)", key) for key in tensors}
    if not tensors or not all(steps.values()):
        raise ValueError(f"{path} holds no snapshots of a latentdirs run (expected tensors step_N, found "
                         f"{', '.join(sorted(tensors)[:4]) or 'none'}); {skip}")
    snapshots = {int(steps[key].group(1)): value for key, value in sorted(tensors.items())}
    for value in snapshots.values():
        if not (value.is_floating_point() and value.dim() == 2 and torch.isfinite(value).all()) or (
                latent_dim is not None and value.shape[0] != latent_dim):
            raise ValueError(f"{path}: each snapshot must be a finite float matrix ({latent_dim or 'latent_dim'}, K), "
                             f"found {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}; {skip}")
    return snapshots
