"""Training a benchmark's runs several at a time (``wdmt benchmark --jobs N``).

The models are small (width 16 in the ``cpu`` preset): their convolutions use many cores poorly, so N runs with
cores / N threads each train more tiles per second in total than one run with every core, and the gain grows with
the core count. Each run trains in its own process, started with ``spawn`` (a forked process would inherit torch's
thread pool in whatever state it is). A run's numbers depend on its thread count only through float summation order;
``env.json`` records the threads, as for any run. Evaluation stays in the calling process, one run after another.

This module imports torch only in the worker processes, so importing it costs nothing.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from wdmt.benchmark.suites import Config, Setting


def threads_per_job(jobs: int) -> int:
    """The cores shared evenly, at least one thread each."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _start_worker(threads: int) -> None:
    import torch

    import wdmt.train  # noqa: F401 - flushes subnormal floats before torch's threads exist (wdmt.runtime)

    torch.set_num_threads(threads)


def _train(s: Setting, seed: int, data: str, preset: str, out: Path, fmt: str, epochs: int | None, keep_epochs: int,
           config: Config) -> str:
    from wdmt.benchmark.runner import train_run

    rd, _ = train_run(s, seed, data, preset, out, fmt, False, epochs, keep_epochs, config)
    return rd.root.name


def train_in_parallel(todo: list[tuple[Setting, int]], jobs: int, data: str | Path, preset: str, out: Path, fmt: str,
                      epochs: int | None, keep_epochs: int, config: Config, progress: bool = True) -> None:
    """Train every (setting, seed) of ``todo``, ``jobs`` at a time. The first failure stops the runs not yet started
    and is raised once the running ones end (each of them resumable, like any run)."""
    if not todo:
        return
    jobs = min(jobs, len(todo))  # one run left gets every core
    threads = threads_per_job(jobs)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_start_worker, initargs=(threads,)) as pool:
        futures: dict[Any, str] = {
            pool.submit(_train, s, seed, str(data), preset, out, fmt, epochs, keep_epochs, config): f"{s.label} s{seed}"
            for s, seed in todo
        }
        if progress:
            print(f"training {len(todo)} run(s), {jobs} at a time, {threads} thread(s) each")
        for f in as_completed(futures):
            if f.exception() is not None:
                for other in futures:
                    other.cancel()  # those not started; the running ones end on their own, then this raises
                raise f.exception()
            if progress:
                print(f"trained {futures[f]} ({f.result()})")
