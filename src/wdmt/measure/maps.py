"""Seam and rim ratios of a run's maps on its validation normals: the artefact figures of benchmarks/map_artifacts.py,
shared with the scripts that report them beside other figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from wdmt.evaluate import infer
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir


def band_masks(size: int, n: int, fov: np.ndarray) -> dict[str, np.ndarray]:
    """Boundary pixels, pixels 8-16 px from a boundary, the 10 px rim band and the interior, all inside the FOV."""
    k = size / 768
    t = size // n
    idx = np.arange(size)
    d = np.min(np.abs(idx[:, None] - np.array([b * t - 0.5 for b in range(1, n)])[None, :]), axis=1)
    d_row, d_col = d[:, None], d[None, :]
    dist = np.minimum(np.broadcast_to(d_row, (size, size)), np.broadcast_to(d_col, (size, size)))
    seam = (dist <= max(1.0, 2 * k)) & fov  # bands never thinner than a pixel on small pictures
    near = (dist >= max(3.0, 8 * k)) & (dist <= max(6.0, 16 * k)) & fov
    inner = ndimage.binary_erosion(fov, iterations=max(1, round(10 * k)), border_value=1)
    return {"seam": seam, "near": near, "rim": fov & ~inner, "interior": inner}


def artifact_ratios(results: list, ev) -> dict[str, float]:
    sums = {k: 0.0 for k in ("seam", "near", "rim", "interior")}
    counts = dict.fromkeys(sums, 0)
    for r in results:
        m, fov = r.map(ev), r.item.prepared.fov
        for k, mask in band_masks(m.shape[0], 3, fov).items():
            sums[k] += float(m[mask].sum())
            counts[k] += int(mask.sum())
    mean = {k: sums[k] / max(counts[k], 1) for k in sums}
    return {"seam_ratio": mean["seam"] / mean["near"], "rim_ratio": mean["rim"] / mean["interior"],
            "mean_map": mean["interior"]}


def validation_normals(rd: RunDir, cfg) -> list:
    return load_samples(rd.reference_normals("the artefact figures")[0], cfg.preprocess, None, progress=False)


def run_ratios(run: Path) -> dict[str, float]:
    """Seam and rim ratios of a run's maps as it evaluates itself, on its validation normals."""
    rd = RunDir(run)
    model, cfg = rd.load_model()
    return artifact_ratios(infer(model, validation_normals(rd, cfg), cfg), cfg.eval)
