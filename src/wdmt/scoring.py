"""From a raw residual map to the evaluated map, the image score and a photograph's row (no torch needed).

Shared by evaluation, ``predict`` and the torch-free ONNX deployment, so every path scores a photograph the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from wdmt.config import EvalConfig
from wdmt.errors import WdmtError


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


def prediction_row(image: Path, score: float, amap: np.ndarray, thresholds: dict, overlay: Path | None) -> dict:
    """What ``predict`` reports for one photograph, whichever engine scored it: the image score, the threshold it is
    decided at, the decision, and the share of the map's S x S pixels at or above the pixel threshold."""
    return {"image": str(image), "score": score, "threshold": thresholds["image_threshold"],
            "decision": "abnormal" if score >= thresholds["image_threshold"] else "normal",
            "lesion_pixels_percent": float(100 * (amap >= thresholds["pixel_threshold"]).mean()),
            "threshold_rule": thresholds.get("rule"), "overlay": None if overlay is None else str(overlay)}
