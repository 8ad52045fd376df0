"""Train the small 64x64 DCGAN on procedural 3D-Shapes scenes.

One loop, top to bottom: hinge loss, spectral-norm discriminator, EMA of the generator,
periodic sample grids, atomic resumable checkpoints, metrics as JSONL. The finished EMA
generator is exported as ``generator.safetensors`` + ``config.json``, the format that
``latentdirs.generators.shapes3d.load`` reads.

    latentdirs train-gan --out scratch/gan_run --steps 12000 --batch-size 32 --max-minutes 85

A new run can start from another run's checkpoint (``--warm-start``) with a wider generator
(``--widths``) or an R1 critic in place of the spectral-norm one; see :mod:`latentdirs.gan.widen`.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..render import to_uint8
from ..runs import atomic_torch_save, atomic_write_text, cpu_model, read_jsonl
from .augment import augment, parse_policy
from .networks import (DCGANDiscriminator, DCGANGenerator, NetworkConfig, UpsampleGenerator, recalibrate_batchnorm,
                       update_ema)
from .stylegan import MappedDCGANGenerator, StyleGenerator, StyleNetworkConfig, mixed_styles
from .widen import fold_spectral_norm, widen_adam_state, widen_state_dict

ARCHITECTURES = ("dcgan", "dcgan-up", "style", "dcgan-w")
STYLED = ("style", "dcgan-w")  # architectures with a mapping network (W and W+ spaces)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "commands.jsonl"


@dataclass
class TrainConfig:
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
    """'style' / 'dcgan-w': channels at some resolutions instead of the base_channels formula, e.g. {32: 64, 64: 32}."""
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
    lr_discriminator: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    """Decay of the generator's exponential moving average; the EMA is what gets shipped."""
    num_train_images: int = 20000
    """Scenes pre-rendered once into memory (uint8, ~12 KB each)."""
    with_fade: bool = False
    """Also vary the background_fade factor in the training data."""
    seed: int = 0
    threads: int = 1
    """torch.set_num_threads; keep 1 on a shared machine."""
    channels_last: bool = False
    """Keep activations NHWC: about 1.3x faster steps on CPU for the 'style' networks (oneDNN convolutions)."""
    amp: bool = False
    """bf16 autocast for the networks' forward passes (weights, optimizer and losses stay fp32). Faster
    where the CPU has bf16 matrix instructions (AVX512-BF16, AMX); can be switched on or off on resume."""
    sample_every: int = 500
    checkpoint_every: int = 250
    log_every: int = 25
    bn_calibration_batches: int = 8
    """Batches of 64 latents used to recompute the EMA generator's BatchNorm statistics."""
    max_minutes: float = 0.0
    """Stop cleanly (checkpoint + export) after this much wall time; 0 = no limit."""
    max_cpu_minutes: float = 0.0
    """Stop cleanly after this much CPU time of this process (summed over resumes); 0 = no limit.
    The equal budget of candidate runs that share a machine."""

    def __post_init__(self) -> None:
        self.widths = {int(k): int(v) for k, v in (self.widths or {}).items()}  # JSON keys are strings
        if self.widths and self.architecture not in STYLED:
            raise ValueError(f"widths applies to the 'style' and 'dcgan-w' generators, not {self.architecture!r}")
        parse_policy(self.augment)

    def network(self) -> NetworkConfig:
        return NetworkConfig(latent_dim=self.latent_dim, base_channels=self.base_channels)

    def build_generator(self) -> nn.Module:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.architecture in STYLED:
            network = StyleGenerator if self.architecture == "style" else MappedDCGANGenerator
            return network(StyleNetworkConfig(latent_dim=self.latent_dim, mapping_layers=self.mapping_layers,
                                              base_channels=self.base_channels, max_channels=self.max_channels,
                                              widths=self.widths))
        return (DCGANGenerator if self.architecture == "dcgan" else UpsampleGenerator)(self.network())

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.network(), width=self.d_base_channels or None, spectral=self.r1_gamma <= 0)


