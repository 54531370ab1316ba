"""``wdmt data check``: what a dataset holds and everything wrong with it, before any training starts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wdmt.datasets import open_dataset
from wdmt.errors import WdmtError
from wdmt.io import read_array, read_image, read_mask
from wdmt.preprocess import MIN_SIDE, detect_fov


def _check_masks(s: Any, h: int, w: int, problems: list[str], warnings: list[str]) -> np.ndarray | None:
    """Every mask of one sample against its image's size and values; the lesion union, or None if a mask is bad."""
    union = np.zeros((h, w), bool)
    ok = True
    for m in (*s.masks, *([s.fov_mask] if s.fov_mask else [])):
        try:
            arr = read_array(m)
        except WdmtError as e:
            problems.append(str(e))
            ok = False
            continue
        if arr.shape[:2] != (h, w):
            problems.append(f"{m}: mask is {arr.shape[1]} x {arr.shape[0]} but its image {s.image.name} is {w} x {h}")
            ok = False
            continue
        vals = set(np.unique(arr if arr.ndim == 2 else arr.max(axis=2)).tolist())
        if not vals <= {0, 255} and not vals <= {0, 1}:
            warnings.append(f"{m}: mask has {len(vals)} grey values, not only 0 and 255; any value > 0 counts")
        if m != s.fov_mask:
            union |= read_mask(m, inverted=s.masks_inverted)
    return union if ok else None


def _check_image(s: Any, problems: list[str], warnings: list[str], sizes: Counter[str]) -> float | None:
    """One sample: readable, big enough, a field of view, sound masks. Returns its lesion coverage in per cent
    (abnormal images with masks only)."""
    try:
        rgb = read_image(s.image)
    except WdmtError as e:
        problems.append(str(e))
        return None
    h, w = rgb.shape[:2]
    sizes[f"{w}x{h}"] += 1
    if min(h, w) < MIN_SIDE:
        problems.append(f"{s.image}: image is {w} x {h}: too small for a fundus photograph (at least {MIN_SIDE} px "
                        "a side)")
    elif not detect_fov(rgb).any():
        problems.append(f"{s.image}: no field of view found: the image is (nearly) all dark")
    union = _check_masks(s, h, w, problems, warnings)
    if s.label != 1 or not s.masks or union is None:
        return None  # an abnormal image without masks (e.g. HRF) still serves image-level evaluation
    if not union.any():
        warnings.append(f"{s.image}: abnormal image whose lesion mask is empty")
    return 100.0 * union.mean()


def check_dataset(root: str | Path, format: str = "auto", seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Read every image and mask once; return counts, sizes, coverage, problems (fatal) and warnings."""
    root = Path(root)
    try:
        idx = open_dataset(root, format=format, seed=seed)
    except WdmtError as e:
        return {"format": format, "root": str(root), "counts": {"normal": 0, "abnormal": 0, "masks": 0},
                "problems": [str(e)], "warnings": [], "usable": False}
    problems, warnings = list(idx.problems), list(idx.warnings)
    sizes: Counter[str] = Counter()
    coverage = []
    for s in tqdm(idx.samples, desc="data check", unit="img", disable=None if progress else True):
        cov = _check_image(s, problems, warnings, sizes)
        if cov is not None:
            coverage.append(cov)
    if not idx.split("train"):
        warnings.append(f"{root}: no normal training image: this data can only be used for evaluation")
    counts = idx.counts()
    cov_stats = ({"mean": float(np.mean(coverage)), "min": float(np.min(coverage)), "max": float(np.max(coverage))}
                 if coverage else None)
    return {"format": idx.format, "root": str(root), "counts": counts["total"],
            "splits": {k: v for k, v in counts.items() if k != "total"}, "image_sizes": dict(sizes.most_common()),
            "mask_coverage_percent": cov_stats, "problems": problems, "warnings": warnings, "usable": not problems}


def format_report(r: dict[str, Any]) -> str:
    """The report as a few lines for a terminal."""
    c = r["counts"]
    lines = [
        f"{r['root']} ({r['format']}): {c['normal']} normal, {c['abnormal']} abnormal, {c['masks']} with lesion masks"
    ]
    for split, v in r.get("splits", {}).items():
        lines.append(f"  {split:5s}: {v['normal']} normal, {v['abnormal']} abnormal, {v['masks']} masks")
    if r.get("image_sizes"):
        lines.append("  sizes: " + ", ".join(f"{k} ({v})" for k, v in r["image_sizes"].items()))
    cov = r.get("mask_coverage_percent")
    if cov:
        lines.append(
            f"  lesion pixels per masked image: mean {cov['mean']:.2f} %, min {cov['min']:.2f} %, max "
            f"{cov['max']:.2f} %"
        )
    lines += [f"  warning: {w}" for w in r["warnings"]]
    lines.append("  usable" if r["usable"] else f"  NOT usable: {len(r['problems'])} problem(s)")
    return "\n".join(lines)
