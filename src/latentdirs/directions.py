"""Directions in a latent space: the artifact (:class:`DirectionSet`) and the trainable
parametrizations of the paper's matrix A (:class:`DirectionMatrix`)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .runs import atomic_path, atomic_write_text, read_json_object

PARAMETRIZATIONS = ("unit", "ortho", "cayley", "linear", "identity", "random")
TRAINABLE = ("unit", "ortho", "cayley", "linear")


class DirectionError(ValueError):
    """An impossible or inconsistent request about directions."""


def _version() -> str:
    from . import __version__
    return __version__


@dataclass
class DirectionSet:
    """K directions in a d-dimensional latent space, columns of ``matrix`` (d, K).

    ``scores`` rank directions (higher = more important), ``names`` carry human labels,
    ``meta`` records where they came from (generator, latent space, method, seed, steps...).
    """

    matrix: torch.Tensor
    scores: torch.Tensor | None = None
    names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.matrix = torch.as_tensor(self.matrix, dtype=torch.float32).detach().cpu()
        if self.matrix.dim() != 2 or 0 in self.matrix.shape:
            raise DirectionError(f"direction matrix must be 2-D (latent_dim, K) with K, latent_dim >= 1, got "
                                 f"{tuple(self.matrix.shape)}")
        if not torch.isfinite(self.matrix).all():  # a NaN direction would turn every image it moves into NaN
            raise DirectionError("direction matrix holds NaN or inf")
        if self.scores is not None:
            self.scores = torch.as_tensor(self.scores, dtype=torch.float32).detach().cpu().flatten()
            if len(self.scores) != self.num_directions:
                raise DirectionError(f"{len(self.scores)} scores for {self.num_directions} directions")
            if torch.isnan(self.scores).any():  # NaN sorts first, so top(k) would keep it; load refuses it too
                raise DirectionError("scores hold NaN: give one number per direction (or scores=None)")
        if self.names is None:
            self.names = [""] * self.num_directions
        if not isinstance(self.names, (list, tuple)) or not all(isinstance(n, str) for n in self.names):
            # a str of K letters would pass the length check, and load refuses what save would write
            raise DirectionError(f"names must be a list of strings, one per direction, got {self.names!r:.80}")
        self.names = list(self.names)
        if len(self.names) != self.num_directions:
            raise DirectionError(f"{len(self.names)} names for {self.num_directions} directions")

    # -- shape ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.matrix.shape[0]

    @property
    def num_directions(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return self.num_directions

    def __getitem__(self, k: int) -> torch.Tensor:
        if not -self.num_directions <= k < self.num_directions:
            raise IndexError(f"direction {k} out of range: this set has {self.num_directions}")
        return self.matrix[:, k]

    def check_fits(self, generator, where: str | Path | None = None) -> None:
        """Refuse ``generator`` unless its latents are the set's size and, where the set records one,
        in the same space (W+ layer range): the one check before moving a generator along these."""
        from .generators.base import check_same_space
        what = f"the direction set {where}" if where is not None else "the direction set"
        if generator.latent_dim != self.latent_dim:
            raise DirectionError(f"{what} holds {self.latent_dim}-d directions but the generator {generator.name} takes "
                                 f"{generator.latent_dim}-d latents: use the generator the set was found on "
                                 "(leave out --generator to reload the one it records)")
        check_same_space(generator, self.meta.get("generator"), what)

    # -- constructors of the paper's baselines ---------------------------------------
    @classmethod
    def identity(cls, latent_dim: int, num_directions: int) -> "DirectionSet":
        """Coordinate axes e_1..e_K."""
        _check_square_fit("identity", latent_dim, num_directions)
        return cls(torch.eye(latent_dim)[:, :num_directions], meta={"method": "identity"})

    @classmethod
    def random(cls, latent_dim: int, num_directions: int, seed: int = 0) -> "DirectionSet":
        """K random orthonormal directions (QR of a Gaussian matrix)."""
        _check_square_fit("random", latent_dim, num_directions)
        g = torch.Generator().manual_seed(seed)
        q, r = torch.linalg.qr(torch.randn(latent_dim, num_directions, generator=g, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # unique QR: the distribution is Haar
        return cls(q.float(), meta={"method": "random", "seed": seed})

    # -- use -----------------------------------------------------------------------
    def shift(self, latents: torch.Tensor, index: int, amount: float | torch.Tensor) -> torch.Tensor:
        """``z + amount * h_index``; ``amount`` may be a scalar or one value per latent.

        This is the moved latent. To render a move, use ``G.shifted(z, amount * h)``: with a W+
        layer range only those layers move, which no single latent can express."""
        h = self[index].to(latents)
        amount = torch.as_tensor(amount, dtype=latents.dtype, device=latents.device)
        return latents + amount.reshape(-1, 1) * h if amount.dim() else latents + amount * h

    def combine(self, latents: torch.Tensor, amounts: dict[int, float]) -> torch.Tensor:
        """``z + sum_k amounts[k] * h_k`` (several sliders at once); render with ``G.shifted`` (see :meth:`shift`)."""
        out = latents.clone()
        for k, s in amounts.items():
            out = out + float(s) * self[k].to(latents)
        return out

    def sorted(self) -> "DirectionSet":
        """Directions ordered by descending score (unchanged if there are no scores)."""
        return self if self.scores is None else self.select(self._ranking())

    def _ranking(self) -> list[int]:
        if self.scores is None:
            return list(range(self.num_directions))
        return torch.argsort(self.scores, descending=True, stable=True).tolist()

    def top(self, k: int, max_cosine: float | None = None) -> "DirectionSet":
        """The ``k`` highest-scoring directions, best first.

        With ``max_cosine``, a direction is skipped while its |cosine| to one already kept
        exceeds it (unit-norm LD sets often hold near-duplicates of their strongest
        directions); skipped ones fill the remaining places only if too few are distinct.
        """
        if int(k) != k or not 1 <= k <= self.num_directions:
            raise DirectionError(f"asked for the top {k} of {self.num_directions} directions: k must be 1 to "
                                 f"{self.num_directions}")
        order = self._ranking()
        if max_cosine is None:
            return self.select(order[:k])
        unit = self.matrix / self.matrix.norm(dim=0, keepdim=True).clamp_min(1e-12)
        kept: list[int] = []
        for index in order:
            if len(kept) == k:
                break
            if not kept or (unit[:, kept].t() @ unit[:, index]).abs().max() <= max_cosine:
                kept.append(index)
        kept += [index for index in order if index not in kept][:k - len(kept)]
        return self.select(kept)

    def select(self, indices: list[int]) -> "DirectionSet":
        if any(int(i) != i for i in indices):  # int() would silently round 1.7 down to direction 1
            raise DirectionError(f"select needs whole direction indices, got {list(indices)}")
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not -self.num_directions <= i < self.num_directions]
        if not indices or bad:
            raise DirectionError(f"select needs direction indices in 0..{self.num_directions - 1}, got {indices}")
        scores = None if self.scores is None else self.scores[indices]
        meta = dict(self.meta)
        meta["selected_from"] = meta.get("selected_from", list(range(self.num_directions)))
        meta["selected_from"] = [meta["selected_from"][i] for i in indices]
        return DirectionSet(self.matrix[:, indices], scores, [self.names[i] for i in indices], meta)

    # -- artifacts -----------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``directions.safetensors`` + ``directions.json`` into ``directory`` atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"matrix": self.matrix.contiguous()}
        if self.scores is not None:
            tensors["scores"] = self.scores.contiguous()
        with atomic_path(directory / "directions.safetensors") as tmp:
            save_file(tensors, str(tmp))
        # the shape last: a selected set's meta still says how many directions were trained
        meta = {"format": "latentdirs.directions/1", "version": _version(),
                **{k: v for k, v in self.meta.items() if k not in ("names", "latent_dim", "num_directions")},
                "latent_dim": self.latent_dim, "num_directions": self.num_directions, "names": self.names}
        atomic_write_text(directory / "directions.json", json.dumps(meta, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "DirectionSet":
        """Read a set written by :meth:`save` (or the run folder holding one).

        Every way the two files can be wrong (truncated, not safetensors/JSON, no ``matrix``,
        another shape or dtype, NaN, metadata that disagrees with the tensors) raises a
        :class:`DirectionError` that names the file."""
        directory = Path(directory)
        if not (directory / "directions.safetensors").exists():
            # a run folder of discover (RUN/directions) or of demo (RUN/discovery/directions)
            for inner in (directory / "directions", directory / "discovery" / "directions"):
                if (inner / "directions.safetensors").exists():
                    directory = inner
                    break
        tensor_file, meta_file = directory / "directions.safetensors", directory / "directions.json"
        if not tensor_file.exists():
            raise FileNotFoundError(f"no direction set in {directory}: expected {tensor_file.name} "
                                    "(written by DirectionSet.save or `latentdirs discover`)")
        matrix, scores = _read_tensors(tensor_file)
        meta = _read_meta(meta_file, matrix.shape) if meta_file.exists() else {}
        names = meta.pop("names", None)
        for key in ("format", "latent_dim", "num_directions"):
            meta.pop(key, None)
        try:
            return cls(matrix, scores, names, meta)
        except DirectionError as exc:
            raise DirectionError(f"{directory}: {exc}") from None

    def export_npy(self, path: str | Path) -> None:
        """The matrix as a plain (K, d) ``.npy``, the layout most other tools read."""
        import numpy as np
        if str(path) == "" or Path(path).is_dir():  # the rename onto a folder fails naming only the temporary
            raise DirectionError(f"cannot export to {str(path)!r}: it is a folder, not a .npy file path; "
                                 "give a file name such as directions.npy")
        with atomic_path(Path(path)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, self.matrix.t().numpy())


_REWRITE = "write the set again (DirectionSet.save, or rerun the command that made it)"


def _read_tensors(path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``matrix`` (d, K) and ``scores`` (K,) of a directions.safetensors, checked."""
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError, ...: the Rust error names no file
        raise DirectionError(f"could not read {path}: truncated or not a safetensors file ({exc}); {_REWRITE}") from None
    if "matrix" not in tensors:
        raise DirectionError(f"{path} holds no 'matrix' tensor (found: {', '.join(sorted(tensors)) or 'nothing'}); "
                             f"it is not a latentdirs direction set; {_REWRITE}")
    matrix, scores = tensors["matrix"], tensors.get("scores")
    if not matrix.is_floating_point() or matrix.dim() != 2 or 0 in matrix.shape:
        raise DirectionError(f"{path}: 'matrix' must be a non-empty 2-D float tensor (latent_dim, K), got "
                             f"{tuple(matrix.shape)} {str(matrix.dtype).replace('torch.', '')}; {_REWRITE}")
    if not torch.isfinite(matrix).all():
        raise DirectionError(f"{path}: 'matrix' holds NaN or inf; {_REWRITE}")
    if scores is not None:
        if not scores.is_floating_point() or tuple(scores.shape) != (matrix.shape[1],):
            raise DirectionError(f"{path}: 'scores' must be {matrix.shape[1]} floats (one per direction), got "
                                 f"{tuple(scores.shape)} {str(scores.dtype).replace('torch.', '')}; {_REWRITE}")
        if torch.isnan(scores).any():
            raise DirectionError(f"{path}: 'scores' holds NaN; {_REWRITE}")
    return matrix, scores