def save_image_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Images in [-1, 1] NCHW -> one PNG grid."""
    from PIL import Image
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    pixels = to_uint8(images)
    grid = np.zeros((rows * h, nrow * w, c), dtype=np.uint8)
    for i, img in enumerate(pixels):
        r, col = divmod(i, nrow)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(grid.squeeze(-1) if c == 1 else grid).save(tmp)
    os.replace(tmp, path)


def export_generator(generator: nn.Module, out_dir: Path, metadata: dict) -> Path:
    """Write ``generator.safetensors`` + ``config.json`` (architecture and provenance)."""
    from safetensors.torch import save_file
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in generator.state_dict().items()}
    tmp = out_dir / "generator.safetensors.tmp"
    architecture = metadata.pop("architecture", "dcgan")
    save_file(tensors, str(tmp), metadata={"format": f"latentdirs-{architecture}"})
    os.chmod(tmp, 0o644)  # safetensors writes 0600; the file ships inside a package
    os.replace(tmp, out_dir / "generator.safetensors")
    config = {"architecture": architecture, **generator.config.to_dict(), **metadata}
    atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    return out_dir / "generator.safetensors"


def export_from_checkpoint(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Export the EMA generator of a (possibly unfinished) run's checkpoint; returns the folder."""
    run_dir = Path(run_dir)
    state = torch.load(run_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    config = TrainConfig(**{**asdict(TrainConfig()), **state["config"]})  # older checkpoints lack newer fields
    generator = config.build_generator()
    generator.load_state_dict(state["generator_ema"])
    _calibrate(generator, config)
    saved = run_dir / "train_config.json"
    command = json.loads(saved.read_text()).get("command") if saved.exists() else None
    metadata = {"training": {"steps": state["step"], "batch_size": config.batch_size, "command": command,
                             "history": _history(run_dir), "cpu_seconds": round(state.get("cpu_seconds", 0.0), 1),
                             "wall_seconds": round(state["elapsed_seconds"], 1), "threads": config.threads,
                             "seed": config.seed, "dataset": "latentdirs.data.shapes3d",
                             "num_train_images": config.num_train_images, "with_fade": config.with_fade,
                             "ema_decay": config.ema_decay, "torch": torch.__version__,
                             "exported_from_checkpoint": True}, "architecture": config.architecture}
    return export_generator(generator, Path(out_dir) if out_dir else run_dir / "final", metadata).parent


def _calibrate(generator: nn.Module, config: TrainConfig) -> None:
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
    """SIGTERM or a first Ctrl-C asks the loop to finish its step, checkpoint, export and stop.

    A second Ctrl-C interrupts at once (the last periodic checkpoint is then where it resumes).
    """

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


def _drop_metrics_after(path: Path, step: int) -> None:
    """A resumed run repeats the steps after its checkpoint: drop their old rows so none appears twice."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def _history(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / HISTORY_NAME)


def _render_training_set(config: TrainConfig) -> torch.Tensor:
    from ..data.shapes3d import make_dataset
    images, _, _ = make_dataset(config.num_train_images, seed=config.seed + 12345, with_fade=config.with_fade)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW, converted per batch


def _warm_start(state: dict, stored: TrainConfig, config: TrainConfig, generator: nn.Module,
                generator_ema: nn.Module, discriminator: nn.Module, opt_g, opt_d) -> None:
    """Load another run's checkpoint into this run's (wider, or R1-regularized) networks, same function."""
    for name in ("architecture", "latent_dim", "mapping_layers", "d_base_channels"):
        if getattr(stored, name) != getattr(config, name):
            raise ValueError(f"--warm-start: the checkpoint has {name}={getattr(stored, name)!r}, this run "
                             f"{getattr(config, name)!r}; only the generator's widths and the critic's "
                             "regularization may change")
    fresh = {k: v.detach().clone() for k, v in generator.state_dict().items()}  # supplies the new channels
    generator.load_state_dict(widen_state_dict(state["generator"], fresh))
    # The EMA is widened too, with the same new entries: it then starts as the exact shipped function
    # (the figures at step 0 equal the source run's) and keeps its long average of the old channels.
    generator_ema.load_state_dict(widen_state_dict(state["generator_ema"], fresh))
    opt_g.load_state_dict(widen_adam_state(state["opt_g"], list(generator.parameters())))
    critic = state["discriminator"]
    if stored.r1_gamma <= 0 < config.r1_gamma:
        # Spectral norm -> R1: the same critic function in plain weights. Its Adam moments were measured
        # for the un-normalised weights, so the critic's optimizer starts afresh.
        discriminator.load_state_dict(fold_spectral_norm(critic))
    elif stored.r1_gamma > 0 and config.r1_gamma <= 0:
        raise ValueError("--warm-start: cannot put spectral norm back on a critic trained with R1")
    else:
        discriminator.load_state_dict(critic)
        opt_d.load_state_dict(state["opt_d"])


def train_gan(config: TrainConfig | None = None, out_dir: str | Path = "runs/gan", resume: bool = True,
              progress: bool = True, command: str | None = None, warm_start: str | Path | None = None,
              **overrides) -> Path:
    """Train (or resume) a GAN in ``out_dir``; returns the exported generator folder ``out_dir/final``.

    ``warm_start``: a checkpoint of another run to start from when ``out_dir`` has none yet. Its step,
    CPU time and command history carry over; the generator may be wider (``widths``) and the critic
    may trade spectral norm for R1, both function-preserving (:mod:`latentdirs.gan.widen`).
    """
    config = config or TrainConfig()
    if overrides:
        config = TrainConfig(**{**asdict(config), **overrides})
    out_dir = Path(out_dir)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    generator, discriminator = config.build_generator(), config.build_discriminator()
    if config.channels_last:
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    generator_ema = copy.deepcopy(generator).eval()
    for p in generator_ema.parameters():
        p.requires_grad_(False)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), config.lr_generator, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), config.lr_discriminator, betas=betas)
    step, elapsed_before, cpu_before = 0, 0.0, 0.0

    checkpoint_path = out_dir / CHECKPOINT_NAME
    resuming = resume and checkpoint_path.exists()
    source = checkpoint_path if resuming else Path(warm_start) if warm_start else None
    if source is not None:
        state = torch.load(source, map_location="cpu", weights_only=True)
        stored = TrainConfig(**{**asdict(TrainConfig(architecture="dcgan")), **state["config"]})
        if resuming:
            architecture_fields = ("architecture", "latent_dim", "base_channels", "max_channels", "widths",
                                   "mapping_layers", "d_base_channels", "r1_gamma")
            if any(getattr(stored, f) != getattr(config, f) for f in architecture_fields):
                raise ValueError(f"{checkpoint_path} was trained with a different architecture "
                                 f"({state['config']}); use another --out folder or --no-resume.")
            generator.load_state_dict(state["generator"])
            discriminator.load_state_dict(state["discriminator"])
            generator_ema.load_state_dict(state["generator_ema"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            _drop_metrics_after(out_dir / "metrics.jsonl", state["step"])
        else:
            _warm_start(state, stored, config, generator, generator_ema, discriminator, opt_g, opt_d)
            history = source.parent / HISTORY_NAME  # the weights' lineage goes on in this run's history
            if history.exists() and not (out_dir / HISTORY_NAME).exists():
                atomic_write_text(out_dir / HISTORY_NAME, history.read_text())
        torch.set_rng_state(state["torch_rng"])
        step, elapsed_before = state["step"], state["elapsed_seconds"]
        cpu_before = state.get("cpu_seconds", 0.0)
        print(f"{'resumed' if resuming else 'warm-started'} from {source} at step {step}", file=sys.stderr)
    atomic_write_text(out_dir / "train_config.json",
                       json.dumps({**asdict(config), "command": command}, indent=2) + "\n")
    with open(out_dir / HISTORY_NAME, "a") as history:  # every (re)start, so the weights can say how they were made
        entry = {"command": command, "from_step": step, "cpu_seconds_before": round(cpu_before, 1),
                 "machine": cpu_model(), "threads": config.threads}
        if source is not None and not resuming:
            entry["warm_start"] = str(source)
        history.write(json.dumps(entry) + "\n")

    real_images = _render_training_set(config)
    batch_rng = np.random.default_rng(config.seed + step)  # a resumed run does not replay the same batches
    fixed_latents = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(config.seed))
    save_image_grid(real_images[:64].float() / 127.5 - 1, out_dir / "samples" / "real.png")

    def save_checkpoint(elapsed: float) -> None:
        atomic_torch_save({
            "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
            "generator_ema": generator_ema.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "torch_rng": torch.get_rng_state(), "step": step, "elapsed_seconds": elapsed,
            "cpu_seconds": cpu_before + time.process_time() - cpu_start, "config": asdict(config)}, checkpoint_path)

    def calibrated_ema() -> nn.Module:
        ema = copy.deepcopy(generator_ema)
        _calibrate(ema, config)
        return ema

    def fake_batch() -> torch.Tensor:
        z = torch.randn(config.batch_size, config.latent_dim)
        if config.architecture not in STYLED:
            return generator(z)
        ws = mixed_styles(generator, z, config.style_mixing)
        with torch.no_grad():  # the centre of W, tracked like StyleGAN's w_avg
            generator_ema.w_avg.lerp_(ws[:, 0].float().mean(0), 0.005)
        return generator.synthesis(ws)

    from tqdm.auto import tqdm
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train-gan", dynamic_ncols=True)
    start, cpu_start = time.time(), time.process_time()
    last_log_time, last_log_step = start, step
    metrics_file = open(out_dir / "metrics.jsonl", "a")
    hinge = nn.functional.relu

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.amp)

    policy = parse_policy(config.augment)

    def critic_input(images: torch.Tensor) -> torch.Tensor:
        return augment(images, policy) if policy else images
    stop = _StopRequest()
    try:
        while step < config.steps:
            index = torch.from_numpy(batch_rng.integers(0, len(real_images), config.batch_size))
            real = real_images[index].float().div_(127.5).sub_(1.0)
            if config.channels_last:
                real = real.contiguous(memory_format=torch.channels_last)

            # Discriminator: hinge loss on real vs (detached) fake.
            with torch.no_grad(), autocast():
                fake = fake_batch()
            real = critic_input(real)  # R1 below then penalizes the gradient at the critic's actual input
            with autocast():
                d_real, d_fake = discriminator(real).float(), discriminator(critic_input(fake)).float()
            loss_d = hinge(1 - d_real).mean() + hinge(1 + d_fake).mean()
            if config.r1_gamma > 0 and step % config.r1_every == 0:
                loss_d = loss_d + 0.5 * config.r1_gamma * config.r1_every * _r1_penalty(discriminator, real)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # Generator: raise the critic's score of fresh fakes.
            with autocast():
                loss_g = -discriminator(critic_input(fake_batch())).float().mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            # Early on the EMA would drag in the random init; ramp its decay up with the step count.
            update_ema(generator_ema, generator, min(config.ema_decay, (1 + step) / (10 + step)))
            step += 1
            bar.update(1)

            elapsed = elapsed_before + time.time() - start
            if step % config.log_every == 0 or step == config.steps:
                now = time.time()
                record = {"step": step, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4),
                          "d_real": round(d_real.mean().item(), 4), "d_fake": round(d_fake.mean().item(), 4),
                          "sec_per_step": round((now - last_log_time) / max(1, step - last_log_step), 4),
                          "elapsed_seconds": round(elapsed, 1),
                          # ms precision: benchmarks difference two of these over a few steps
                          "cpu_seconds": round(cpu_before + time.process_time() - cpu_start, 3)}
                last_log_time, last_log_step = now, step
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                bar.set_postfix(loss_d=record["loss_d"], loss_g=record["loss_g"])
            if step % config.sample_every == 0 or step == config.steps:
                with torch.no_grad():
                    save_image_grid(calibrated_ema()(fixed_latents), out_dir / "samples" / f"ema_{step:06d}.png")
            cpu_used = cpu_before + time.process_time() - cpu_start
            out_of_time = ((config.max_minutes > 0 and elapsed > 60 * config.max_minutes)
                           or (config.max_cpu_minutes > 0 and cpu_used > 60 * config.max_cpu_minutes))
            if step % config.checkpoint_every == 0 or step == config.steps or out_of_time or stop.requested:
                save_checkpoint(elapsed)
            if out_of_time or stop.requested:
                reason = "time budget reached" if out_of_time else f"{stop.requested} received"
                print(f"stopping at step {step}: {reason}; checkpoint saved, the same command resumes",
                      file=sys.stderr)
                break
    finally:
        stop.restore()
        bar.close()
        metrics_file.close()

    final = calibrated_ema()
    with torch.no_grad():
        save_image_grid(final(fixed_latents), out_dir / "samples" / "final_ema.png")
    metadata = {"training": {"steps": step, "batch_size": config.batch_size, "command": command,
                             "history": _history(out_dir),
                             "wall_seconds": round(elapsed_before + time.time() - start, 1),
                             "threads": config.threads, "seed": config.seed, "dataset": "latentdirs.data.shapes3d",
                             "num_train_images": config.num_train_images, "with_fade": config.with_fade,
                             "ema_decay": config.ema_decay, "torch": torch.__version__,
                             "machine": cpu_model(),
                             "cpu_seconds": round(cpu_before + time.process_time() - cpu_start, 1)},
                "architecture": config.architecture}
    export_generator(final, out_dir / "final", metadata)
    return out_dir / "final"


def parse_widths(text: str) -> dict[int, int]:
    """'32=64,64=32' -> {32: 64, 64: 32}."""
    try:
        pairs = [item.split("=") for item in text.split(",") if item.strip()]
        return {int(res): int(channels) for res, channels in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RES=CHANNELS,... (e.g. 32=64,64=32), got {text!r}") from None


def add_train_gan_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train-gan`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "train-gan", help="train the small 64x64 DCGAN on procedural 3D-Shapes scenes",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=("Train a DCGAN (hinge loss, spectral-norm critic, EMA generator) on procedural "
                     "3D-Shapes scenes rendered in memory. Resumes from OUT/checkpoint.pt if present; "
                     "the EMA generator is exported to OUT/final/ (generator.safetensors + config.json).\n\n"
                     "examples:\n  nice -n 5 latentdirs train-gan --out scratch/gan_run --steps 12000 "
                     "--batch-size 32 --base-channels 16 --max-minutes 85\n"
                     "  latentdirs train-gan --out scratch/wide --architecture dcgan-w --widths 32=64,64=32 "
                     "--warm-start training/shapes3d-dcgan-w/checkpoint.pt --amp --channels-last\n"
                     "  latentdirs train-gan --out scratch/r1_aug --architecture dcgan-w --r1-gamma 0.05 "
                     "--augment translation,cutout --warm-start training/shapes3d-dcgan-w/checkpoint.pt"))
    defaults = TrainConfig()
    helps = {
        "steps": "number of generator updates", "batch_size": "images per batch",
        "latent_dim": "latent size", "base_channels": "network width unit",
        "lr_generator": "Adam learning rate of the generator", "lr_discriminator": "Adam learning rate of the critic",
        "beta1": "Adam beta1", "beta2": "Adam beta2", "ema_decay": "decay of the generator EMA",
        "num_train_images": "procedural scenes rendered once into memory",
        "with_fade": "also vary the background_fade factor", "seed": "random seed",
        "threads": "torch CPU threads", "sample_every": "write an EMA sample grid every N steps",
        "checkpoint_every": "write the resumable checkpoint every N steps", "log_every": "append metrics every N steps",
        "bn_calibration_batches": "batches of 64 latents that recompute the EMA generator's BatchNorm statistics",
        "max_minutes": "stop cleanly after this much wall time (0 = no limit)",
        "architecture": "generator architecture", "max_channels": "'style': channel cap at low resolutions",
        "widths": "'style'/'dcgan-w': channels per resolution instead of the base-channels formula, "
                  "as RES=CHANNELS,... (e.g. 32=64,64=32; empty = the formula)",
        "augment": "differentiable augmentation of the critic's inputs: translation, cutout or "
                   "translation,cutout (no colour: hues are factors; empty = none)",
        "mapping_layers": "'style': depth of the z -> w MLP",
        "style_mixing": "'style': probability of mixing two latents' styles in a batch",
        "d_base_channels": "width of the critic's first layer (0 = --base-channels)",
        "r1_gamma": "R1 penalty weight on real images; > 0 replaces the critic's spectral norm",
        "r1_every": "apply R1 every N steps (lazy regularization)",
        "channels_last": "keep activations NHWC (faster convolutions on CPU)",
        "amp": "bf16 autocast for forward passes (faster on CPUs with bf16 matrix units); may change on resume",
        "max_cpu_minutes": "stop cleanly after this much CPU time of this process, over resumes (0 = no limit)",
    }
    parser.add_argument("--out", required=True, help="run folder (checkpoint, samples/, metrics.jsonl, final/)")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--warm-start", default=None, metavar="CHECKPOINT",
                        help="start from another run's checkpoint.pt when --out has none (step, CPU time and "
                             "history carry over): wider --widths are grown function-preservingly, a "
                             "spectral-norm critic is folded into plain weights for --r1-gamma > 0")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=helps[f.name])
        elif f.name == "architecture":
            parser.add_argument(flag, choices=ARCHITECTURES, default=default, help=helps[f.name])
        elif f.name == "widths":
            parser.add_argument(flag, type=parse_widths, default="", metavar="RES=CHANNELS,...", help=helps[f.name])
        else:
            parser.add_argument(flag, type=type(default), default=default, help=helps[f.name])
    parser.set_defaults(func=run_train_gan)
    return parser


def run_train_gan(args: argparse.Namespace) -> int:
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    command = " ".join(["latentdirs"] + sys.argv[1:]) if sys.argv else None
    final = train_gan(config, args.out, resume=not args.no_resume, progress=not args.no_progress, command=command,
                      warm_start=args.warm_start)
    print(f"exported generator to {final}")
    return 0


if __name__ == "__main__":  # python -m latentdirs.gan.train train-gan --out ...
    root = argparse.ArgumentParser(prog="python -m latentdirs.gan.train")
    add_train_gan_parser(root.add_subparsers(dest="command", required=True))
    arguments = root.parse_args()
    sys.exit(arguments.func(arguments))
