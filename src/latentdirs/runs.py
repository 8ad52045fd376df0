"""Run folders (``runs/00007-discover-planted-k10/``), atomic writes and JSONL metrics.

Nothing is lost: every file is written to a temporary name in the same folder and renamed
over the target, so an interrupted process leaves either the old file or the new one.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; the file should read like any other the user writes
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def safe_torch_load(path: str | Path, map_location="cpu", trust_pickle: bool = False):
    """``torch.load`` with ``weights_only=True`` unless the caller explicitly trusts the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"could not read {path}: the file is empty (truncated or not a PyTorch checkpoint)")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust_pickle)
    except Exception as exc:
        first_line = load_error_reason(exc)
        if trust_pickle:
            raise ValueError(f"could not read {path}: {first_line}") from exc
        hint = ("It may contain pickled Python objects; if you trust its source, pass trust_pickle=True "
                "(CLI: --trust-pickle) to open it." if "Unsupported global" in str(exc)
                else "The file may be truncated or not a PyTorch checkpoint.")
        raise ValueError(f"could not read {path} safely ({first_line}). {hint}") from exc


def load_error_reason(exc: BaseException) -> str:
    """The informative part of a ``torch.load`` error: its own first line, or the unpickler's complaint
    (the "Weights only load failed ... re-running with weights_only=False" preamble is advice for
    files you trust, not a reason)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def read_json_object(path: str | Path, what: str = "") -> dict:
    """A JSON object from ``path``; a truncated, non-UTF-8 or non-object file raises a ValueError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"could not read {path}{what}: truncated or not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}{what} must hold a JSON object, got {type(data).__name__}")
    return data


