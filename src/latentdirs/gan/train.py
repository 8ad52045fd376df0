"""Train the small 64x64 DCGAN on procedural 3D-Shapes scenes.

One loop, top to bottom (:func:`train_gan`): hinge loss, spectral-norm discriminator, EMA of the
generator, periodic sample grids, atomic resumable checkpoints, metrics as JSONL (a
:class:`latentdirs.runs.Run`). The finished EMA generator is exported as ``generator.safetensors`` +
``config.json``, the format that ``latentdirs.generators.shapes3d.load`` reads. Its command line,
``latentdirs train-gan`` (latentdirs/cli/train_gan.py), has an option per :class:`GANTrainConfig` field:

    latentdirs train-gan --out scratch/gan_run --steps 12000 --batch-size 32 --max-minutes 85

A new run can start from another run's checkpoint (``--warm-start``) with a wider generator
(``--widths``) or an R1 critic in place of the spectral-norm one; see :mod:`latentdirs.gan.widen`.
"""
from __future__ import annotations

import copy
import json
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..configs import check_declared
from ..render import grid, save_image, to_pil
from ..runs import Run, atomic_path, atomic_write_text, cpu_model, read_json_object, read_jsonl, safe_torch_load
from .augment import augment, parse_policy
from .networks import (DCGANDiscriminator, DCGANGenerator, NetworkConfig, UpsampleGenerator, recalibrate_batchnorm,
                       update_ema)
from .stylegan import MappedDCGANGenerator, StyleGenerator, StyleNetworkConfig, mixed_styles
from .widen import fold_spectral_norm, widen_adam_state, widen_state_dict

ARCHITECTURES = ("dcgan", "dcgan-up", "style", "dcgan-w")
STYLED = ("style", "dcgan-w")  # architectures with a mapping network (W and W+ spaces)
# What a resumed checkpoint must share with the command: the networks' shapes and the critic's kind.
ARCHITECTURE_FIELDS = ("architecture", "latent_dim", "base_channels", "max_channels", "widths", "mapping_layers",
                       "d_base_channels", "r1_gamma")

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "commands.jsonl"


