"""From a raw residual map to the evaluated map, the image score and the overlay picture (no torch needed).

Shared by evaluation, ``predict`` and the torch-free ONNX deployment, so every path scores a photograph the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from wdmt.atomic import atomic_path, read_csv, write_csv_atomic, write_text_atomic
from wdmt.config import EvalConfig
from wdmt.errors import WdmtError
from wdmt.preprocess import Geometry


def postprocess_map(raw: np.ndarray, fov: np.ndarray, ev: EvalConfig) -> np.ndarray:
    """Optional Gaussian smoothing, then zero outside the field of view for the ``zero`` and ``inside`` modes."""
    m = raw
    if ev.smooth_sigma > 0:
        m = ndimage.gaussian_filter(m, ev.smooth_sigma)
    if ev.fov in ("zero", "inside"):
        m = m * fov
    return m


def image_score(m: np.ndarray, fov: np.ndarray, ev: EvalConfig, latent: np.ndarray | None = None,
                own: np.ndarray | None = None) -> float:
    """``topk``: mean of the top fraction of the map; ``max``; ``gatingano``: std (ddof 1) of per-tile latent
    distances; ``model``: the highest of the model's own per-tile scores. The last two need what only the torch
    model reports (``latent``, ``own``): asked for without it, they are an error, never a silent constant."""
    if ev.score == "gatingano":
        if latent is None or latent.size < 2:
            raise WdmtError(None, "image score 'gatingano' needs per-tile latent distances, which this model or "
                            "engine does not report (WDMT-Net under torch does)")
        return float(np.std(latent, ddof=1))
    if ev.score == "model":
        if own is None or own.size == 0:
            raise WdmtError(None, "image score 'model' needs the model's own per-tile scores, which only the torch "
                            "model reports (not an exported ONNX graph)")
        return float(own.max())
    vals = m[fov] if ev.fov == "inside" else m.ravel()
    if ev.score == "max":
        return float(vals.max())
    k = max(1, int(round(vals.size * ev.topk_fraction)))
    return float(np.partition(vals, vals.size - k)[-k:].mean())


def write_overlay(rgb: np.ndarray, amap: np.ndarray, geometry: Geometry, vmax: float, path: Path) -> Path:
    """The heat map carried back to the photograph's own frame and blended over it (inferno), written atomically."""
    import matplotlib

    big = geometry.to_frame(amap, (rgb.shape[1], rgb.shape[0]))
    level = np.clip(big / max(vmax, 1e-6), 0, 1)
    heat = matplotlib.colormaps["inferno"](level)[..., :3]
    alpha = level[..., None] * 0.75
    overlay = (rgb / 255.0 * (1 - alpha) + heat * alpha) * 255
    with atomic_path(path) as tmp:
        Image.fromarray(overlay.astype(np.uint8)).save(tmp)
    return path


def append_predictions(out: Path, rows: list[dict]) -> None:
    """Add one JSON line and one CSV row per scored photograph to ``predictions.jsonl`` and ``predictions.csv``.

    Both files are rewritten whole through :func:`wdmt.atomic.atomic_path`, not appended to, so a run killed while
    writing leaves the previous rows intact."""
    import json

    if not rows:
        return
    jsonl = out / "predictions.jsonl"
    old = jsonl.read_text(encoding="utf-8") if jsonl.exists() else ""
    write_text_atomic(jsonl, old + "".join(json.dumps(r) + "\n" for r in rows))
    table = out / "predictions.csv"
    previous = read_csv(table) if table.exists() else []
    fields = list(previous[0]) if previous else []
    fields += [k for r in rows for k in r if k not in fields]
    write_csv_atomic(table, [*previous, *rows], list(dict.fromkeys(fields)))


def prediction_row(image: Path, score: float, amap: np.ndarray, thresholds: dict, overlay: Path) -> dict:
    """What ``predict`` reports for one photograph, whichever engine scored it."""
    return {"image": str(image), "score": score, "threshold": thresholds["image_threshold"],
            "decision": "abnormal" if score >= thresholds["image_threshold"] else "normal",
            "lesion_pixels_percent": float(100 * (amap >= thresholds["pixel_threshold"]).mean()),
            "threshold_rule": thresholds.get("rule"), "overlay": str(overlay)}