def new_run_dir(root: str | Path, description: str) -> Path:
    """Create ``root/NNNNN-description`` with the next free number."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", description).strip("-")
    for attempt in range(100):  # another process may take the same number at the same time
        path = root / f"{max(numbers, default=-1) + 1 + attempt:05d}-{slug}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder under {root}")


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSONL file ([] when it does not exist); a damaged line is a ValueError naming it."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"{path}, line {number}: not a JSON record ({exc}); remove or fix that line") from None
    return records


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in records))


class Run:
    """One run folder and what a job keeps in it: its settings (``config.json``), a human log,
    metrics appended as JSONL and a resumable checkpoint.

    ``Run(None)`` keeps nothing: every write is skipped, for a job run without a folder;
    ``Run(folder, writes=False)`` reads a run another process writes (a torchrun rank other than 0).

        run = Run("runs/00007-discover-planted-k10")
        run.check_config("discovery", settings)   # resuming with other settings is refused
        state = run.resume()                      # the checkpoint, or None for a fresh start
        run.append({"step": 25, "loss": 0.3}); run.log("resumed"); run.save_checkpoint(state)
    """

    def __init__(self, folder: str | Path | None, log: str = "log.txt", metrics: str = "metrics.jsonl",
                 checkpoint: str = "checkpoint.pt", echo: bool = False, writes: bool = True) -> None:
        self.folder = Path(folder) if folder is not None else None
        """The run folder (created on the first write), None to keep nothing."""
        self.writes = writes and self.folder is not None
        """Whether this process writes the folder (False: it only reads its config and checkpoint)."""
        self.names = {"log": log, "metrics": metrics, "checkpoint": checkpoint}
        """File names inside the folder: sweeps keep ``sweep.log``, train-gan keeps its ``commands.jsonl`` beside."""
        self.echo = echo
        """Also print each log line (above a progress bar)."""

    def path(self, name: str) -> Path:
        """``folder / name``; ``name`` may be "log", "metrics" or "checkpoint" for this run's own files."""
        return self.folder / self.names.get(name, name)

    # -- settings ------------------------------------------------------------------------
    def check_config(self, section: str, now: dict, ignore=(), generator: dict | None = None) -> dict:
        """Refuse to resume this run with settings other than those in its ``config.json``; return what it
        holds ({} for a new run), so a caller checks more without reading it again.

        ``section`` is the key of the stored settings ("discovery", "compare"); ``ignore`` names
        settings that may change (how fast, not what is computed). ``generator`` is the
        ``describe()`` of the generator now. The one check behind discover, sweep, compare and the demo.
        """
        path = self.path("config.json") if self.folder is not None else None
        if path is None or not path.exists():
            return {}
        stored = read_json_object(path, f" (the settings of the run in {self.folder})")
        if generator is not None and "generator" in stored:
            now_generator = json.loads(json.dumps(generator, default=str))
            if stored["generator"] != now_generator:  # e.g. new weights: old results would describe another model
                raise ValueError(f"{self.folder} was run on another generator ({stored['generator']}; now "
                                 f"{now_generator}); use another output folder")
        before = stored.get(section, {})
        if not isinstance(before, dict):
            raise ValueError(f"{path}: {section!r} must be a JSON object of settings; restore the file or use "
                             "another output folder")
        now = json.loads(json.dumps(now, default=str))  # tuples -> lists, as stored
        changed = [k for k in now if k in before and k not in ignore and before[k] != now[k]]
        if changed:
            listed = ", ".join(f"{k}: folder has {before[k]!r}, asked {now[k]!r}" for k in changed)
            raise ValueError(f"{self.folder} was run with other options ({listed}); use another output folder, "
                             "the same options, or delete it")
        return stored

    def save_config(self, config: dict) -> None:
        if self.writes:
            atomic_write_text(self.path("config.json"), json.dumps(config, indent=1, default=str))

    # -- log and metrics -----------------------------------------------------------------
    def log(self, message: str) -> None:
        """A timestamped line in the human log."""
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        if self.echo:
            from tqdm.auto import tqdm
            tqdm.write(line)
        self._add_line("log", line)

    def append(self, record: dict, file: str = "metrics") -> None:
        """One JSON line at the end of the metrics (or of another JSONL ``file`` of the run)."""
        self._add_line(file, json.dumps(record, default=str))

    def _add_line(self, file: str, line: str) -> None:
        if self.writes:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path(file), "a") as fh:
                fh.write(line + "\n")

    def read(self, file: str = "metrics") -> list[dict]:
        """The records of the metrics (or of another JSONL ``file``); [] when there are none."""
        return read_jsonl(self.path(file)) if self.folder is not None else []

    def clear_metrics(self) -> None:
        """A fresh start: the metrics of an earlier run in this folder must not be appended to."""
        if self.writes:
            self.path("metrics").unlink(missing_ok=True)

    def drop_metrics_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint: drop their old records so none appears twice."""
        if not self.writes:
            return
        records = self.read()
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) != len(records):
            write_jsonl(self.path("metrics"), kept)

    # -- checkpoint ----------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        """Written to a temporary file and renamed: a kill mid-write leaves the previous checkpoint."""
        if self.writes:
            atomic_torch_save(state, self.path("checkpoint"))

    def resume(self, *subfolders: str, read: Callable[[Path], dict] | None = None) -> dict | None:
        """Continue this run: remove what killed writes left (here and in ``subfolders``), load the
        checkpoint (None: start afresh) and drop the metrics logged after its ``step``.

        ``read(path)`` reads and checks the checkpoint (default :func:`safe_torch_load`: tensors and plain data)."""
        if self.folder is None:
            return None
        self.remove_stale_temporaries(*subfolders)
        path = self.path("checkpoint")
        state = (read or safe_torch_load)(path) if path.exists() else None
        if state is not None and isinstance(state.get("step"), int):
            self.drop_metrics_after(state["step"])
        return state

    def remove_stale_temporaries(self, *subfolders: str) -> None:
        """Delete what :func:`atomic_path` leaves behind when a process is killed mid-write
        (``.checkpoint.pt.x8f2k.tmp``), here and in ``subfolders``: only while no other process writes."""
        if self.writes:
            for folder in (self.folder, *(self.folder / s for s in subfolders)):
                for path in folder.glob(".*.tmp"):
                    if path.is_file() and re.fullmatch(r"\..+\.[^.]+\.tmp", path.name):
                        path.unlink(missing_ok=True)


def cpu_model() -> str:
    """The CPU's model name (recorded beside timings: machines of one kind differ several-fold)."""
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