@dataclass
class GANTrainConfig:
    """How ``latentdirs train-gan`` trains; its command line has one option per field."""
    architecture: str = "dcgan"
    """Generator: 'dcgan' (transposed convs), 'dcgan-up' (upsample + conv), 'style' (mapping network,
    modulated convs; gives W and W+) or 'dcgan-w' (dcgan-up with a mapping network and per-block styles)."""
    steps: int = 12000
    """Generator updates (one discriminator update each)."""
    batch_size: int = 32
    """Images per batch, real and fake."""
    latent_dim: int = 64
    """Size of the latent z."""
    base_channels: int = 16
    """Network width unit (see NetworkConfig)."""
    max_channels: int = 128
    """'style' only: channel cap at low resolutions."""
    widths: dict[int, int] = field(default_factory=dict)
    """'style' / 'dcgan-w': channels at some resolutions instead of the base_channels formula, written
    RES=CHANNELS,... (32=64,64=32 is {32: 64, 64: 32}); empty: the formula."""
    mapping_layers: int = 4
    """'style' only: depth of the z -> w MLP."""
    style_mixing: float = 0.9
    """'style' only: probability that a batch mixes two latents' styles at a random layer."""
    d_base_channels: int = 0
    """Width of the critic's first layer (0 = base_channels)."""
    r1_gamma: float = 0.0
    """Weight of the R1 gradient penalty on real images; > 0 replaces the critic's spectral norm."""
    r1_every: int = 16
    """Apply R1 every N steps (lazy regularization), scaled by N."""
    augment: str = ""
    """Differentiable augmentation of the critic's inputs, real and fake: 'translation', 'cutout' or both
    ('translation,cutout'); no colour transforms, the hues are factors (latentdirs.gan.augment)."""
    lr_generator: float = 2e-4
    """Adam learning rate of the generator."""
    lr_discriminator: float = 2e-4
    """Adam learning rate of the critic."""
    beta1: float = 0.5
    """Adam beta1 of both networks."""
    beta2: float = 0.999
    """Adam beta2 of both networks."""
    ema_decay: float = 0.999
    """Decay of the generator's exponential moving average; the EMA is what gets shipped."""
    num_train_images: int = 20000
    """Scenes pre-rendered once into memory (uint8, ~12 KB each)."""
    with_fade: bool = False
    """Also vary the background_fade factor in the training data."""
    seed: int = 0
    """Seed of the networks' initialization, the training scenes and the batches."""
    threads: int = 1
    """torch.set_num_threads; keep 1 on a shared machine."""
    channels_last: bool = False
    """Keep activations NHWC: about 1.3x faster steps on CPU for the 'style' networks (oneDNN convolutions)."""
    amp: bool = False
    """bf16 autocast for the networks' forward passes (weights, optimizer and losses stay fp32). Faster
    where the CPU has bf16 matrix instructions (AVX512-BF16, AMX); can be switched on or off on resume."""
    sample_every: int = 500
    """Write an EMA sample grid (samples/ema_STEP.png) every N steps."""
    checkpoint_every: int = 250
    """Write the resumable checkpoint every N steps."""
    log_every: int = 25
    """Append the losses to metrics.jsonl every N steps."""
    bn_calibration_batches: int = 8
    """Batches of 64 latents used to recompute the EMA generator's BatchNorm statistics."""
    max_minutes: float = 0.0
    """Stop cleanly (checkpoint + export) after this much wall time; 0 = no limit."""
    max_cpu_minutes: float = 0.0
    """Stop cleanly after this much CPU time of this process (summed over resumes); 0 = no limit.
    The equal budget of candidate runs that share a machine."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"architecture": ARCHITECTURES}
    POSITIVE: ClassVar[tuple[str, ...]] = ("steps", "batch_size", "latent_dim", "base_channels", "max_channels",
                                           "mapping_layers", "r1_every", "num_train_images", "threads", "sample_every",
                                           "checkpoint_every", "log_every", "bn_calibration_batches")

    def __post_init__(self) -> None:
        check_declared(self)
        bad = ([n for n in ("lr_generator", "lr_discriminator") if not getattr(self, n) > 0]
               + [n for n in ("beta1", "beta2") if not getattr(self, n) < 1]
               + [n for n in ("ema_decay", "style_mixing") if not getattr(self, n) <= 1])
        if bad:
            raise ValueError(f"{', '.join(bad)} out of range: learning rates must be > 0, Adam's betas < 1, "
                             "ema_decay and style_mixing at most 1")
        self.widths = {int(k): int(v) for k, v in (self.widths or {}).items()}  # JSON keys are strings
        if self.widths and self.architecture not in STYLED:
            raise ValueError(f"widths applies to the 'style' and 'dcgan-w' generators, not {self.architecture!r}")
        StyleNetworkConfig(widths=self.widths)  # widths at no block's resolution are refused now, not at build
        parse_policy(self.augment)

    def network(self) -> NetworkConfig:
        return NetworkConfig(latent_dim=self.latent_dim, base_channels=self.base_channels)

    def build_generator(self) -> nn.Module:
        if self.architecture in STYLED:
            network = StyleGenerator if self.architecture == "style" else MappedDCGANGenerator
            return network(StyleNetworkConfig(latent_dim=self.latent_dim, mapping_layers=self.mapping_layers,
                                              base_channels=self.base_channels, max_channels=self.max_channels,
                                              widths=self.widths))
        return (DCGANGenerator if self.architecture == "dcgan" else UpsampleGenerator)(self.network())

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.network(), width=self.d_base_channels or None, spectral=self.r1_gamma <= 0)


def save_image_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Images in [-1, 1] NCHW -> one PNG grid, rows of ``nrow``."""
    tiles = to_pil(images)
    save_image(grid([tiles[i:i + nrow] for i in range(0, len(tiles), nrow)], pad=0), path)


