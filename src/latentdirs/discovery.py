"""The LD loop (Voynov & Babenko 2020): find K directions A so that a reconstructor R can
tell, from (G(z), G(z + eps A e_k)), which direction k was taken and how far (eps).

One training step:
  1. sample z ~ p(z), k ~ U{0..K-1}, eps ~ U[-6, 6] pushed to |eps| >= 0.5;
  2. G(z) without autograd: nothing upstream of it is trained;
  3. G(z + A(eps e_k)) with autograd to the input only (G's weights are frozen), through
     ``G.shifted(z, A(eps e_k))`` so that a W+ layer range moves only its layers;
  4. loss = CE(k, k_hat) + lambda |eps - eps_hat|; Adam on A and R.

The same code runs on one device or under ``torchrun`` (DistributedDataParallel over the
trainable parts only: A and R; the frozen G is a plain replica on every rank).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .directions import TRAINABLE, DirectionMatrix, DirectionSet
from .generators.base import Generator, GeneratorError, check_finite, check_generator
from .importance import image_change_scores, squared_cosines
from .reconstructors import make_reconstructor
from .runs import (MetricsLog, atomic_path, atomic_torch_save, atomic_write_text, check_same_config, load_error_reason,
                   remove_stale_temporaries, save_config)

CHECKPOINT = "checkpoint.pt"


PARAMETRIZATIONS = ("unit", "ortho", "cayley", "linear")
"""Trained parametrizations of A; ``identity`` and ``random`` are frozen baselines (RCA)."""
RECONSTRUCTORS = ("lenet", "resnet18")
SHIFT_WEIGHT_SCHEDULES = ("constant", "linear", "cosine")
RANKINGS = ("image_change", "recognizability")
STARTS = ("axes", "sefa", "ganspace")


@dataclass
class DiscoveryConfig:
    """Every option of a discovery run; saved as ``config.json`` in the run folder.

    The one source of LD's options: ``discover()`` takes these fields as keywords, and the
    CLI options of ``discover``, ``demo``, ``sweep`` and ``compare`` are generated from them
    (names, defaults, and these attribute docstrings as help). The defaults are the paper's
    settings at a tenth of its steps; :data:`PRESETS` holds the named alternatives.
    """

    num_directions: int = 64
    """K, the number of directions (columns of A)."""
    parametrization: str = "unit"
    """How A is constrained: unit | ortho | cayley | linear (trained) or identity | random (frozen baselines)."""
    reconstructor: str = "lenet"
    """Architecture of R: lenet | resnet18."""
    steps: int = 10_000
    """Optimizer steps (a resumed run may be given more steps than it started with)."""
    batch_size: int = 128
    """Image pairs per step (over all ranks when distributed)."""
    lr: float = 1e-4
    """Adam learning rate of A and R (the paper: 1e-4 for 1e5 steps; 1e-3 suits CPU budgets)."""
    shift_weight: float = 0.25
    """lambda, the weight of the shift-regression loss."""
    shift_weight_schedule: str = "constant"
    """How lambda moves over the run: constant, or annealed from shift_weight to 0 at the last step
    (linear | cosine): the shift regression shapes the directions early and lets go of them late."""
    overlap_weight: float = 0.0
    """Weight of a penalty on the squared cosine between the image changes that two different
    directions make at the same latent (a finite-difference Jacobian orthogonality, as in OroJaR,
    Wei et al. 2021): directions that move the same pixels are pushed apart. Needs shifts_per_latent >= 2."""
    start: str = "axes"
    """Where A starts: axes (the coordinate axes, the paper's), sefa (SeFa's top K directions) or
    ganspace (GANSpace's top K, orthonormalized in order for ortho/cayley). Both are label-free and
    closed-form: LD then refines them. An explicit ``init`` given to discover() wins over this."""
    shift_range: float = 6.0
    """eps ~ U[-shift_range, shift_range] ..."""
    min_shift: float = 0.5
    """... then pushed away from 0 to |eps| >= min_shift."""
    shifts_per_latent: int = 1
    """M: each G(z) is paired with M shifted images (1 = the paper's sampling)."""
    micro_batches: int = 1
    """Split each step's batch into this many chunks (gradient accumulation) to save memory."""
    seed: int = 0
    """Seed of A's and R's initialisation and of every step's samples."""
    device: str = "auto"
    """cpu, cuda, cuda:1 or auto (cuda when available)."""
    channels_last: bool | None = None
    """Channels-last (NHWC) format for G's and R's weights and R's input. None = on CPU only,
    where it measured 1.1-1.3x faster per step with unchanged RCA; CUDA is not measured yet."""
    compile: bool = False
    """torch.compile the trained pass: A, the shifted G pass (traced through) and R."""
    amp: bool = False
    """bf16 autocast for G's shifted pass and R; A, losses and Adam stay fp32. Off by default:
    1.1-1.5x faster on a bf16-capable CPU, but RCA was not shown unchanged (docs/scale.md)."""
    tf32: bool = False
    """CUDA only: TF32 matmuls (cuDNN convolutions already use TF32 by PyTorch's default)."""
    log_every: int = 50
    """Append the mean loss and accuracy to metrics.jsonl every this many steps."""
    checkpoint_every: int = 500
    """Write the resumable checkpoint.pt every this many steps (and at the end)."""
    snapshot_every: int = 0
    """Keep a copy of A every this many steps (0 = at 0, 25%, 50%, 75%, 100% of the run)."""
    importance_latents: int = 32
    """Latents per direction used to score the directions at the end (0 = no scores)."""
    rank_by: str = "image_change"
    """What the final scores (and so ``DirectionSet.top(k)``) rank by, both label-free: image_change
    (pixels moved per unit shift) or recognizability (the trained R's mean probability of the true
    direction on held-out pairs: low for directions the image barely shows and for near-copies of
    another direction, which R confuses)."""

    POSITIVE: ClassVar[tuple[str, ...]] = ("num_directions", "steps", "batch_size", "shifts_per_latent",
                                           "micro_batches", "log_every", "checkpoint_every")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"parametrization": PARAMETRIZATIONS + ("identity", "random"),
                                                     "reconstructor": RECONSTRUCTORS,
                                                     "shift_weight_schedule": SHIFT_WEIGHT_SCHEDULES,
                                                     "rank_by": RANKINGS, "start": STARTS}
    RUNTIME: ClassVar[frozenset[str]] = frozenset({"device", "log_every", "checkpoint_every", "compile",
                                                   "channels_last", "micro_batches"})
    """Options that change how fast a run goes, not what it computes: a resume may change them."""

    def validate(self) -> None:
        for name in self.POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.shift_weight < 0:
            raise ValueError(f"shift_weight (lambda) must be >= 0, got {self.shift_weight}")
        if self.overlap_weight < 0:
            raise ValueError(f"overlap_weight must be >= 0, got {self.overlap_weight}")
        if self.overlap_weight > 0 and self.shifts_per_latent < 2:
            raise ValueError("overlap_weight compares two directions at the same latent: it needs "
                             f"shifts_per_latent >= 2, got {self.shifts_per_latent}")
        if self.start != "axes" and self.parametrization not in TRAINABLE:
            raise ValueError(f"start={self.start} sets where a trained A starts; {self.parametrization} directions "
                             "are not trained: use start=axes")
        if not 0 <= self.min_shift < self.shift_range:
            raise ValueError(f"need 0 <= min_shift < shift_range, got {self.min_shift} and {self.shift_range}")
        if self.batch_size % (self.shifts_per_latent * self.micro_batches):
            raise ValueError(f"batch_size {self.batch_size} must be divisible by shifts_per_latent x micro_batches "
                             f"= {self.shifts_per_latent * self.micro_batches}")


PRESETS: dict[str, DiscoveryConfig] = {
    # The paper's optimisation (Voynov & Babenko 2020): lr 1e-4 for 1e5 steps. Hours on a GPU.
    "paper": DiscoveryConfig(steps=100_000),
    # `latentdirs discover`'s default: the paper's loss at 10x the lr, minutes on a CPU for a small GAN.
    "cpu": DiscoveryConfig(num_directions=32, steps=3_000, lr=1e-3),
    # `latentdirs demo`: sized so that the whole demo (discovery + 3 RCA runs) ends within 10 minutes
    # on the slower of our 2-core machines with the dcgan-w generator (docs/demo/report.md).
    "demo": DiscoveryConfig(num_directions=16, steps=1_000, lr=1e-3, batch_size=32),
    # The paper's loss at a short CPU budget: what the first demo and `compare`'s LD ran (every
    # table measured on the first shipped GAN used it), kept so those numbers reproduce.
    "short": DiscoveryConfig(num_directions=16, steps=1_500, lr=1e-3, batch_size=64),
    # Every cell of `latentdirs sweep` unless the grid or --set says otherwise.
    "sweep": DiscoveryConfig(num_directions=10, steps=2_000, lr=1e-3, batch_size=64),
    # LD that disentangles (docs/compare.md, "Second round"): start at SeFa, drop the shift
    # regression that pulls directions together, and push apart directions that move the same
    # pixels. The short budget; on the first shipped GAN it beat SeFa and GANSpace on MIG and DCI-D.
    "disentangle": DiscoveryConfig(num_directions=10, steps=1_500, lr=1e-3, batch_size=64, parametrization="ortho",
                                   start="sefa", shift_weight=0.0, overlap_weight=10.0, shifts_per_latent=2),
    # `latentdirs demo`: the disentangle recipe at the demo's budget (the whole demo, with SeFa,
    # GANSpace, RCA, MIG / DCI and the names, within 10 minutes on 2 CPU cores; docs/demo/report.md).
    "demo-disentangle": DiscoveryConfig(num_directions=10, steps=500, lr=1e-3, batch_size=32, parametrization="ortho",
                                        start="sefa", shift_weight=0.0, overlap_weight=10.0, shifts_per_latent=2),
}


def preset(name: str, **overrides) -> DiscoveryConfig:
    """A copy of the named preset with ``overrides`` applied, e.g. ``preset("demo", steps=20)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return resolve_config(PRESETS[name], overrides)


def resolve_config(config: DiscoveryConfig | None, overrides: dict) -> DiscoveryConfig:
    """``config`` (default: the field defaults) with keyword ``overrides``; unknown names are an error."""
    known = {f.name for f in dataclasses.fields(DiscoveryConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown discovery options {unknown}; options: {', '.join(sorted(known))}")
    cfg = dataclasses.replace(config or DiscoveryConfig(), **overrides)
    cfg.validate()
    return cfg


@dataclass
class DiscoveryResult:
    directions: DirectionSet
    direction_matrix: DirectionMatrix
    reconstructor: nn.Module
    history: list[dict] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    run_dir: Path | None = None

    @property
    def accuracy(self) -> float:
        """Training accuracy of R's direction head over the last logged window."""
        return self.history[-1]["accuracy"] if self.history else float("nan")


class _Trainable(nn.Module):
    """A and R in one module, so one DDP wrapper syncs both; G is held, not registered."""

    def __init__(self, direction_matrix: DirectionMatrix, reconstructor: nn.Module, generator: Generator,
                 channels_last: bool, overlap_penalty: bool = False) -> None:
        super().__init__()
        self.direction_matrix, self.reconstructor = direction_matrix, reconstructor
        object.__setattr__(self, "generator", generator)
        self.channels_last, self.overlap_penalty = channels_last, overlap_penalty

    def forward(self, z: torch.Tensor, index: torch.Tensor, shift: torch.Tensor, base_images: torch.Tensor):
        """``z`` and ``base_images`` hold one row per latent, ``index``/``shift`` M rows per latent."""
        b, m = z.shape[0], index.shape[0] // z.shape[0]
        # Broadcasting over the M partners instead of repeat_interleave: G(z) is never copied M times.
        moves = self.direction_matrix(index, shift).view(b, m, -1)
        shifted = self.generator.shifted(z.unsqueeze(1).expand_as(moves).flatten(0, 1), moves.flatten(0, 1))
        base = base_images.unsqueeze(1).expand(b, m, *base_images.shape[1:])
        pair = torch.cat([base, shifted.view(b, m, *shifted.shape[1:])], dim=2).flatten(0, 1)
        if self.channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        logits, shift_pred = self.reconstructor(pair)
        if not self.overlap_penalty or m < 2:
            return logits, shift_pred, logits.new_zeros((), dtype=torch.float32)
        return logits, shift_pred, self._overlap(shifted.reshape(b, m, -1), base_images.reshape(b, 1, -1),
                                                 index.view(b, m))

    @staticmethod
    def _overlap(shifted: torch.Tensor, base: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Mean squared cosine between the image changes of different directions at one latent."""
        different = index.unsqueeze(2) != index.unsqueeze(1)  # also drops the diagonal
        return (squared_cosines(shifted - base) * different).sum() / different.sum().clamp_min(1)


def _autocast(cfg: DiscoveryConfig, device: torch.device):
    if not cfg.amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    return torch.device(device)


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when launched by torchrun."""
    import torch.distributed as dist
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def sample_pairs(generator: Generator, cfg: DiscoveryConfig, num_pairs: int, rng: torch.Generator,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (num_pairs / M of them), direction indices and shifts for one step."""
    z = generator.sample_latents(num_pairs // cfg.shifts_per_latent, generator=rng, device="cpu")
    index = torch.randint(cfg.num_directions, (num_pairs,), generator=rng)
    shift = (torch.rand(num_pairs, generator=rng) * 2 - 1) * cfg.shift_range
    shift = torch.sign(shift) * shift.abs().clamp_min(cfg.min_shift)
    return z.to(device), index.to(device), shift.to(device)


def _step_rng(seed: int, rank: int, step: int) -> torch.Generator:
    # Re-seeding per step makes a resumed run draw exactly what an uninterrupted one would.
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))


def shift_weight_at(cfg: DiscoveryConfig, step: int) -> float:
    """lambda at ``step`` (0-based) under ``cfg.shift_weight_schedule``."""
    if cfg.shift_weight_schedule == "constant":
        return cfg.shift_weight
    progress = min(1.0, step / max(1, cfg.steps - 1))
    if cfg.shift_weight_schedule == "linear":
        return cfg.shift_weight * (1 - progress)
    return cfg.shift_weight * 0.5 * (1 + math.cos(math.pi * progress))


def train_step(model: nn.Module, generator: Generator, optimizer: torch.optim.Optimizer,
               cfg: DiscoveryConfig, z: torch.Tensor, index: torch.Tensor, shift: torch.Tensor,
               shift_weight: float | None = None) -> dict:
    """One optimizer step over ``index.shape[0]`` pairs, in ``cfg.micro_batches`` chunks.

    ``shift_weight`` is this step's lambda (default ``cfg.shift_weight``; see :func:`shift_weight_at`).
    """
    optimizer.zero_grad(set_to_none=True)
    n, chunks = index.shape[0], cfg.micro_batches
    parts = list(zip(z.chunk(chunks), index.chunk(chunks), shift.chunk(chunks)))
    stats = torch.zeros(4, device=index.device)  # loss, accuracy, shift error, overlap: summed on device
    matrix = _unwrap(model).direction_matrix
    # One A per step, not per chunk (exp(S) at d=512 is not cheap): chunks backprop into a detached
    # copy, and A's own graph runs once at the end. Not under DDP, whose hooks need A's
    # parameters inside each synced backward.
    reuse = chunks > 1 and matrix.trainable and not hasattr(model, "no_sync")
    if reuse:
        a = matrix.matrix()
        matrix.step_matrix = a.detach().requires_grad_(True)
    try:
        _accumulate(model, generator, cfg, parts, n, stats,
                    cfg.shift_weight if shift_weight is None else shift_weight)
    finally:
        step_matrix, matrix.step_matrix = matrix.step_matrix, None
    if reuse:
        a.backward(step_matrix.grad)
    loss, accuracy, shift_error, overlap = stats.tolist()  # the step's only host-device sync
    if not math.isfinite(loss):
        _explain_non_finite(generator, model, parts, loss)
    optimizer.step()
    record = {"loss": loss, "accuracy": accuracy, "shift_error": shift_error}
    if cfg.overlap_weight > 0:
        record["overlap"] = overlap
    return record


def _accumulate(model: nn.Module, generator: Generator, cfg: DiscoveryConfig, parts, n: int,
                stats: torch.Tensor, shift_weight: float) -> None:
    """Forward and backward of every chunk; gradients and stats add up."""
    chunks = len(parts)
    for i, (zc, ic, sc) in enumerate(parts):
        # Nothing upstream of G(z) is trained: no graph, no saved activations.
        with torch.inference_mode():
            base = generator(zc)
        # Under DDP only the last chunk's backward all-reduces; earlier ones just accumulate.
        sync = model.no_sync() if i < chunks - 1 and hasattr(model, "no_sync") else contextlib.nullcontext()
        with sync:
            with _autocast(cfg, stats.device):
                logits, shift_pred, overlap = model(zc, ic, sc, base)
            class_loss = F.cross_entropy(logits.float(), ic)
            shift_loss = (shift_pred.float() - sc).abs().mean()
            loss = class_loss + shift_weight * shift_loss + cfg.overlap_weight * overlap
            w = ic.shape[0] / n
            (loss * w).backward()
        stats += torch.stack([loss.detach(), (logits.argmax(1) == ic).float().mean(), shift_loss.detach(),
                              overlap.detach()]) * w


def _unwrap(model: nn.Module) -> "_Trainable":
    while not isinstance(model, _Trainable):  # through DDP (.module) and torch.compile (._orig_mod)
        model = getattr(model, "module", None) or model._orig_mod
    return model


def _explain_non_finite(generator: Generator, model: nn.Module, parts, loss: float) -> None:
    # Only on failure: redo the step's generator passes to tell a broken G from a diverged R.
    trainable = _unwrap(model)
    with torch.no_grad():
        for zc, ic, sc in parts:
            check_finite(generator(zc), generator.name)
            b, m = zc.shape[0], ic.shape[0] // zc.shape[0]
            moves = trainable.direction_matrix(ic, sc).view(b, m, -1)
            check_finite(generator.shifted(zc.unsqueeze(1).expand_as(moves).flatten(0, 1), moves.flatten(0, 1)),
                         generator.name)
    raise GeneratorError(f"the loss became {loss}: the reconstructor diverged; lower lr")


def discover(generator: Generator, config: DiscoveryConfig | None = None, *, out_dir: str | Path | None = None,
             resume: bool = False, init=None, progress: bool = True, fixed_matrix: torch.Tensor | None = None,
             **overrides) -> DiscoveryResult:
    """Train directions A and a reconstructor R on a frozen generator.

    ``config`` (default ``DiscoveryConfig()``) with ``overrides``, its fields as keywords:
    ``discover(G, num_directions=10, steps=2_000)`` or ``discover(G, PRESETS["demo"], seed=1)``.
    ``out_dir`` is the run folder (created if needed; None keeps nothing on disk); with
    ``resume=True`` a run folder holding a checkpoint continues where it stopped, and refuses
    a config that differs in anything but the runtime options and a longer ``steps``.
    ``init`` (a DirectionSet or a d x K tensor, e.g. ``latentdirs.sefa(G, K)``) is where A
    starts instead of the coordinate axes; orthonormal for ``ortho``/``cayley``.
    ``fixed_matrix`` trains R alone against frozen directions (used by :func:`latentdirs.rca`).
    """
    cfg = resolve_config(config, overrides)
    if not isinstance(generator, Generator):
        raise TypeError("discover() needs a latentdirs Generator: use latentdirs.wrap(module, latent_dim=...) "
                        "or latentdirs.load_generator(kind, path)")
    rank, world = _distributed()
    cfg, dev = _place(cfg, rank, world)
    generator = generator.to(dev).freeze()
    image_shape = tuple(check_generator(generator).shape[1:])
    run_dir = Path(out_dir) if out_dir is not None and rank == 0 else None
    state = _restore(out_dir, cfg, generator, dev) if resume else None
    if resume and run_dir is not None:  # what a kill during a write left behind
        for folder in (run_dir, run_dir / "directions"):
            remove_stale_temporaries(folder)
    if state is not None and "direction_matrix.basis" in state["trainable"]:
        init = state["trainable"]["direction_matrix.basis"][:, :cfg.num_directions].cpu()  # the run's own start
    elif init is None and fixed_matrix is None:
        init = starting_directions(generator, cfg)
    trainable, optimizer = _build(generator, cfg, image_shape, dev, init, fixed_matrix)
    matrix = trainable.direction_matrix
    log = MetricsLog(run_dir)
    start_step, history, snapshots = 0, [], {}
    if state is not None:
        expected = trainable.state_dict()
        wrong = [k for k, v in state["trainable"].items()
                 if k in expected and v.is_floating_point() != expected[k].is_floating_point()]
        if wrong:
            raise ValueError(f"{Path(out_dir) / CHECKPOINT}: {', '.join(wrong[:4])} hold(s) {state['trainable'][wrong[0]].dtype} "
                             f"values where the run has {expected[wrong[0]].dtype}; {_START_AGAIN}")
        try:
            trainable.load_state_dict(state["trainable"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(f"{Path(out_dir) / CHECKPOINT} does not fit this run ({str(exc).splitlines()[0]}); "
                             f"{_START_AGAIN}") from None
        start_step, history, snapshots = state["step"], state["history"], state["snapshots"]
        if run_dir is not None:  # steps logged after the checkpoint run again: keep each step once
            atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        log.log(f"resumed at step {start_step}")
    elif run_dir is not None:
        _start_run_folder(run_dir, cfg, generator, image_shape, world, init)
        log.log(f"discovery on {generator.name} ({image_shape}), {cfg.num_directions} directions, device {dev}")

    model = _parallel(trainable, cfg, world, dev)
    snapshot_steps = _snapshot_steps(cfg) if matrix.trainable else set()
    window: list[dict] = []
    trainable.train()
    bar = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, disable=not progress or rank > 0,
               desc=f"discover {generator.name}", dynamic_ncols=True)
    tick = time.perf_counter()
    for step in bar:
        _snapshot(snapshots, step, snapshot_steps, matrix)
        z, index, shift = sample_pairs(generator, cfg, cfg.batch_size // world, _step_rng(cfg.seed, rank, step), dev)
        shift_weight = shift_weight_at(cfg, step)
        window.append(train_step(model, generator, optimizer, cfg, z, index, shift, shift_weight))
        if cfg.shift_weight_schedule != "constant":
            window[-1]["shift_weight"] = shift_weight
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            means = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            record = {"step": done, **(_mean_over_ranks(means, dev) if world > 1 else means),
                      "sec_per_step": (now - tick) / len(window)}
            history.append(record)
            log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
            window, tick = [], now
        if run_dir is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            _snapshot(snapshots, done, snapshot_steps, matrix)  # the checkpoint must hold it for a resume
            _checkpoint(run_dir, trainable, optimizer, done, history, snapshots)
    _snapshot(snapshots, cfg.steps, snapshot_steps, matrix)
    trainable.eval()
    directions = _export(generator, matrix, trainable.reconstructor, cfg, history, score=rank == 0)
    if run_dir is not None:
        directions.save(run_dir / "directions")
        _save_snapshots(run_dir, snapshots)
        log.log(f"done: {cfg.steps} steps, final accuracy {directions.meta['final_accuracy']}")
    return DiscoveryResult(directions, matrix, trainable.reconstructor, history, snapshots, run_dir)


def _place(cfg: DiscoveryConfig, rank: int, world: int) -> tuple[DiscoveryConfig, torch.device]:
    """This process's device, and the config with what depends on it resolved (saved as such)."""
    dev = resolve_device(cfg.device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    per_rank = cfg.shifts_per_latent * cfg.micro_batches
    if cfg.batch_size % (world * per_rank):
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by processes x shifts_per_latent x "
                         f"micro_batches = {world} x {cfg.shifts_per_latent} x {cfg.micro_batches}")
    if cfg.channels_last is None:
        cfg = dataclasses.replace(cfg, channels_last=dev.type == "cpu")
    if cfg.tf32 and dev.type == "cuda":
        torch.set_float32_matmul_precision("high")  # process-wide: PyTorch has no scoped switch
    return cfg, dev


def _restore(out_dir, cfg: DiscoveryConfig, generator: Generator, dev: torch.device) -> dict | None:
    """The checkpoint of a run folder being resumed (None when it has none yet), after the config check."""
    if out_dir is None:
        return None
    # A resume may extend the run (more steps) or change how fast it goes, nothing else.
    check_same_config(out_dir, "discovery", dataclasses.asdict(cfg), ignore=DiscoveryConfig.RUNTIME | {"steps"},
                      generator=generator.describe())
    checkpoint = Path(out_dir) / CHECKPOINT
    return _read_checkpoint(checkpoint, dev) if checkpoint.exists() else None


_START_AGAIN = "delete it to start the run again from step 0 (config.json keeps its options), or copy back a good one"


def _read_checkpoint(path: Path, dev: torch.device) -> dict:
    """checkpoint.pt as :func:`_checkpoint` wrote it, checked; anything else is a ValueError naming the file.

    The run's own checkpoint holds only tensors and plain values, so it is always read weights-only
    (no --trust-pickle: a file that needs it is not one this loop wrote)."""
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


def _tensors_in(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    return []


def starting_directions(generator: Generator, cfg: DiscoveryConfig) -> DirectionSet | None:
    """A's start by ``cfg.start`` (None: the coordinate axes), fit for ``cfg.parametrization``."""
    if cfg.start == "axes" or cfg.parametrization not in TRAINABLE:
        return None
    if cfg.num_directions > generator.latent_dim:
        raise ValueError(f"start={cfg.start} gives at most latent_dim = {generator.latent_dim} directions, "
                         f"but num_directions is {cfg.num_directions}; lower it or use start=axes")
    from .closed_form import ganspace, sefa
    if cfg.start == "sefa":
        found = sefa(generator, cfg.num_directions)
    else:
        found = ganspace(generator, cfg.num_directions, seed=cfg.seed)
    matrix = found.matrix
    if cfg.parametrization in ("ortho", "cayley"):
        # GANSpace's Z directions are unit-norm but not orthogonal. QR keeps the span of each leading
        # set of columns, so direction 1 stays exactly GANSpace's first; signs follow the originals.
        q, r = torch.linalg.qr(matrix.double())
        matrix = (q * torch.sign(torch.diagonal(r)).unsqueeze(0)).float()
    return DirectionSet(matrix, meta={**found.meta, "method": f"{found.meta.get('method', cfg.start)} start"})


def _build(generator: Generator, cfg: DiscoveryConfig, image_shape: tuple, dev: torch.device, init,
           fixed_matrix: torch.Tensor | None) -> tuple["_Trainable", torch.optim.Optimizer]:
    """A, R and their optimizer, identical on every rank (same seed)."""
    torch.manual_seed(cfg.seed)
    matrix = DirectionMatrix(generator.latent_dim, cfg.num_directions,
                             "fixed" if fixed_matrix is not None else cfg.parametrization,
                             seed=cfg.seed, fixed=fixed_matrix, init=init).to(dev)
    recon = make_reconstructor(cfg.reconstructor, image_shape, cfg.num_directions).to(dev)
    if cfg.channels_last:
        recon = recon.to(memory_format=torch.channels_last)
        for weight in generator.parameters():  # oneDNN / cuDNN convs prefer NHWC end to end; 4-D weights only,
            if weight.dim() == 4:  # as Module.to(memory_format) refuses StyleGAN2's 5-D modulated weights
                weight.data = weight.data.contiguous(memory_format=torch.channels_last)
    trainable = _Trainable(matrix, recon, generator, cfg.channels_last, overlap_penalty=cfg.overlap_weight > 0)
    optimizer = torch.optim.Adam([p for p in trainable.parameters() if p.requires_grad], lr=cfg.lr)
    return trainable, optimizer


def _start_run_folder(run_dir: Path, cfg: DiscoveryConfig, generator: Generator, image_shape: tuple, world: int,
                      init) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh start must not append to an old run's
    init_note = None if init is None else (init.meta.get("method", "a direction set") if isinstance(init, DirectionSet)
                                           else "a given matrix")
    save_config(run_dir, {"discovery": dataclasses.asdict(cfg), "generator": generator.describe(),
                          "image_shape": image_shape, "world_size": world, "init": init_note})


def _parallel(trainable: "_Trainable", cfg: DiscoveryConfig, world: int, dev: torch.device) -> nn.Module:
    """The module the loop calls: DDP over A and R when distributed, compiled when asked."""
    model: nn.Module = trainable
    if world > 1:
        model = nn.parallel.DistributedDataParallel(trainable, device_ids=[dev.index] if dev.type == "cuda" else None)
    return torch.compile(model) if cfg.compile else model


def _snapshot(snapshots: dict, step: int, snapshot_steps: set[int], matrix: DirectionMatrix) -> None:
    if step in snapshot_steps:
        snapshots[step] = matrix.matrix().detach().cpu().clone()


def _checkpoint(run_dir: Path, trainable: "_Trainable", optimizer, step: int, history: list, snapshots: dict) -> None:
    atomic_torch_save({"trainable": trainable.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                       "history": json.dumps(history), "snapshots": snapshots}, run_dir / CHECKPOINT)


def _export(generator: Generator, matrix: DirectionMatrix, reconstructor: nn.Module, cfg: DiscoveryConfig,
            history: list, score: bool) -> DirectionSet:
    directions = matrix.to_direction_set(
        method=f"ld-{cfg.parametrization}", generator=generator.describe(), num_directions=cfg.num_directions,
        seed=cfg.seed, steps=cfg.steps, reconstructor=cfg.reconstructor, shift_weight=cfg.shift_weight,
        final_accuracy=history[-1]["accuracy"] if history else None)
    if not (cfg.importance_latents and score):
        return directions
    if cfg.rank_by == "recognizability":
        directions.scores = recognizability(generator, matrix, reconstructor, cfg, cfg.importance_latents)
        directions.meta["scores"] = "recognizability: R's mean probability of the true direction, held-out pairs"
    else:
        directions.scores = image_change_scores(generator, directions.matrix, num_latents=cfg.importance_latents,
                                                seed=cfg.seed)
        directions.meta["scores"] = "image change per unit shift (latentdirs.importance)"
    return directions


def _mean_over_ranks(values: dict, device: torch.device) -> dict:
    import torch.distributed as dist
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist()))


def _snapshot_steps(cfg: DiscoveryConfig) -> set[int]:
    every = cfg.snapshot_every or max(cfg.steps // 4, 1)
    return set(range(0, cfg.steps + 1, every)) | {cfg.steps}


def _save_snapshots(run_dir: Path, snapshots: dict[int, torch.Tensor]) -> None:
    if not snapshots:
        return
    from safetensors.torch import save_file
    with atomic_path(run_dir / "snapshots.safetensors") as tmp:
        save_file({f"step_{k:09d}": v.contiguous() for k, v in sorted(snapshots.items())}, str(tmp))


def load_snapshots(run_dir: str | Path, latent_dim: int | None = None) -> dict[int, torch.Tensor]:
    """A's snapshots over training, {step: (d, K) matrix}, from a run folder (``latent_dim``: the d they must have)."""
    from safetensors.torch import load_file
    path = Path(run_dir) / "snapshots.safetensors"
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


@torch.no_grad()
def reconstructor_accuracy(generator: Generator, direction_matrix: DirectionMatrix, reconstructor: nn.Module,
                           cfg: DiscoveryConfig, num_batches: int = 10, seed: int = 10_000) -> float:
    """Accuracy of R's direction head on fresh pairs drawn from a held-out seed."""
    reconstructor.eval()
    dev = generator.device
    correct = total = 0
    eval_cfg = dataclasses.replace(cfg, shifts_per_latent=1)
    for b in range(num_batches):
        z, index, shift = sample_pairs(generator, eval_cfg, cfg.batch_size, _step_rng(seed, 0, b), dev)
        pair = torch.cat([generator(z), generator.shifted(z, direction_matrix(index, shift))], 1)
        logits, _ = reconstructor(pair)
        correct += (logits.argmax(1) == index).sum().item()
        total += index.numel()
    return correct / total


@torch.no_grad()
def recognizability(generator: Generator, direction_matrix: DirectionMatrix, reconstructor: nn.Module,
                    cfg: DiscoveryConfig, num_latents: int = 32, seed: int = 20_000) -> torch.Tensor:
    """(K,) mean probability R gives the true direction, over ``num_latents`` held-out pairs per direction."""
    was_training = reconstructor.training
    reconstructor.eval()
    dev = generator.device
    rng = torch.Generator().manual_seed(seed)
    scores = torch.zeros(cfg.num_directions)
    one_shift = dataclasses.replace(cfg, shifts_per_latent=1)
    for k in range(cfg.num_directions):
        z, _, shift = sample_pairs(generator, one_shift, num_latents, rng, dev)
        index = torch.full_like(shift, k, dtype=torch.long)
        pair = torch.cat([generator(z), generator.shifted(z, direction_matrix(index, shift))], 1)
        if cfg.channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        logits, _ = reconstructor(pair)
        scores[k] = logits.float().softmax(1)[:, k].mean().cpu()
    reconstructor.train(was_training)
    return scores
