"""The LD loop (Voynov & Babenko 2020): find K directions A so that a reconstructor R can
tell, from (G(z), G(z + eps A e_k)), which direction k was taken and how far (eps).

One training step:
  1. sample z ~ p(z), k ~ U{0..K-1}, eps ~ U[-6, 6] pushed to |eps| >= 0.5;
  2. G(z) without autograd: nothing upstream of it is trained;
  3. G(z + A(eps e_k)) with autograd to the input only (G's weights are frozen), through
     ``G.shifted(z, A(eps e_k))`` so that a W+ layer range moves only its layers;
  4. loss = CE(k, k_hat) + lambda |eps - eps_hat|; Adam on A and R.

The same code runs on one device or under ``torchrun`` (DistributedDataParallel over the
trainable parts only: A and R; the frozen G is a plain replica on every rank). Read it top
to bottom: the step, then the setup of a run, then :func:`discover`, which uses both.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..devices import autocast, distributed, mean_over_ranks, resolve_device
from ..directions import TRAINABLE, DirectionMatrix, DirectionSet
from ..generators.base import Generator, GeneratorError, check_finite, check_generator
from ..importance import image_change_scores, squared_cosines
from ..reconstructors import make_reconstructor
from ..runs import Run
from .checkpoints import (checkpoint_state, load_checkpoint, read_checkpoint, save_snapshots, snapshot_steps,
                          take_snapshot)
from .config import DiscoveryConfig, resolve_config
from .pairs import image_pairs, recognizability, sample_pairs, step_rng


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


# -- one training step ----------------------------------------------------------------------
class _Trainable(nn.Module):
    """A and R in one module, so one DDP wrapper syncs both; G is held, not registered."""

    def __init__(self, direction_matrix: DirectionMatrix, reconstructor: nn.Module, generator: Generator,
                 channels_last: bool, overlap_penalty: bool = False) -> None:
        super().__init__()
        self.direction_matrix, self.reconstructor = direction_matrix, reconstructor
        object.__setattr__(self, "generator", generator)
        self.channels_last, self.overlap_penalty = channels_last, overlap_penalty

    def forward(self, z: torch.Tensor, index: torch.Tensor, shift: torch.Tensor, base_images: torch.Tensor,
                matrix: torch.Tensor | None = None):
        """``z`` and ``base_images`` hold one row per latent, ``index``/``shift`` M rows per latent.

        ``matrix`` is this step's A when the caller computed it once for several chunks (else A is computed here).
        """
        a = self.direction_matrix.matrix() if matrix is None else matrix
        pairs, shifted = image_pairs(self.generator, a, z, index, shift, base_images, self.channels_last)
        logits, shift_pred = self.reconstructor(pairs)
        b, m = z.shape[0], index.shape[0] // z.shape[0]
        if not self.overlap_penalty or m < 2:
            return logits, shift_pred, logits.new_zeros((), dtype=torch.float32)
        return logits, shift_pred, self._overlap(shifted.reshape(b, m, -1), base_images.reshape(b, 1, -1),
                                                 index.view(b, m))

    @staticmethod
    def _overlap(shifted: torch.Tensor, base: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Mean squared cosine between the image changes of different directions at one latent."""
        different = index.unsqueeze(2) != index.unsqueeze(1)  # also drops the diagonal
        return (squared_cosines(shifted - base) * different).sum() / different.sum().clamp_min(1)


def shift_weight_at(cfg: DiscoveryConfig, step: int) -> float:
    """lambda at ``step`` (0-based) under ``cfg.shift_weight_schedule``."""
    if cfg.shift_weight_schedule == "constant":
        return cfg.shift_weight
    progress = min(1.0, step / max(1, cfg.steps - 1))
    if cfg.shift_weight_schedule == "linear":
        return cfg.shift_weight * (1 - progress)
    return cfg.shift_weight * 0.5 * (1 + math.cos(math.pi * progress))


def _unwrap(model: nn.Module) -> _Trainable:
    while not isinstance(model, _Trainable):  # through DDP (.module) and torch.compile (._orig_mod)
        model = getattr(model, "module", None) or model._orig_mod
    return model


def _accumulate(model: nn.Module, generator: Generator, cfg: DiscoveryConfig, parts, n: int, stats: torch.Tensor,
                shift_weight: float, matrix: torch.Tensor | None) -> None:
    """Forward and backward of every chunk; gradients and stats add up."""
    chunks = len(parts)
    for i, (zc, ic, sc) in enumerate(parts):
        # Nothing upstream of G(z) is trained: no graph, no saved activations.
        with torch.inference_mode():
            base = generator(zc)
        # Under DDP only the last chunk's backward all-reduces; earlier ones just accumulate.
        sync = model.no_sync() if i < chunks - 1 and hasattr(model, "no_sync") else contextlib.nullcontext()
        with sync:
            with autocast(cfg.amp, stats.device):
                logits, shift_pred, overlap = model(zc, ic, sc, base, matrix)
            class_loss = F.cross_entropy(logits.float(), ic)
            shift_loss = (shift_pred.float() - sc).abs().mean()
            loss = class_loss + shift_weight * shift_loss + cfg.overlap_weight * overlap
            w = ic.shape[0] / n
            (loss * w).backward()
        stats += torch.stack([loss.detach(), (logits.argmax(1) == ic).float().mean(), shift_loss.detach(),
                              overlap.detach()]) * w


