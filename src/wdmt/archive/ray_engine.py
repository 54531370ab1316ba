"""``wdmt predict --engine ray``: the same scoring as the local engine, spread over a Ray cluster with Ray Data.

A dataset of photograph paths goes through ``map_batches`` over a pool of actors; each actor loads the model once
(:class:`EngineSpec.build`) and decodes, scores and writes the files of its batches, exactly as
:mod:`wdmt.archive.stream` does. The rows come back to this process, which alone appends them to the tables and
``errors.csv``: resume and error rules are the local engine's. Without ``RAY_ADDRESS`` Ray starts on this machine;
with it, ``ray.init`` joins that cluster, whose workers must have wdmt installed and see the photographs and the
output folder at the same paths (a shared file system). Ray schedules; wdmt never does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from wdmt.archive.engines import Engine, EngineSpec
from wdmt.archive.inputs import Photo
from wdmt.archive.outputs import ArchiveOut, FileOptions
from wdmt.archive.stream import StreamOptions, Tally, draft_for, failure_reason, load, write
from wdmt.errors import WdmtError

CPUS_PER_ACTOR = 2


class ScoreActor:
    """One model on one Ray worker: a batch of paths in, one JSON row or one error per path out."""

    def __init__(self, spec: dict[str, Any], root: str, files: dict[str, Any], draft: bool, cpus: int) -> None:
        import torch

        torch.set_num_threads(max(1, cpus))
        self.engine = EngineSpec(**spec).build()
        self.root, self.files = Path(root), FileOptions(**files)
        self.draft = draft_for(self.engine.preprocess, self.files, draft)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        rows, errors, ready = [""] * len(batch["image"]), [""] * len(batch["image"]), []
        for i, (path, key) in enumerate(zip(batch["image"], batch["key"], strict=True)):
            try:
                ready.append((i, load(Photo(Path(str(path)), str(key)), self.engine.preprocess, self.files,
                                      self.draft)))
            except Exception as e:  # noqa: BLE001 - reported per photograph, as the local engine does
                errors[i] = failure_reason(e)
        scored = self.engine.score([item.picture for _, item in ready]) if ready else []
        for (i, item), (amap, score) in zip(ready, scored, strict=True):
            try:
                rows[i] = json.dumps(write(self.root, self.files, item, amap, score, self.engine.thresholds))
            except Exception as e:  # noqa: BLE001
                errors[i] = failure_reason(e)
        return {"image": [str(p) for p in batch["image"]], "row": rows, "error": errors}


def _connect(progress: bool) -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise WdmtError(None, "--engine ray needs Ray Data: pip install 'wdmt[ray]'") from e
    if not ray.is_initialized():  # RAY_ADDRESS set: join that cluster; unset: start Ray on this machine
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    return ray


def run_on_ray(spec: EngineSpec, engine: Engine, arch: ArchiveOut, todo: list[Photo], opts: StreamOptions,
               on_row: Callable[[dict[str, Any]], None] | None, actors: int | None) -> Tally:
    tally = Tally()
    if not todo:
        return tally
    ray = _connect(opts.progress)
    gpu = getattr(getattr(engine, "device", None), "type", "cpu") == "cuda"
    cluster = ray.cluster_resources()
    n = actors or max(1, int(cluster.get("GPU", 0)) if gpu else int(cluster.get("CPU", 1)) // CPUS_PER_ACTOR)
    absolute = {k: str(Path(v).resolve()) for k in ("run", "onnx") if (v := getattr(spec, k)) is not None}
    spec = replace(spec, **absolute)  # a worker's current folder is not this one's
    ds = ray.data.from_items([{"image": str(p.path), "key": p.key} for p in todo])
    ds = ds.map_batches(
        ScoreActor, batch_size=max(1, engine.photos_per_batch), batch_format="numpy",
        fn_constructor_kwargs={"spec": asdict(spec), "root": str(arch.root.resolve()), "files": asdict(opts.files),
                               "draft": opts.draft, "cpus": CPUS_PER_ACTOR},
        compute=ray.data.ActorPoolStrategy(size=n), num_cpus=CPUS_PER_ACTOR, num_gpus=1 if gpu else 0)
    for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for image, row, error in zip(b["image"], b["row"], b["error"], strict=True):
            _collect(arch, tally, str(image), str(row), str(error), opts.fail_fast, on_row)
    return tally


def _collect(arch: ArchiveOut, tally: Tally, image: str, row: str, error: str, fail_fast: bool,
             on_row: Callable[[dict[str, Any]], None] | None) -> None:
    if row:
        r = json.loads(row)
        arch.add(r)
        tally.scored += 1
        if on_row is not None:
            on_row(r)
        return
    if fail_fast:
        raise WdmtError(image, error)
    arch.error(Path(image), error)
    tally.failed += 1
