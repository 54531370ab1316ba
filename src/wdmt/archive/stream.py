"""Score photographs as a stream: decoding and file writing in worker threads, the model on the calling thread.

At most a few photographs are in memory at any time (those being decoded, the batch being scored, those being
written), whatever the number asked for. On request (``draft``) a JPEG larger than the model needs is decoded at a
reduced DCT scale (Pillow's ``draft``): the model sees S x S pixels, so decoding 12 MP to throw most away is waste.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from wdmt.archive.engines import Engine
from wdmt.archive.inputs import Photo
from wdmt.archive.outputs import ArchiveOut, FileOptions, file_paths, overlay_picture, save_npy, save_picture
from wdmt.errors import WdmtError
from wdmt.io import read_photo
from wdmt.preprocess import Prepared, PreprocessConfig, prepare
from wdmt.scoring import prediction_row

CROP_MARGIN = 1.6  # a crop to the field of view keeps ~0.6 of the frame's side: decode that much larger


@dataclass(frozen=True)
class StreamOptions:
    """``workers``: decoding and writing threads (0: everything on the calling thread, one step after another);
    ``draft``: decode JPEGs at a reduced scale where the model and the overlay need fewer pixels (off by default:
    the shipped model's image score moves by more than resampling noise should move it, see docs/usage.md);
    ``fail_fast``: the first photograph that cannot be scored stops the run before anything is written."""

    files: FileOptions = field(default_factory=FileOptions)
    workers: int = 2
    draft: bool = False
    fail_fast: bool = False
    progress: bool = True


@dataclass
class Loaded:
    """A photograph ready for the model: its prepared picture, the photograph at the overlay's size, its size."""

    photo: Photo
    picture: Prepared
    base: np.ndarray | None
    size: tuple[int, int]  # (width, height) as stored
    seconds: dict[str, float]


def draft_for(pre: PreprocessConfig, files: FileOptions, enabled: bool = True) -> tuple[int, int] | None:
    """(shorter, longer) side the decoded photograph needs: S for the model (more where it crops to the field of
    view), the overlay's size for the overlay; None (decode whole) when the overlay is asked at full size."""
    if not enabled or (files.overlays and files.overlay_size <= 0):
        return None
    need = int(np.ceil(pre.size * (CROP_MARGIN if pre.crop_fov else 1.0)))
    return need, max(need, files.overlay_size if files.overlays else 0)


def load(photo: Photo, pre: PreprocessConfig, files: FileOptions, draft: tuple[int, int] | None) -> Loaded:
    t0 = time.perf_counter()
    rgb, size = read_photo(photo.path, draft)
    t1 = time.perf_counter()
    picture = prepare(rgb, pre, source=str(photo.path))
    t2 = time.perf_counter()
    base = None
    if files.overlays:
        f = min(1.0, files.overlay_size / max(rgb.shape[:2])) if files.overlay_size > 0 else 1.0
        base = rgb if f >= 1.0 else np.asarray(Image.fromarray(rgb).resize(
            (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f))), Image.BILINEAR))
    return Loaded(photo, picture, base, size, {"decode": t1 - t0, "prepare": t2 - t1,
                                               "overlay_base": time.perf_counter() - t2})


def write(root: Path, files: FileOptions, item: Loaded, amap: np.ndarray, score: float,
          thresholds: dict[str, Any]) -> dict[str, Any]:
    """The photograph's files, each written whole, then its row (returned, not yet in the tables)."""
    paths = file_paths(root, files, item.photo.key)
    geom, frame = item.picture.geometry, item.picture.original_size
    if paths["overlay"] is not None:
        h, w = item.base.shape[:2]
        level = geom.to_frame(amap, frame, (w, h)) / max(2 * thresholds["pixel_threshold"], 1e-6)
        save_picture(overlay_picture(item.base, level), paths["overlay"])
    if paths["map"] is not None:
        save_npy(amap.astype(np.float16), paths["map"])
    if paths["mask"] is not None:
        mask = geom.to_frame(amap, frame, item.size) >= thresholds["pixel_threshold"]
        save_picture(mask.astype(np.uint8) * 255, paths["mask"])
    row = prediction_row(item.photo.path, score, amap, thresholds, paths["overlay"])
    row.update({k: None if paths[k] is None else str(paths[k]) for k in ("map", "mask")})
    row.update({"width": item.size[0], "height": item.size[1]})
    return row