def _explain_non_finite(generator: Generator, direction_matrix: DirectionMatrix, parts, loss: float) -> None:
    # Only on failure: redo the step's generator passes to tell a broken G from a diverged R.
    with torch.no_grad():
        a = direction_matrix.matrix()
        for zc, ic, sc in parts:
            base = generator(zc)
            check_finite(base, generator.name)
            check_finite(image_pairs(generator, a, zc, ic, sc, base, False)[1], generator.name)
    raise GeneratorError(f"the loss became {loss}: the reconstructor diverged; lower lr")


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
    direction_matrix = _unwrap(model).direction_matrix
    # One A per step, not per chunk (exp(S) at d=512 is not cheap): chunks backprop into a detached
    # copy, and A's own graph runs once at the end. Not under DDP, whose hooks need A's
    # parameters inside each synced backward.
    reuse = chunks > 1 and direction_matrix.trainable and not hasattr(model, "no_sync")
    a = direction_matrix.matrix() if reuse else None
    step_a = a.detach().requires_grad_(True) if reuse else None
    _accumulate(model, generator, cfg, parts, n, stats, cfg.shift_weight if shift_weight is None else shift_weight,
                step_a)
    if reuse:
        a.backward(step_a.grad)
    loss, accuracy, shift_error, overlap = stats.tolist()  # the step's only host-device sync
    if not math.isfinite(loss):
        _explain_non_finite(generator, direction_matrix, parts, loss)
    optimizer.step()
    record = {"loss": loss, "accuracy": accuracy, "shift_error": shift_error}
    if cfg.overlap_weight > 0:
        record["overlap"] = overlap
    return record


# -- setting up a run -----------------------------------------------------------------------
def _place(cfg: DiscoveryConfig, rank: int, world: int) -> tuple[DiscoveryConfig, torch.device]:
    """This process's device, and the config with what depends on it resolved (saved as such)."""
    dev = resolve_device(cfg.device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    per_rank = cfg.shifts_per_latent * cfg.micro_batches
    if cfg.batch_size % (world * per_rank):
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by processes x shifts_per_latent x "
                         f"micro_batches = {world} x {cfg.shifts_per_latent} x {cfg.micro_batches}")
    if cfg.batch_size // (world * cfg.micro_batches) < 2:  # R's BatchNorm cannot train on one pair
        raise ValueError(f"each forward pass needs at least 2 pairs, but batch_size {cfg.batch_size} over "
                         f"{world} process(es) x {cfg.micro_batches} micro_batches gives fewer: raise batch_size")
    if cfg.channels_last is None:
        cfg = dataclasses.replace(cfg, channels_last=dev.type == "cpu")
    if cfg.tf32 and dev.type == "cuda":
        torch.set_float32_matmul_precision("high")  # process-wide: PyTorch has no scoped switch
    return cfg, dev


def starting_directions(generator: Generator, cfg: DiscoveryConfig) -> DirectionSet | None:
    """A's start by ``cfg.start`` (None: the coordinate axes), fit for ``cfg.parametrization``."""
    if cfg.start == "axes" or cfg.parametrization not in TRAINABLE:
        return None
    if cfg.num_directions > generator.latent_dim:
        raise ValueError(f"start={cfg.start} gives at most latent_dim = {generator.latent_dim} directions, "
                         f"but num_directions is {cfg.num_directions}; lower it or use start=axes")
    from ..closed_form import ganspace, sefa
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


def _build(generator: Generator, cfg: DiscoveryConfig, image_shape: tuple, dev: torch.device, start,
           fixed_matrix: torch.Tensor | None) -> tuple[_Trainable, torch.optim.Optimizer]:
    """A, R and their optimizer, identical on every rank (same seed)."""
    torch.manual_seed(cfg.seed)
    matrix = DirectionMatrix(generator.latent_dim, cfg.num_directions,
                             "fixed" if fixed_matrix is not None else cfg.parametrization,
                             seed=cfg.seed, fixed=fixed_matrix, start=start).to(dev)
    recon = make_reconstructor(cfg.reconstructor, image_shape, cfg.num_directions).to(dev)
    if cfg.channels_last:
        recon = recon.to(memory_format=torch.channels_last)
        for weight in generator.parameters():  # oneDNN / cuDNN convs prefer NHWC end to end; 4-D weights only,
            if weight.dim() == 4:  # as Module.to(memory_format) refuses StyleGAN2's 5-D modulated weights
                weight.data = weight.data.contiguous(memory_format=torch.channels_last)
    trainable = _Trainable(matrix, recon, generator, cfg.channels_last, overlap_penalty=cfg.overlap_weight > 0)
    optimizer = torch.optim.Adam([p for p in trainable.parameters() if p.requires_grad], lr=cfg.lr)
    return trainable, optimizer