def _read_meta(path: Path, shape: tuple[int, int]) -> dict:
    """directions.json, checked against the matrix it describes."""
    try:
        meta = read_json_object(path)
    except ValueError as exc:
        raise DirectionError(f"{exc}; {_REWRITE}") from None
    selected = meta.get("selected_from")
    if isinstance(selected, list) and len(selected) == shape[1]:
        meta.pop("num_directions", None)  # older saves of a selected set wrote the K it was trained with here
    for key, size in (("latent_dim", shape[0]), ("num_directions", shape[1])):
        if key in meta and meta[key] != size:
            raise DirectionError(f"{path} says {key}={meta[key]!r} but directions.safetensors holds a "
                                 f"{shape[0]} x {shape[1]} matrix: the two files come from different sets; {_REWRITE}")
    names = meta.get("names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
                              or len(names) != shape[1]):
        raise DirectionError(f"{path}: 'names' must be a list of {shape[1]} strings (one per direction); {_REWRITE}")
    generator = meta.get("generator") or {}
    if not isinstance(generator, dict) or not isinstance(generator.get("spec") or {}, dict):
        raise DirectionError(f"{path}: 'generator' (and its 'spec') must be JSON objects, as Generator.describe() "
                             f"writes them; {_REWRITE}")
    return meta


