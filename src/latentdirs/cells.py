"""Cells: the resumable units of work of a sweep (one discovery run each) and of a comparison
(one method x seed each).

A cell is a subfolder of the job's folder, complete once its ``result.json`` exists; that file
is written last and atomically, so a killed job re-run with the same command skips complete
cells and redoes (or resumes) the rest. Results are also appended, one JSON line per cell, to
the job's JSONL file as they finish. Cells run in this process, or in worker processes with
one torch thread each.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from tqdm.auto import tqdm

from .runs import atomic_write_text, read_json_object

RESULT = "result.json"


def read_json(path: str | Path) -> dict:
    path = Path(path)
    return read_json_object(path) if path.exists() else {}


def read_result(cell_dir: str | Path) -> dict | None:
    """The result of a complete cell, None for a cell still to do; a damaged one is a ValueError naming it."""
    path = Path(cell_dir) / RESULT
    return read_json_object(path, " (delete it to run the cell again)") if path.exists() else None


def write_result(cell_dir: str | Path, result: dict) -> None:
    atomic_write_text(Path(cell_dir) / RESULT, json.dumps(result, indent=1, default=str))


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def run_cells(work: Callable[..., dict], jobs: list[tuple], workers: int = 1, threads: int | None = None,
              progress: bool = True, desc: str = "cells") -> Iterator[dict]:
    """Yield ``work(*job)`` for every job as it finishes: here, or in ``workers`` processes.

    With workers, ``work`` and the jobs must pickle (a module-level function, a generator's
    load spec rather than the generator) and each process gets ``threads`` (default 1) threads.
    """
    if not jobs:
        return
    workers = min(workers, len(jobs))
    if workers <= 1:
        if threads:
            _init_worker(threads)
        for job in tqdm(jobs, desc=desc, disable=not progress, dynamic_ncols=True):
            yield work(*job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    # spawn, not fork: a forked torch process can deadlock in its thread pools.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads or 1,)) as pool:
        futures = [pool.submit(work, *job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress,
                           dynamic_ncols=True):
            yield future.result()
