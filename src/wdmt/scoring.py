"""From a raw residual map to the evaluated map, the image score and the overlay picture (no torch needed).

Shared by evaluation, ``predict`` and the torch-free ONNX deployment, so every path scores a photograph the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from wdmt.config import EvalConfig


def postprocess_map(raw: np.ndarray, fov: np.ndarray, ev: EvalConfig) -> np.ndarray:
    """Optional Gaussian smoothing, then zero outside the field of view for the ``zero`` and ``inside`` modes."""
    m = raw
    if ev.smooth_sigma > 0:
        m = ndimage.gaussian_filter(m, ev.smooth_sigma)
    if ev.fov in ("zero", "inside"):
        m = m * fov
    return m


def image_score(m: np.ndarray, fov: np.ndarray, ev: EvalConfig, latent: np.ndarray | None = None) -> float:
    """``topk``: mean of the top fraction of the map; ``max``; ``gatingano``: std (ddof 1) of per-tile latent distances."""
    if ev.score == "gatingano":
        return float(np.std(latent, ddof=1)) if latent is not None and latent.size > 1 else 0.0
    vals = m[fov] if ev.fov == "inside" else m.ravel()
    if ev.score == "max":
        return float(vals.max())
    k = max(1, int(round(vals.size * ev.topk_fraction)))
    return float(np.partition(vals, vals.size - k)[-k:].mean())


def write_overlay(rgb: np.ndarray, amap: np.ndarray, vmax: float, path: Path) -> Path:
    """The heat map up-sampled to the photograph's own size and blended over it (inferno), written atomically."""
    import matplotlib

    h, w = rgb.shape[:2]
    big = np.asarray(Image.fromarray(amap.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    level = np.clip(big / max(vmax, 1e-6), 0, 1)
    heat = matplotlib.colormaps["inferno"](level)[..., :3]
    alpha = level[..., None] * 0.75
    overlay = (rgb / 255.0 * (1 - alpha) + heat * alpha) * 255
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(overlay.astype(np.uint8)).save(tmp)
    os.replace(tmp, path)
    return path


def append_predictions(out: Path, rows: list[dict]) -> None:
    """Append one JSON line and one CSV row per scored photograph (``predictions.jsonl``, ``predictions.csv``)."""
    import csv
    import json

    if not rows:
        return
    with open(out / "predictions.jsonl", "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    new = not (out / "predictions.csv").exists()
    with open(out / "predictions.csv", "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)


def prediction_row(image: Path, score: float, amap: np.ndarray, thresholds: dict, overlay: Path) -> dict:
    """What ``predict`` reports for one photograph, whichever engine scored it."""
    return {"image": str(image), "score": score, "threshold": thresholds["image_threshold"],
            "decision": "abnormal" if score >= thresholds["image_threshold"] else "normal",
            "lesion_pixels_percent": float(100 * (amap >= thresholds["pixel_threshold"]).mean()),
            "overlay": str(overlay)}