def _start_run(run: Run, cfg: DiscoveryConfig, generator: Generator, image_shape: tuple, world: int, start,
               dev: torch.device) -> None:
    run.clear_metrics()  # a fresh start must not append to an old run's
    note = None if start is None else (start.meta.get("method", "a direction set") if isinstance(start, DirectionSet)
                                       else "a given matrix")
    # "init" is the stored name of the start (run folders written before `start` was the one name keep it)
    run.save_config({"discovery": dataclasses.asdict(cfg), "generator": generator.describe(),
                     "image_shape": image_shape, "world_size": world, "init": note})
    run.log(f"discovery on {generator.name} ({image_shape}), {cfg.num_directions} directions, device {dev}")


def _parallel(trainable: _Trainable, cfg: DiscoveryConfig, world: int, dev: torch.device) -> nn.Module:
    """The module the loop calls: DDP over A and R when distributed, compiled when asked."""
    model: nn.Module = trainable
    if world > 1:
        model = nn.parallel.DistributedDataParallel(trainable, device_ids=[dev.index] if dev.type == "cuda" else None)
    return torch.compile(model) if cfg.compile else model


def _export(generator: Generator, trainable: _Trainable, cfg: DiscoveryConfig, history: list,
            score: bool) -> DirectionSet:
    directions = trainable.direction_matrix.to_direction_set(
        method=f"ld-{cfg.parametrization}", generator=generator.describe(), num_directions=cfg.num_directions,
        seed=cfg.seed, steps=cfg.steps, reconstructor=cfg.reconstructor, shift_weight=cfg.shift_weight,
        final_accuracy=history[-1]["accuracy"] if history else None)
    if not (cfg.importance_latents and score):
        return directions
    if cfg.rank_by == "recognizability":  # what DirectionSet.top(k) sorts by
        directions.scores = recognizability(generator, trainable.direction_matrix, trainable.reconstructor, cfg,
                                            cfg.importance_latents)
        directions.meta["scores"] = "recognizability: R's mean probability of the true direction, held-out pairs"
    else:
        directions.scores = image_change_scores(generator, directions.matrix, num_latents=cfg.importance_latents,
                                                seed=cfg.seed)
        directions.meta["scores"] = "image change per unit shift (latentdirs.importance)"
    return directions


def _check_resume(run: Run, stored: dict, cfg: DiscoveryConfig, state: dict | None, start_given: bool, world: int,
                  dev: torch.device) -> None:
    """Refuse a resume that would silently compute something other than the run it continues (``stored``: its
    config.json)."""
    if state is None:
        init, named = stored.get("init"), stored.get("discovery", {}).get("start", "axes")
        if init is not None and named == "axes" and cfg.start == "axes" and not start_given:
            raise ValueError(f"{run.folder} started at given directions ({init}) and has no checkpoint that keeps "
                             "them: pass the same start= again, or start it afresh (CLI: --out FOLDER --start SET)")
    else:
        if state["step"] > cfg.steps:
            raise ValueError(f"{run.folder}'s checkpoint is at step {state['step']}, past steps={cfg.steps}: a resume "
                             f"can only continue a run; pass steps >= {state['step']}")
        before = stored.get("discovery", {}).get("steps", cfg.steps)
        if cfg.shift_weight_schedule != "constant" and before != cfg.steps:
            raise ValueError(f"{run.folder} anneals lambda ({cfg.shift_weight_schedule}) over its {before} steps; "
                             f"resuming it with steps={cfg.steps} would bend the schedule midway: resume with "
                             f"steps={before}, or start a new run")
    if world > 1:  # ranks that read different checkpoints would run different numbers of steps and hang
        import torch.distributed as dist
        step = torch.tensor([-1 if state is None else state["step"]] * 2, device=dev)
        step[1] *= -1
        dist.all_reduce(step, op=dist.ReduceOp.MAX)
        if step[0] != -step[1]:
            raise ValueError(f"the ranks found {run.folder}'s checkpoint at different steps (from {-int(step[1])} to "
                             f"{int(step[0])}; -1: none): every rank must see the same run folder")


