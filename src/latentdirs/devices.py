"""Where a job runs: the device, the torchrun process group, bf16 autocast.

A leaf module (it imports nothing of latentdirs): discovery, LatentCLR, saliency and the web
app all pick their device here, so ``--device auto`` means the same everywhere.
"""
from __future__ import annotations

import contextlib
import os

import torch


def resolve_device(device: str | None) -> torch.device:
    """``auto`` (or None) is cuda when available; a CUDA device asked for on a machine without one is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):  # torch's message lists twenty backends and no fix
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "meta":  # meta tensors hold no values: every result would be empty
        raise ValueError(f"device {device!r} holds no data; use cpu, cuda, cuda:N, mps or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s): cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    backend = torch.backends.mps if dev.type == "mps" else getattr(torch, dev.type, None)
    if dev.type != "cpu" and not getattr(backend, "is_available", lambda: True)():
        raise ValueError(f"device {device!r} requested but {dev.type} is not available here; use --device cpu")
    return dev


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when launched by torchrun."""
    import torch.distributed as dist
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each value averaged over all ranks (one all-reduce)."""
    import torch.distributed as dist
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist()))


def autocast(amp: bool, device: torch.device):
    """bf16 autocast on ``device`` when ``amp``, else a no-op context."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
