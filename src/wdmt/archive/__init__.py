"""Scoring archives of photographs: ``wdmt predict`` over files, folders and lists, streaming, resumable, on this
machine's threads (``engine="local"``) or on a Ray cluster (``engine="ray"``, :mod:`wdmt.archive.ray_engine`).

Exit codes of ``wdmt predict``: 0 every photograph scored (or already scored), :data:`SOME_FAILED` some could not be
scored (listed in ``errors.csv``, the rest scored), 2 nothing was scored because of a usage error, or with
``--fail-fast`` because of the first bad photograph.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from wdmt.archive.engines import Engine, EngineSpec
from wdmt.archive.inputs import Photo, expand
from wdmt.archive.outputs import ArchiveOut, FileOptions
from wdmt.archive.stream import Streamer, StreamOptions, Tally, check_all
from wdmt.errors import WdmtError

SOME_FAILED = 3
ENGINES = ("local", "ray")
__all__ = ["ENGINES", "SOME_FAILED", "EngineSpec", "FileOptions", "StreamOptions", "score_archive"]


def _record(engine: Engine, spec: EngineSpec, engine_name: str, n: int, skipped: int) -> dict[str, Any]:
    import numpy
    import PIL

    from wdmt import __version__

    versions = {"wdmt": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
                "pillow": PIL.__version__}
    if (torch := sys.modules.get("torch")) is not None:  # the ONNX path runs without it
        versions["torch"] = torch.__version__
    return {"versions": versions, "model_source": str(engine.source), "engine": engine_name,
            "device": str(getattr(engine, "device", "cpu")), "photographs_asked": n, "already_scored": skipped,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": platform.machine(), "argv": sys.argv}


def score_archive(spec: EngineSpec, images: Sequence[str | os.PathLike], out: str | os.PathLike,
                  opts: StreamOptions | None = None, engine: str = "local",
                  on_row: Callable[[dict[str, Any]], None] | None = None,
                  on_start: Callable[[int, int], None] | None = None, ray_actors: int | None = None,
                  ) -> dict[str, Any]:
    """Score every photograph ``images`` names into ``out``, skipping those already scored there by the same model
    and settings. ``on_start(to_score, skipped)`` is told before scoring begins, ``on_row`` each new row. Returns
    counts, stage seconds and the rows of every photograph asked for (earlier runs' too), in input order."""
    opts = opts or StreamOptions()
    if engine not in ENGINES:
        raise WdmtError(None, f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    photos = expand(images, skip=out)
    if not photos:
        raise WdmtError(None, "no photographs given")
    eng = spec.build()
    arch = ArchiveOut(out, eng.identity(), opts.files, {"draft": opts.draft})
    todo = [p for p in photos if str(p.path) not in arch.done]
    if on_start is not None:
        on_start(len(todo), len(photos) - len(todo))
    if opts.fail_fast:
        check_all(todo, eng.preprocess, opts.workers)
    record = _record(eng, spec, engine, len(photos), len(photos) - len(todo))
    arch.start(record)
    t0 = time.perf_counter()
    tally = _run(engine, eng, spec, arch, todo, opts, on_row, ray_actors)
    seconds = round(time.perf_counter() - t0, 3)
    summary = {"photographs": len(photos), "scored": tally.scored, "skipped": len(photos) - len(todo),
               "failed": tally.failed, "seconds": seconds, "stage_seconds": tally.seconds, "out": str(arch.root)}
    arch.finish({**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **{k: summary[k] for k in (
        "scored", "failed", "seconds", "stage_seconds")}})
    return {**summary, "rows": [arch.done[str(p.path)] for p in photos if str(p.path) in arch.done]}


def _run(engine: str, eng: Engine, spec: EngineSpec, arch: ArchiveOut, todo: list[Photo], opts: StreamOptions,
         on_row: Callable[[dict[str, Any]], None] | None, ray_actors: int | None) -> Tally:
    if engine == "ray":
        from wdmt.archive.ray_engine import run_on_ray

        return run_on_ray(spec, eng, arch, todo, opts, on_row, ray_actors)
    return Streamer(eng, arch, opts, on_row).run(todo)