# -- the loop -------------------------------------------------------------------------------
def discover(generator: Generator, config: DiscoveryConfig | None = None, *, out_dir: str | Path | None = None,
             resume: bool = False, progress: bool = True, fixed_matrix: torch.Tensor | None = None,
             **overrides) -> DiscoveryResult:
    """Train directions A and a reconstructor R on a frozen generator.

    ``config`` (default ``DiscoveryConfig()``) with ``overrides``, its fields as keywords:
    ``discover(G, num_directions=10, steps=2_000)`` or ``discover(G, PRESETS["demo"], seed=1)``.
    ``out_dir`` is the run folder (created if needed; None keeps nothing on disk); with
    ``resume=True`` a run folder holding a checkpoint continues where it stopped, and refuses
    a config that differs in anything but the runtime options and a longer ``steps``.
    ``start`` is where A starts: a name (the config field: axes, sefa, ganspace) or the directions
    themselves (a DirectionSet or a d x K tensor, e.g. ``latentdirs.sefa(G, K)``; orthonormal for
    ``ortho``/``cayley``).
    ``fixed_matrix`` trains R alone against frozen directions (used by :func:`latentdirs.rca`).
    """
    start = overrides.pop("start") if not isinstance(overrides.get("start", ""), str) else None  # directions, not a name
    cfg = resolve_config(config, overrides)
    if not isinstance(generator, Generator):
        raise TypeError("discover() needs a latentdirs Generator: use latentdirs.wrap(module, latent_dim=...) "
                        "or latentdirs.load_generator(kind, path)")
    rank, world = distributed()
    cfg, dev = _place(cfg, rank, world)
    generator = generator.to(dev).freeze()
    image_shape = tuple(check_generator(generator).shape[1:])
    run = Run(out_dir, writes=rank == 0)  # every rank reads the run's config and checkpoint; rank 0 writes
    state = None
    if resume:  # which may extend the run (more steps) or change how fast it goes, nothing else
        stored = run.check_config("discovery", dataclasses.asdict(cfg), ignore=DiscoveryConfig.RUNTIME | {"steps"},
                                  generator=generator.describe())
        state = run.resume("directions", read=lambda path: read_checkpoint(path, dev))
        _check_resume(run, stored, cfg, state, start is not None or fixed_matrix is not None, world, dev)
    if state is not None and "direction_matrix.basis" in state["trainable"]:
        start = state["trainable"]["direction_matrix.basis"][:, :cfg.num_directions].cpu()  # the run's own start
    elif start is None and fixed_matrix is None:
        start = starting_directions(generator, cfg)
    trainable, optimizer = _build(generator, cfg, image_shape, dev, start, fixed_matrix)
    matrix = trainable.direction_matrix
    start_step, history, snapshots = 0, [], {}
    if state is not None:
        load_checkpoint(run.path("checkpoint"), state, trainable, optimizer)
        start_step, history, snapshots = state["step"], state["history"], state["snapshots"]
        run.log(f"resumed at step {start_step}")
    else:
        _start_run(run, cfg, generator, image_shape, world, start, dev)

    model = _parallel(trainable, cfg, world, dev)
    snapshot_at = snapshot_steps(cfg) if matrix.trainable else set()
    window: list[dict] = []
    trainable.train()
    bar = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, disable=not progress or rank > 0,
               desc=f"discover {generator.name}", dynamic_ncols=True)
    tick = time.perf_counter()
    for step in bar:
        take_snapshot(snapshots, step, snapshot_at, matrix)
        z, index, shift = sample_pairs(generator, cfg, cfg.batch_size // world, step_rng(cfg.seed, rank, step), dev)
        shift_weight = shift_weight_at(cfg, step)
        window.append(train_step(model, generator, optimizer, cfg, z, index, shift, shift_weight))
        if cfg.shift_weight_schedule != "constant":
            window[-1]["shift_weight"] = shift_weight
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            means = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            record = {"step": done, **(mean_over_ranks(means, dev) if world > 1 else means),
                      "sec_per_step": (now - tick) / len(window)}
            history.append(record)
            run.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
            window, tick = [], now
        if run.writes and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            take_snapshot(snapshots, done, snapshot_at, matrix)  # the checkpoint must hold it for a resume
            run.save_checkpoint(checkpoint_state(trainable, optimizer, done, history, snapshots))
    take_snapshot(snapshots, cfg.steps, snapshot_at, matrix)
    trainable.eval()
    directions = _export(generator, trainable, cfg, history, score=rank == 0)
    if run.writes:
        directions.save(run.folder / "directions")
        save_snapshots(run.folder, snapshots)
        run.log(f"done: {cfg.steps} steps, final accuracy {directions.meta['final_accuracy']}")
    if world > 1 and run.folder is not None:
        # No rank returns before rank 0 has written the folder: a resume right after must read the last checkpoint.
        import torch.distributed as dist
        dist.barrier()
    return DiscoveryResult(directions, matrix, trainable.reconstructor, history, snapshots, run.folder)
