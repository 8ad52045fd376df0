"""The served direction sets and the images the web app draws from them.

Sets are addressed by a short name (their run folder's name), never by a path: a request
can only pick among the folders given on the command line. Images are rendered on demand
and kept as PNG bytes in a small LRU cache, so going back to a slider position is free.
"""
from __future__ import annotations

import io
import threading
from concurrent.futures import Future
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from ..directions import DirectionSet
from ..generators.base import Generator, check_same_space
from ..render import DEFAULT_SHIFTS, chart, sample_latents, to_pil

# What one request may ask for; beyond these a request is refused, not queued.
MAX_SHIFT = 30.0          # |s|: the paper's charts span -8..8, far beyond this images are noise
MAX_SEED = 2**31 - 1
MAX_CHART_LATENTS = 16
MAX_CHART_SHIFTS = 21
MAX_SCALE = 8


class RequestError(ValueError):
    """A request the app refuses; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServedSet:
    name: str            # what requests and the answers database call it
    directory: Path      # the folder holding directions.safetensors (never served as files)
    directions: DirectionSet

    def describe(self) -> dict:
        d = self.directions
        return {"name": self.name, "num_directions": d.num_directions, "latent_dim": d.latent_dim,
                "names": list(d.names), "method": d.meta.get("method", ""),
                "scores": None if d.scores is None else [round(float(s), 4) for s in d.scores]}


def _directions_folder(path: Path) -> Path:
    # The same rule as DirectionSet.load: a run folder keeps its set in directions/.
    if (path / "directions").is_dir() and not (path / "directions.safetensors").exists():
        return path / "directions"
    return path


def _set_name(directory: Path) -> str:
    folder = directory.parent if directory.name == "directions" else directory
    return folder.name or "set"


def generator_identity(directions: DirectionSet) -> dict:
    """What must match for two sets to be shown with one generator."""
    info = directions.meta.get("generator") or {}
    # W+ sets of different layer ranges move different parts of the network: not one space
    identity = {"latent_dim": directions.latent_dim, "latent_space": info.get("latent_space"),
                "layers": info.get("layers")}
    if info.get("spec"):
        identity["spec"] = info["spec"]
    else:
        identity["name"] = info.get("name")
    return identity


def load_sets(paths, check_generator: bool = True) -> dict[str, ServedSet]:
    """Load the direction sets of the given folders, named after their folders (made unique).

    With ``check_generator`` all sets must come from one generator (same loading spec and
    latent size): their directions live in one latent space, or comparing them is meaningless.
    """
    sets: dict[str, ServedSet] = {}
    for raw in paths:
        directory = _directions_folder(Path(raw).resolve())
        directions = DirectionSet.load(directory)
        name, n = _set_name(directory), 2
        while name in sets:
            name, n = f"{_set_name(directory)}-{n}", n + 1
        sets[name] = ServedSet(name, directory, directions)
    if not sets:
        raise ValueError("give at least one run folder or direction-set folder")
    if check_generator:
        identities = {name: generator_identity(s.directions) for name, s in sets.items()}
        first_name, first = next(iter(identities.items()))
        for name, identity in identities.items():
            if identity != first:
                raise ValueError(
                    f"these direction sets come from different generators or latent spaces:\n"
                    f"  {first_name}: {_describe_identity(first)}\n  {name}: {_describe_identity(identity)}\n"
                    "serve the sets of one generator at a time")
    return sets


def _describe_identity(identity: dict) -> str:
    spec = identity.get("spec") or {}
    kind = spec.get("kind") or identity.get("name") or "unknown generator"
    extra = f" from {spec['path']}" if spec.get("path") else ""
    options = f" {spec['options']}" if spec.get("options") else ""
    layers = f" layers {identity['layers'][0]}-{identity['layers'][1]}" if identity.get("layers") else ""
    return (f"{kind}{extra}{options}, latent size {identity['latent_dim']}, "
            f"space {identity.get('latent_space') or '?'}{layers}")


# -- parsing of request values ---------------------------------------------------------
def parse_int(value, what: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise RequestError(f"{what} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise RequestError(f"{what} must be between {low} and {high}, got {number}")
    return number


def parse_shift(value, what: str = "shift") -> float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise RequestError(f"{what} must be a number, got {value!r}") from None
    if not abs(number) <= MAX_SHIFT:  # also refuses nan and inf
        raise RequestError(f"{what} must be between -{MAX_SHIFT:g} and {MAX_SHIFT:g}, got {value}")
    return number


def parse_amounts(text: str | None, num_directions: int) -> dict[int, float]:
    """``'0:2.5,3:-1'`` -> {0: 2.5, 3: -1.0}: slider positions, one per direction."""
    amounts: dict[int, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if ":" not in part:
            raise RequestError(f"shifts must look like 0:2.5,3:-1 (direction:shift), got {part!r}")
        k, s = part.split(":", 1)
        k = parse_int(k, "direction index", 0, num_directions - 1)
        if k in amounts:
            raise RequestError(f"direction {k} is given twice in shifts")
        amounts[k] = parse_shift(s, f"shift of direction {k}")
    return amounts


def parse_seeds(text: str | None, default: list[int]) -> list[int]:
    """``'0-4'`` or ``'3,7,9'``."""
    if not text:
        return default
    try:
        if "-" in text.strip()[1:]:
            lo, hi = (int(s) for s in text.split("-", 1))
            if hi - lo + 1 > MAX_CHART_LATENTS:
                raise OverflowError
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise RequestError(f"seeds must look like 0-4 or 3,7,9; got {text!r}") from None
    except OverflowError:
        raise RequestError(f"a chart has at most {MAX_CHART_LATENTS} latents, asked for {hi - lo + 1}") from None
    if not 1 <= len(seeds) <= MAX_CHART_LATENTS:
        raise RequestError(f"a chart needs 1 to {MAX_CHART_LATENTS} latents, asked for {len(seeds)}")
    for s in seeds:
        parse_int(s, "seed", 0, MAX_SEED)
    return seeds


def parse_shift_list(text: str | None) -> list[float]:
    """``'-8:8:9'`` (start:stop:count) or ``'-4,0,4'``; the columns of a chart."""
    if not text:
        return list(DEFAULT_SHIFTS)
    parts = text.split(":")
    if len(parts) == 3:
        lo, hi = parse_shift(parts[0]), parse_shift(parts[1])
        count = parse_int(parts[2], "number of shifts", 1, MAX_CHART_SHIFTS)
        return [lo + (hi - lo) * i / max(count - 1, 1) for i in range(count)]
    shifts = [parse_shift(s) for s in text.split(",") if s.strip()]
    if not 1 <= len(shifts) <= MAX_CHART_SHIFTS:
        raise RequestError(f"a chart has 1 to {MAX_CHART_SHIFTS} shifts, asked for {len(shifts)}")
    return shifts


# -- rendering -------------------------------------------------------------------------
def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Renderer:
    """Draws edited images and charts as PNG bytes behind an LRU cache (``cache_size`` 0
    disables it). One generator call at a time: on a small CPU, parallel forward passes
    only slow each other down."""

    def __init__(self, generator: Generator, cache_size: int = 512) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            # a negative size emptied the cache past empty: every render ended in a KeyError (an HTTP 500)
            raise ValueError(f"cache_size must be an integer >= 0 (0: no cache), got {cache_size!r}")
        self.generator = generator
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()
        self._latents: dict[int, torch.Tensor] = {}
        self._cache_lock = threading.Lock()
        self._rendering: dict = {}  # key -> Future of the render in progress
        self._torch_lock = threading.Lock()
        self.hits = self.misses = 0

    def latents(self, seeds: list[int]) -> torch.Tensor:
        """One latent per seed: the same seed is the same latent for every set and every page."""
        missing = [s for s in seeds if s not in self._latents]
        for s in missing:
            if len(self._latents) > 4096:
                self._latents.clear()
            self._latents[s] = sample_latents(self.generator, 1, s)[0]
        return torch.stack([self._latents[s] for s in seeds])

    def _cached(self, key, make) -> bytes:
        # Identical requests that arrive while one is rendering wait for it (a per-key future) instead of
        # queueing a render each: 16 clicks on one chart cost one render, not 16.
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
                return self._cache[key]
            future = self._rendering.get(key)
            owner = future is None
            if owner:
                future = self._rendering[key] = Future()
                self.misses += 1
            else:
                self.hits += 1
        if not owner:
            return future.result()
        try:
            with self._torch_lock, torch.no_grad():
                data = make()
        except BaseException as exc:
            with self._cache_lock:
                del self._rendering[key]
            future.set_exception(exc)
            raise
        with self._cache_lock:
            if self.cache_size:
                self._cache[key] = data
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            del self._rendering[key]
        future.set_result(data)
        return data

    def image(self, served: ServedSet, seed: int, amounts: dict[int, float], scale: int = 1) -> bytes:
        """PNG of G(z_seed + sum_k s_k h_k)."""
        key = ("image", served.name, seed, tuple(sorted(amounts.items())), scale)

        def make():
            check_same_space(self.generator, served.directions.meta.get("generator"))
            z = self.latents([seed]).to(self.generator.device)
            shift = served.directions.combine(torch.zeros_like(z), amounts)  # sum_k s_k h_k
            picture = to_pil(self.generator.shifted(z, shift))[0]
            if scale > 1:
                picture = picture.resize((picture.width * scale, picture.height * scale), resample=0)
            return png_bytes(picture)
        return self._cached(key, make)

    def chart(self, served: ServedSet, index: int, seeds: list[int], shifts: list[float], scale: int = 1) -> bytes:
        """PNG of the chart of direction ``index``: rows = latents, columns = shifts."""
        key = ("chart", served.name, index, tuple(seeds), tuple(shifts), scale)
        return self._cached(key, lambda: png_bytes(chart(self.generator, served.directions, index,
                                                         self.latents(seeds), shifts, scale=scale)))

    def default_scale(self) -> int:
        """Upscale small images (32 px planted) so charts are legible; 64 px and up stay as they are."""
        return max(1, min(4, 64 // max(self.generator.image_shape[1:])))
