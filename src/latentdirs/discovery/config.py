"""Every option of a discovery run (:class:`DiscoveryConfig`) and the named presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..configs import check_declared
from ..directions import TRAINABLE

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
    closed-form: LD then refines them. discover(start=...) also takes the directions themselves
    (a DirectionSet or a d x K tensor), ``latentdirs discover --start`` a saved set."""
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

    def __post_init__(self) -> None:  # a config that exists is valid: the API and every command check alike
        check_declared(self)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
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
    return dataclasses.replace(config or DiscoveryConfig(), **overrides)