def export_generator(generator: nn.Module, out_dir: Path, metadata: dict) -> Path:
    """Write ``generator.safetensors`` + ``config.json`` (architecture and provenance)."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().contiguous().clone() for k, v in generator.state_dict().items()}
    architecture = metadata.pop("architecture", "dcgan")
    with atomic_path(out_dir / "generator.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": f"latentdirs-{architecture}"})
        tmp.chmod(0o644)  # safetensors writes 0600; the file ships inside a package
    config = {"architecture": architecture, **generator.config.to_dict(), **metadata}
    atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    return out_dir / "generator.safetensors"


def export_from_checkpoint(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Export the EMA generator of a (possibly unfinished) run's checkpoint; returns the folder."""
    run_dir = Path(run_dir)
    state = safe_torch_load(run_dir / CHECKPOINT_NAME)
    config = _stored_config(state)
    generator = config.build_generator()
    generator.load_state_dict(state["generator_ema"])
    _calibrate(generator, config)
    saved = run_dir / "train_config.json"
    command = read_json_object(saved).get("command") if saved.exists() else None
    metadata = _metadata(config, run_dir, state["step"], command, state["elapsed_seconds"],
                         state.get("cpu_seconds", 0.0), exported_from_checkpoint=True)
    return export_generator(generator, Path(out_dir) if out_dir else run_dir / "final", metadata).parent


def _stored_config(state: dict) -> GANTrainConfig:
    return GANTrainConfig(**{**asdict(GANTrainConfig()), **state["config"]})  # older checkpoints lack newer fields


def _metadata(config: GANTrainConfig, run_dir: Path, step: int, command: str | None, wall_seconds: float,
              cpu_seconds: float, **extra) -> dict:
    """An exported generator's provenance: how, on what and how long it was trained (and retrained)."""
    return {"architecture": config.architecture,
            "training": {"steps": step, "batch_size": config.batch_size, "command": command,
                         "history": read_jsonl(run_dir / HISTORY_NAME), "wall_seconds": round(wall_seconds, 1),
                         "cpu_seconds": round(cpu_seconds, 1), "threads": config.threads, "seed": config.seed,
                         "dataset": "latentdirs.data.shapes3d", "num_train_images": config.num_train_images,
                         "with_fade": config.with_fade, "ema_decay": config.ema_decay, "torch": torch.__version__,
                         **extra}}


def _calibrate(generator: nn.Module, config: GANTrainConfig) -> None:
    """BatchNorm generators: recompute the statistics for the EMA weights (which never saw a batch)."""
    if config.architecture != "style":  # dcgan-w's styled BatchNorms are recalibrated the same way
        recalibrate_batchnorm(generator, num_batches=config.bn_calibration_batches, batch_size=64, seed=config.seed)
    generator.eval()


def _r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of the critic's gradient at real images (Mescheder et al. 2018)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    return grad.square().sum((1, 2, 3)).mean()