def _check_square_fit(kind: str, latent_dim: int, num_directions: int) -> None:
    if num_directions < 1 or latent_dim < 1:
        raise DirectionError(f"need at least one direction and one latent dimension, got K={num_directions}, d={latent_dim}")
    if num_directions > latent_dim:
        raise DirectionError(
            f"'{kind}' directions are orthonormal, so at most latent_dim={latent_dim} of them exist; "
            f"got num_directions={num_directions}. Use parametrization 'unit' or 'linear' for K > d.")


class DirectionMatrix(nn.Module):
    """The paper's A (d x K, ``matrix()``): direction k moves a latent by ``eps * A[:, k]``.

    - ``unit``: free d x K matrix, columns divided by their norm;
    - ``ortho``: first K columns of exp(S), S = P - P^T skew-symmetric (exact, O(d^3) per step,
      :func:`expm_columns`);
    - ``cayley``: first K columns of (I - S)^-1 (I + S), also orthonormal, cheaper than exp;
    - ``linear``: free d x K matrix (columns may grow: the paper calls this impractical);
    - ``identity`` / ``random`` / a given matrix: frozen baselines.

    Trainable parametrizations start at the coordinate axes unless ``start`` (d x K) is given:
    ``unit``/``linear`` start at its columns; ``ortho``/``cayley`` need them orthonormal and
    rotate by a fixed orthonormal completion of them (buffer ``basis``), so A = basis @ Q(S).
    """

    def __init__(self, latent_dim: int, num_directions: int, parametrization: str = "unit",
                 seed: int = 0, fixed: torch.Tensor | None = None, start: torch.Tensor | None = None) -> None:
        super().__init__()
        if parametrization not in PARAMETRIZATIONS + ("fixed",):
            raise DirectionError(f"unknown parametrization {parametrization!r}; choose one of {', '.join(PARAMETRIZATIONS)}")
        for what, size in (("latent_dim", latent_dim), ("num_directions", num_directions)):
            if isinstance(size, bool) or not hasattr(size, "__index__") or size < 1:  # else an empty A, a torch error
                raise DirectionError(f"{what} must be a whole number >= 1, got {size!r}")
        latent_dim, num_directions = int(latent_dim), int(num_directions)
        self.latent_dim, self.num_directions, self.parametrization = latent_dim, num_directions, parametrization
        if parametrization in ("ortho", "cayley", "identity", "random"):
            _check_square_fit(parametrization, latent_dim, num_directions)
        self.register_buffer("basis", None)  # set only for ortho/cayley started at given directions
        if start is not None:
            start = _check_start(start, latent_dim, num_directions, parametrization)
        if parametrization == "fixed":
            if fixed is None or tuple(fixed.shape) != (latent_dim, num_directions):
                raise DirectionError(f"a fixed direction matrix must be ({latent_dim}, {num_directions})")
            self.register_buffer("fixed", fixed.detach().float().clone())
        elif parametrization == "identity":
            self.register_buffer("fixed", torch.eye(latent_dim)[:, :num_directions])
        elif parametrization == "random":
            self.register_buffer("fixed", DirectionSet.random(latent_dim, num_directions, seed).matrix)
        elif parametrization in ("ortho", "cayley"):
            # S = 0 at the start, so A starts as the coordinate axes (the paper's step-0 snapshot).
            self.skew = nn.Parameter(torch.zeros(latent_dim, latent_dim))
            if start is not None:
                self.register_buffer("basis", orthonormal_completion(start))
        elif start is not None:
            self.weight = nn.Parameter(start.clone())
        else:
            start = torch.eye(latent_dim, num_directions)
            if num_directions > latent_dim:  # more directions than axes: random unit columns
                g = torch.Generator().manual_seed(seed)
                start = torch.randn(latent_dim, num_directions, generator=g)
                start = start / start.norm(dim=0, keepdim=True)
            self.weight = nn.Parameter(start)

    @property
    def trainable(self) -> bool:
        return self.parametrization in TRAINABLE

    def matrix(self) -> torch.Tensor:
        p = self.parametrization
        if p in ("fixed", "identity", "random"):
            return self.fixed
        if p == "linear":
            return self.weight
        if p == "unit":
            return self.weight / self.weight.norm(dim=0, keepdim=True).clamp_min(1e-8)
        # Never under autocast: bf16 would break orthonormality.
        with torch.autocast(self.skew.device.type, enabled=False):
            s = self.skew - self.skew.t()
            if p == "ortho":
                columns = expm_columns(s, self.num_directions)
            else:
                eye = torch.eye(self.latent_dim, self.num_directions, device=s.device, dtype=s.dtype)
                # Cayley: Q = (I - S)^-1 (I + S); only K columns of (I + S) are needed.
                rhs = eye + s[:, :self.num_directions]
                columns = torch.linalg.solve(torch.eye(self.latent_dim, device=s.device, dtype=s.dtype) - s, rhs)
            return columns if self.basis is None else self.basis @ columns

    def forward(self, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The latent moves eps * A[:, k], one row per (k, eps)."""
        return self.matrix()[:, index].t() * shift.reshape(-1, 1)

    def to_direction_set(self, **meta) -> DirectionSet:
        with torch.no_grad():
            return DirectionSet(self.matrix().detach().cpu().clone(), meta={"parametrization": self.parametrization, **meta})


def _check_start(start, latent_dim: int, num_directions: int, parametrization: str) -> torch.Tensor:
    start = torch.as_tensor(start.matrix if isinstance(start, DirectionSet) else start).detach().float().cpu()
    if parametrization not in TRAINABLE:
        raise DirectionError(f"{parametrization!r} directions are frozen: a starting matrix only applies to "
                             f"{', '.join(TRAINABLE)}")
    if tuple(start.shape) != (latent_dim, num_directions):
        raise DirectionError(f"the starting directions are {tuple(start.shape)} but A is ({latent_dim}, {num_directions}): "
                             "give one column per direction, in the generator's latent size")
    if not torch.isfinite(start).all() or (start.norm(dim=0) < 1e-6).any():
        raise DirectionError("the starting directions hold NaN/inf or a zero column")
    if parametrization in ("ortho", "cayley"):
        error = orthonormality_error(start)
        if error > 1e-4:
            raise DirectionError(f"{parametrization} A must start at orthonormal directions (max |H^T H - I| = "
                                 f"{error:.2g}); orthonormalize them first or use parametrization='unit'")
    return start


def orthonormal_completion(columns: torch.Tensor) -> torch.Tensor:
    """A d x d orthogonal matrix whose first K columns are ``columns`` (orthonormal, d x K)."""
    d, k = columns.shape
    q, _ = torch.linalg.qr(torch.cat([columns.double(), torch.eye(d, dtype=torch.float64)], dim=1))
    rest = q[:, k:d]
    rest = rest - columns.double() @ (columns.double().t() @ rest)  # exact orthogonality to the given ones
    rest, _ = torch.linalg.qr(rest)
    return torch.cat([columns.double(), rest], dim=1).float()


def expm_columns(s: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` columns of exp(s): Taylor degree 16 with scaling and squaring.

    Same values as ``torch.linalg.matrix_exp(s)[:, :k]`` to float precision, but its backward
    is autograd through ~(6 + squarings) matmuls, where matrix_exp's backward exponentiates a
    2d x 2d block matrix: ~5x faster forward+backward at d=512 and a more accurate gradient
    (benchmarks/ortho_scale.py).
    """
    # Truncation error of the degree-16 series at norm theta: ~theta^17/17! < the dtype's epsilon.
    theta = 0.8 if s.dtype == torch.float64 else 2.5
    norm = s.detach().abs().sum(0).max().item()  # 1-norm >= spectral norm
    squarings = max(0, math.ceil(math.log2(norm / theta))) if norm > theta else 0
    x = s / 2**squarings
    x2 = x @ x
    x4 = x2 @ x2
    # Without squarings only k columns of the polynomial are ever needed: carry just those.
    m = k if squarings == 0 else s.shape[0]
    powers = [torch.eye(s.shape[0], m, dtype=s.dtype, device=s.device), x[:, :m], x2[:, :m], x2 @ x[:, :m]]
    c = [1 / math.factorial(i) for i in range(17)]

    def chunk(j: int) -> torch.Tensor:  # sum_{i<4} c[4j+i] x^i
        return sum(c[4 * j + i] * powers[i] for i in range(4))

    # Paterson-Stockmeyer: Horner in x^4, 3 products after x^2, x^3, x^4 for degree 16.
    p = c[16] * x4[:, :m] + chunk(3)
    for j in (2, 1, 0):
        p = x4 @ p + chunk(j)
    if squarings:
        for _ in range(squarings - 1):
            p = p @ p
        p = p @ p[:, :k]  # the last squaring only for the k columns we keep
    return p


def orthonormality_error(matrix: torch.Tensor) -> float:
    """max |A^T A - I|, 0 for orthonormal columns."""
    gram = matrix.t() @ matrix
    return (gram - torch.eye(gram.shape[0], dtype=gram.dtype)).abs().max().item()


def best_cosines(found: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """For each true direction (column of ``truth``), the best |cosine| with a found one."""
    f = found / found.norm(dim=0, keepdim=True).clamp_min(1e-12)
    t = truth / truth.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return (t.t() @ f).abs().max(dim=1).values