class _Inline:
    """An executor that runs each job at once on the calling thread (``workers=0``: the serial baseline)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - handed to whoever reads the future, as a pool would
            f.set_exception(e)
        return f

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def failure_reason(e: BaseException) -> str:
    """One line for errors.csv: a WdmtError's own reason, else the exception's type and first line."""
    if isinstance(e, WdmtError):
        return e.reason
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}".rstrip(": ")


@dataclass
class Tally:
    scored: int = 0
    failed: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "prepare": 0.0, "overlay_base": 0.0,
                                                               "model": 0.0, "write": 0.0})


def check_all(photos: list[Photo], pre: PreprocessConfig, workers: int) -> None:
    """``--fail-fast``: decode and prepare every photograph once, before anything is written; the first that fails
    is the error (files are read again when scored: the price of all-or-nothing)."""
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        for photo, fut in zip(photos, pool.map(_check_one, photos, [pre] * len(photos)), strict=True):
            if fut is not None:
                raise WdmtError(photo.path, fut)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_one(photo: Photo, pre: PreprocessConfig) -> str | None:
    no_files = FileOptions(overlays=False)
    try:
        load(photo, pre, no_files, draft_for(pre, no_files))
    except Exception as e:  # noqa: BLE001 - reported by the caller, named by its file
        return failure_reason(e)
    return None


class Streamer:
    """One pass over the photographs still to score: loads ahead in the pool, scores batches on this thread,
    writes in the pool and appends each row, in input order, once its files are whole."""

    def __init__(self, engine: Engine, out: ArchiveOut, opts: StreamOptions,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.engine, self.out, self.opts, self.on_row = engine, out, opts, on_row
        self.draft = draft_for(engine.preprocess, opts.files, opts.draft)
        self.pool: Any = ThreadPoolExecutor(opts.workers) if opts.workers > 0 else _Inline()
        self.tally = Tally()
        self.writes: deque[tuple[Photo, Future]] = deque()
        self.lock = threading.Lock()

    def run(self, photos: list[Photo]) -> Tally:
        batch = max(1, self.engine.photos_per_batch)
        ahead = max(2, self.opts.workers) + batch  # loads in flight: enough to keep the model fed, no more
        todo: Iterator[Photo] = iter(photos)
        loads: deque[tuple[Photo, Future]] = deque()
        bar = tqdm(total=len(photos), desc="scoring", unit="photo", disable=None if self.opts.progress else True)
        try:
            self._top_up(loads, todo, ahead)
            while loads:
                ready = self._take(loads, batch, bar)
                self._top_up(loads, todo, ahead)
                if ready:
                    self._score(ready)
                self._drain(keep=max(1, self.opts.workers), bar=bar)
            self._drain(keep=0, bar=bar)
        finally:
            bar.close()
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.tally

    def _top_up(self, loads: deque, todo: Iterator[Photo], ahead: int) -> None:
        while len(loads) < ahead and (p := next(todo, None)) is not None:
            loads.append((p, self.pool.submit(load, p, self.engine.preprocess, self.opts.files, self.draft)))

    def _take(self, loads: deque, n: int, bar: tqdm) -> list[Loaded]:
        ready = []
        while loads and len(ready) < n:
            photo, fut = loads.popleft()
            try:
                item = fut.result()
            except Exception as e:  # noqa: BLE001 - one unreadable photograph must not stop an archive
                self._failed(photo, e, bar)
                continue
            for k, v in item.seconds.items():
                self.tally.seconds[k] += v
            ready.append(item)
        return ready

    def _score(self, ready: list[Loaded]) -> None:
        t0 = time.perf_counter()
        try:
            scored = self.engine.score([r.picture for r in ready])
        finally:
            self.tally.seconds["model"] += time.perf_counter() - t0
        for item, (amap, score) in zip(ready, scored, strict=True):
            self.writes.append((item.photo, self.pool.submit(self._timed_write, item, amap, score)))

    def _timed_write(self, item: Loaded, amap: np.ndarray, score: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        row = write(self.out.root, self.opts.files, item, amap, score, self.engine.thresholds)
        with self.lock:
            self.tally.seconds["write"] += time.perf_counter() - t0
        return row

    def _drain(self, keep: int, bar: tqdm) -> None:
        while len(self.writes) > keep or (self.writes and self.writes[0][1].done()):
            photo, fut = self.writes.popleft()
            try:
                row = fut.result()
            except Exception as e:  # noqa: BLE001 - a disk error on one photograph is reported like a bad file
                self._failed(photo, e, bar)
                continue
            self.out.add(row)
            self.tally.scored += 1
            bar.update(1)
            if self.on_row is not None:
                self.on_row(row)

    def _failed(self, photo: Photo, e: BaseException, bar: tqdm) -> None:
        if self.opts.fail_fast:
            raise WdmtError(photo.path, failure_reason(e)) from e
        self.out.error(photo.path, failure_reason(e))
        self.tally.failed += 1
        bar.update(1)