class _StopRequest:
    """SIGTERM or a first Ctrl-C asks the loop to finish its step, checkpoint, export and stop; a second
    Ctrl-C interrupts at once (the last periodic checkpoint is then where it resumes)."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _render_training_set(config: GANTrainConfig) -> torch.Tensor:
    from ..data.shapes3d import make_dataset
    images, _, _ = make_dataset(config.num_train_images, seed=config.seed + 12345, with_fade=config.with_fade)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW, converted per batch


# -- the steps of train_gan, in the order it takes them --------------------------------
@dataclass
class Networks:
    """What a checkpoint holds besides the step: the networks and their optimizers."""
    generator: nn.Module
    generator_ema: nn.Module
    """The exponential moving average of the generator: what gets shipped."""
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def build_networks(config: GANTrainConfig) -> Networks:
    generator, discriminator = config.build_generator(), config.build_discriminator()
    if config.channels_last:
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (config.beta1, config.beta2)
    return Networks(generator, generator_ema, discriminator,
                    torch.optim.Adam(generator.parameters(), config.lr_generator, betas=betas),
                    torch.optim.Adam(discriminator.parameters(), config.lr_discriminator, betas=betas))


def _start(run: Run, nets: Networks, config: GANTrainConfig, resume: bool,
           warm_start: str | Path | None) -> tuple[dict | None, bool]:
    """Load the run's own checkpoint (else ``warm_start``'s) into ``nets``: (it or None for step 0, is_warm)."""
    state, warm = run.resume("samples") if resume else None, False
    if state is not None:
        stored = _stored_config(state)
        if any(getattr(stored, name) != getattr(config, name) for name in ARCHITECTURE_FIELDS):
            raise ValueError(f"{run.path('checkpoint')} was trained with a different architecture "
                             f"({state['config']}); use another --out folder or --no-resume.")
        for name in ("generator", "discriminator", "generator_ema", "opt_g", "opt_d"):
            getattr(nets, name).load_state_dict(state[name])
        print(f"resumed from {run.path('checkpoint')} at step {state['step']}", file=sys.stderr)
    elif warm_start is not None:
        state, warm = safe_torch_load(warm_start), True
        _warm_start(state, _stored_config(state), config, nets)
        history = Path(warm_start).parent / HISTORY_NAME  # the weights' lineage goes on in this run's history
        if history.exists() and not run.path(HISTORY_NAME).exists():
            atomic_write_text(run.path(HISTORY_NAME), history.read_text())
        print(f"warm-started from {warm_start} at step {state['step']}", file=sys.stderr)
    if state is not None:
        torch.set_rng_state(state["torch_rng"])
    return state, warm


def _warm_start(state: dict, stored: GANTrainConfig, config: GANTrainConfig, nets: Networks) -> None:
    """Load another run's checkpoint into this run's (wider, or R1-regularized) networks, same function."""
    for name in ("architecture", "latent_dim", "mapping_layers", "d_base_channels"):
        if getattr(stored, name) != getattr(config, name):
            raise ValueError(f"--warm-start: the checkpoint has {name}={getattr(stored, name)!r}, this run "
                             f"{getattr(config, name)!r}; only the generator's widths and the critic's "
                             "regularization may change")
    fresh = {k: v.detach().clone() for k, v in nets.generator.state_dict().items()}  # supplies the new channels
    nets.generator.load_state_dict(widen_state_dict(state["generator"], fresh))
    # The EMA is widened too, with the same new entries: it then starts as the exact shipped function
    # (the figures at step 0 equal the source run's) and keeps its long average of the old channels.
    nets.generator_ema.load_state_dict(widen_state_dict(state["generator_ema"], fresh))
    nets.opt_g.load_state_dict(widen_adam_state(state["opt_g"], list(nets.generator.parameters())))
    critic = state["discriminator"]
    if stored.r1_gamma <= 0 < config.r1_gamma:
        # Spectral norm -> R1: the same critic function in plain weights. Its Adam moments were measured
        # for the un-normalised weights, so the critic's optimizer starts afresh.
        nets.discriminator.load_state_dict(fold_spectral_norm(critic))
    elif stored.r1_gamma > 0 and config.r1_gamma <= 0:
        raise ValueError("--warm-start: cannot put spectral norm back on a critic trained with R1")
    else:
        nets.discriminator.load_state_dict(critic)
        nets.opt_d.load_state_dict(state["opt_d"])


def _record_start(run: Run, config: GANTrainConfig, command: str | None, state: dict | None,
                  warm_start: str | Path | None) -> None:
    """train_config.json, and a line in commands.jsonl per (re)start: the weights say how they were made."""
    settings = json.dumps({**asdict(config), "command": command}, indent=2)
    atomic_write_text(run.path("train_config.json"), settings + "\n")
    entry = {"command": command, "from_step": state["step"] if state else 0,
             "cpu_seconds_before": round(state.get("cpu_seconds", 0.0), 1) if state else 0.0,
             "machine": cpu_model(), "threads": config.threads}
    if warm_start is not None:
        entry["warm_start"] = str(warm_start)
    run.append(entry, HISTORY_NAME)


class _Clock:
    """Wall and CPU seconds of the run summed over its (re)starts: what the budgets and records count."""

    def __init__(self, state: dict | None) -> None:
        self.wall_before = state["elapsed_seconds"] if state else 0.0
        self.cpu_before = state.get("cpu_seconds", 0.0) if state else 0.0
        self.wall_start, self.cpu_start = time.time(), time.process_time()
        self.last_time, self.last_step = self.wall_start, state["step"] if state else 0

    def wall(self) -> float:
        return self.wall_before + time.time() - self.wall_start

    def cpu(self) -> float:
        return self.cpu_before + time.process_time() - self.cpu_start

    def seconds_per_step(self, step: int) -> float:
        """Wall seconds per step since the last call (the first: since the start)."""
        now = time.time()
        seconds = (now - self.last_time) / max(1, step - self.last_step)
        self.last_time, self.last_step = now, step
        return seconds


def _real_batch(real_images: torch.Tensor, batch_rng: np.random.Generator, config: GANTrainConfig) -> torch.Tensor:
    index = torch.from_numpy(batch_rng.integers(0, len(real_images), config.batch_size))
    real = real_images[index].float().div_(127.5).sub_(1.0)
    return real.contiguous(memory_format=torch.channels_last) if config.channels_last else real


def _fake_batch(nets: Networks, config: GANTrainConfig) -> torch.Tensor:
    z = torch.randn(config.batch_size, config.latent_dim)
    if config.architecture not in STYLED:
        return nets.generator(z)
    ws = mixed_styles(nets.generator, z, config.style_mixing)
    with torch.no_grad():  # the centre of W, tracked like StyleGAN's w_avg
        nets.generator_ema.w_avg.lerp_(ws[:, 0].float().mean(0), 0.005)
    return nets.generator.synthesis(ws)


def _critic_input(images: torch.Tensor, config: GANTrainConfig) -> torch.Tensor:
    policy = parse_policy(config.augment)
    return augment(images, policy) if policy else images


def _train_step(nets: Networks, config: GANTrainConfig, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
    """One critic update and one generator update (hinge loss); the losses and the critic's scores."""
    hinge, amp = nn.functional.relu, dict(device_type="cpu", dtype=torch.bfloat16, enabled=config.amp)
    # Discriminator: hinge loss on real vs (detached) fake.
    with torch.no_grad(), torch.autocast(**amp):
        fake = _fake_batch(nets, config)
    real = _critic_input(real, config)  # R1 below then penalizes the gradient at the critic's actual input
    with torch.autocast(**amp):
        d_real, d_fake = nets.discriminator(real).float(), nets.discriminator(_critic_input(fake, config)).float()
    loss_d = hinge(1 - d_real).mean() + hinge(1 + d_fake).mean()
    if config.r1_gamma > 0 and step % config.r1_every == 0:
        loss_d = loss_d + 0.5 * config.r1_gamma * config.r1_every * _r1_penalty(nets.discriminator, real)
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()

    # Generator: raise the critic's score of fresh fakes.
    with torch.autocast(**amp):
        loss_g = -nets.discriminator(_critic_input(_fake_batch(nets, config), config)).float().mean()
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    # Early on the EMA would drag in the random init; ramp its decay up with the step count.
    update_ema(nets.generator_ema, nets.generator, min(config.ema_decay, (1 + step) / (10 + step)))
    return {"loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake}


def _metrics_record(losses: dict[str, torch.Tensor], step: int, clock: _Clock) -> dict:
    return {"step": step, **{name: round(value.mean().item(), 4) for name, value in losses.items()},
            "sec_per_step": round(clock.seconds_per_step(step), 4), "elapsed_seconds": round(clock.wall(), 1),
            "cpu_seconds": round(clock.cpu(), 3)}  # ms precision: benchmarks difference two over a few steps


def _calibrated_ema(nets: Networks, config: GANTrainConfig) -> nn.Module:
    ema = copy.deepcopy(nets.generator_ema)
    _calibrate(ema, config)
    return ema


def _out_of_budget(config: GANTrainConfig, clock: _Clock) -> bool:
    return ((config.max_minutes > 0 and clock.wall() > 60 * config.max_minutes)
            or (config.max_cpu_minutes > 0 and clock.cpu() > 60 * config.max_cpu_minutes))


def _checkpoint(nets: Networks, config: GANTrainConfig, step: int, clock: _Clock) -> dict:
    return {"generator": nets.generator.state_dict(), "discriminator": nets.discriminator.state_dict(),
            "generator_ema": nets.generator_ema.state_dict(), "opt_g": nets.opt_g.state_dict(),
            "opt_d": nets.opt_d.state_dict(), "torch_rng": torch.get_rng_state(), "step": step,
            "elapsed_seconds": clock.wall(), "cpu_seconds": clock.cpu(), "config": asdict(config)}


def train_gan(config: GANTrainConfig | None = None, out_dir: str | Path = "runs/gan", resume: bool = True,
              progress: bool = True, command: str | None = None, warm_start: str | Path | None = None,
              **overrides) -> Path:
    """Train (or resume) a GAN in ``out_dir``; returns the exported generator folder ``out_dir/final``.

    ``warm_start``: a checkpoint of another run to start from when ``out_dir`` has none yet. Its step,
    CPU time and command history carry over; the generator may be wider (``widths``) and the critic
    may trade spectral norm for R1, both function-preserving (:mod:`latentdirs.gan.widen`).
    SIGTERM or a first Ctrl-C, like a spent ``max_minutes`` / ``max_cpu_minutes``, stops after the
    step with a checkpoint and the export; the same call resumes.
    """
    config = replace(config or GANTrainConfig(), **overrides)
    run = Run(out_dir)
    samples = run.path("samples")
    samples.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    nets = build_networks(config)
    state, warm_started = _start(run, nets, config, resume, warm_start)
    _record_start(run, config, command, state, warm_start if warm_started else None)
    step = state["step"] if state else 0

    real_images = _render_training_set(config)
    batch_rng = np.random.default_rng(config.seed + step)  # a resumed run does not replay the same batches
    fixed_latents = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(config.seed))
    save_image_grid(real_images[:64].float() / 127.5 - 1, samples / "real.png")

    from tqdm.auto import tqdm
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train-gan", dynamic_ncols=True)
    clock, stop = _Clock(state), _StopRequest()
    try:
        while step < config.steps:
            losses = _train_step(nets, config, _real_batch(real_images, batch_rng, config), step)
            step += 1
            bar.update(1)
            last = step == config.steps
            if step % config.log_every == 0 or last:
                record = _metrics_record(losses, step, clock)
                run.append(record)
                bar.set_postfix(loss_d=record["loss_d"], loss_g=record["loss_g"])
            if step % config.sample_every == 0 or last:
                with torch.no_grad():
                    save_image_grid(_calibrated_ema(nets, config)(fixed_latents), samples / f"ema_{step:06d}.png")
            out_of_time = _out_of_budget(config, clock)
            if step % config.checkpoint_every == 0 or last or out_of_time or stop.requested:
                run.save_checkpoint(_checkpoint(nets, config, step, clock))
            if out_of_time or stop.requested:
                reason = "time budget reached" if out_of_time else f"{stop.requested} received"
                print(f"stopping at step {step}: {reason}; checkpoint saved, the same command resumes",
                      file=sys.stderr)
                break
    finally:
        stop.restore()
        bar.close()

    final = _calibrated_ema(nets, config)
    with torch.no_grad():
        save_image_grid(final(fixed_latents), samples / "final_ema.png")
    export_generator(final, run.path("final"), _metadata(config, run.folder, step, command, clock.wall(), clock.cpu(),
                                                         machine=cpu_model()))
    return run.path("final")
