"""HOG pictures: the auxiliary targets WDMT-Net learns to predict (method-spec 1.2.3).

``skimage.feature.hog(visualize=True)`` on the S x S grey picture, 9 orientations, 1 x 1 cell blocks, at cell
sizes 4, 8 and 16. Only the visualisation is kept, min-max scaled per picture and quantised to uint8 as the
official code's PNGs were. The visualisation is a pure-Python loop (1.5 s for 4 px cells at 768), so targets are
cached on disk keyed by the picture's content hash and every parameter, and computed in worker processes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from skimage.feature import hog
from tqdm.auto import tqdm

from wdmt.atomic import atomic_path

CACHE_VERSION = 1


@dataclass(frozen=True)
class HogConfig:
    """HOG target parameters (paper: cells 4, 8, 16; 9 orientations; 1 x 1 blocks)."""

    cells: tuple[int, ...] = (4, 8, 16)
    orientations: int = 9
    cells_per_block: int = 1


def hog_picture(gray: np.ndarray, cell: int, orientations: int = 9, cells_per_block: int = 1) -> np.ndarray:
    """One HOG visualisation of a uint8 grey picture, min-max scaled per picture to uint8 [0, 255]."""
    _, vis = hog(
        gray,
        orientations=orientations,
        pixels_per_cell=(cell, cell),
        cells_per_block=(cells_per_block, cells_per_block),
        block_norm="L2",
        visualize=True,
    )
    lo, hi = float(vis.min()), float(vis.max())
    if hi <= lo:
        return np.zeros(gray.shape, np.uint8)
    return np.round((vis - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def hog_targets(gray: np.ndarray, cfg: HogConfig = HogConfig()) -> np.ndarray:
    """All cell sizes for one picture: uint8 (len(cells), S, S)."""
    return np.stack([hog_picture(gray, c, cfg.orientations, cfg.cells_per_block) for c in cfg.cells])


def cache_key(gray: np.ndarray, cfg: HogConfig) -> str:
    """Content hash of the picture plus every parameter that changes the result."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{gray.shape}|{gray.dtype}|{sorted(asdict(cfg).items())}".encode())
    h.update(np.ascontiguousarray(gray).tobytes())
    return h.hexdigest()[:32]


@dataclass
class HogCache:
    """A folder of ``<key>.npy`` uint8 target stacks; safe to share between processes (atomic writes)."""

    root: Path
    cfg: HogConfig = field(default_factory=HogConfig)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def path(self, gray: np.ndarray) -> Path:
        return self.root / f"{cache_key(gray, self.cfg)}.npy"

    def get(self, gray: np.ndarray) -> np.ndarray:
        """Targets for one picture, computed and stored on a miss."""
        p = self.path(gray)
        if p.exists():
            try:
                return np.load(p, allow_pickle=False)
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed
        t = hog_targets(gray, self.cfg)
        with atomic_path(p) as tmp, open(tmp, "wb") as f:
            np.save(f, t, allow_pickle=False)
        return t

    def get_many(
        self, grays: Sequence[np.ndarray], workers: int | None = None, progress: bool = True
    ) -> list[np.ndarray]:
        """Targets for many pictures; misses are computed in ``workers`` processes (default: all cores)."""
        out: list[np.ndarray | None] = [None] * len(grays)
        todo = []
        for i, g in enumerate(grays):
            if self.path(g).exists():
                out[i] = self.get(g)
            else:
                todo.append(i)
        workers = min(workers or os.cpu_count() or 1, len(todo))
        bar = tqdm(total=len(todo), desc="HOG targets", unit="img", disable=None if progress and todo else True)
        if workers <= 1:
            for i in todo:
                out[i] = self.get(grays[i])
                bar.update()
        else:
            # spawn, not fork: the caller may hold torch / gloo threads that a forked child would inherit stuck
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {i: pool.submit(_cache_get, self.root, self.cfg, grays[i]) for i in todo}
                for i, fut in futures.items():
                    out[i] = fut.result()
                    bar.update()
        bar.close()
        return out  # type: ignore[return-value]


def _cache_get(root: Path, cfg: HogConfig, gray: np.ndarray) -> np.ndarray:
    return HogCache(root, cfg).get(gray)


def default_cache_dir() -> Path:
    """``$WDMT_CACHE`` or ``~/.cache/wdmt``: where HOG targets live between runs."""
    env = os.environ.get("WDMT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "wdmt"
