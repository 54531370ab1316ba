"""Pixel- and image-level metrics, vectorised for pools of ~16 M pixels.

One descending sort gives the whole ROC, Youden's J threshold, average precision and AUPRO, so the paper protocol
over 27 images x 9 tiles x 256 x 256 pixels runs in seconds. Each function is tested against scikit-learn (and
AUPRO against a brute-force per-threshold reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Curve:
    """ROC / PR points at every distinct score, descending thresholds (``thresholds[i]`` classifies s >= it)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def tpr(self) -> np.ndarray:
        return self.tp / max(self.n_pos, 1)

    @property
    def fpr(self) -> np.ndarray:
        return self.fp / max(self.n_neg, 1)


def _floats(a: np.ndarray) -> np.ndarray:
    """float32 maps stay float32: sorting them is exact and faster than float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _descending(s: np.ndarray) -> np.ndarray:
    """Order of a descending sort. Not stable, and need not be: every curve is read only at the last index of each
    run of equal scores, where the counts do not depend on the order inside the run, so numpy's faster unstable sort
    will do (docs/performance.md, Data path and metrics)."""
    return np.argsort(-s)


def _sorted(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = _floats(scores).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    order = _descending(s)
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each run of equal scores
    return s, y, last


def curve(scores: np.ndarray, labels: np.ndarray) -> Curve:
    """Cumulative counts at each distinct score (like sklearn's roc_curve without dropping points)."""
    s, y, last = _sorted(scores, labels)
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return Curve(s[last], tp, fp, int(y.sum()), int(y.size - y.sum()))


def auroc(c: Curve) -> float:
    if c.n_pos == 0 or c.n_neg == 0:
        return float("nan")
    fpr = np.r_[0.0, c.fpr]
    tpr = np.r_[0.0, c.tpr]
    return float(np.trapezoid(tpr, fpr))


def average_precision(c: Curve) -> float:
    """Step-wise AP as sklearn's average_precision_score: sum over thresholds of (R_k - R_{k-1}) * P_k."""
    if c.n_pos == 0:
        return float("nan")
    precision = c.tp / (c.tp + c.fp)
    recall = c.tp / c.n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_dice_threshold(c: Curve) -> float:
    """The score threshold (predict positive at score >= it) with the highest Dice, 2 TP / (2 TP + FP + FN)."""
    dice = 2 * c.tp / np.maximum(2 * c.tp + c.fp + (c.n_pos - c.tp), 1)
    return float(c.thresholds[int(np.argmax(dice))])


def youden_threshold(c: Curve) -> float:
    """The threshold maximising TPR - FPR (ties: the first, i.e. highest, as argmax over sklearn's roc_curve)."""
    return float(c.thresholds[int(np.argmax(c.tpr - c.fpr))])


def confusion(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, int]:
    pred = np.asarray(scores).ravel() >= threshold
    y = np.asarray(labels).ravel().astype(bool)
    tp = int(np.count_nonzero(pred & y))
    fp = int(np.count_nonzero(pred & ~y))
    fn = int(np.count_nonzero(~pred & y))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(y.size - tp - fp - fn)}


def at_threshold(cm: dict[str, int]) -> dict[str, float]:
    """Balanced accuracy, micro-F1 (= accuracy, what the paper called F1), lesion-class F1 (Dice), TPR, TNR."""
    tp, fp, fn, tn = cm["tp"], cm["fp"], cm["fn"], cm["tn"]
    tpr = tp / (tp + fn) if tp + fn else float("nan")
    tnr = tn / (tn + fp) if tn + fp else float("nan")
    total = tp + fp + fn + tn
    return {
        "balanced_accuracy": float(np.nanmean([tpr, tnr])),
        "f1_micro": (tp + tn) / total if total else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
        "tpr": tpr,
        "tnr": tnr,
    }


def aupro(
    scores: list[np.ndarray], masks: list[np.ndarray], max_fpr: float = 0.3, valid: list[np.ndarray] | None = None
) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, normalised to [0, 1] (MVTec AD's AUPRO).

    Each connected lesion region (8-connectivity) weighs the same whatever its size; the FPR counts every negative
    pixel of every image. ``valid`` (per image, bool) drops pixels from the pool (e.g. outside the field of view).
    Exact: one sort over all pixels, PRO and FPR accumulated along it.
    """
    flat_s, weights, negs = [], [], []
    n_regions = 0
    for i, (s, m) in enumerate(zip(scores, masks, strict=True)):
        keep = np.ones(m.shape, bool) if valid is None else valid[i]
        m = m & keep
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        w = np.zeros(m.shape, np.float64)
        if n:
            sizes = np.bincount(lab.ravel())
            w = np.where(lab > 0, 1.0 / sizes[lab], 0.0)
        n_regions += n
        flat_s.append(_floats(s)[keep])
        weights.append(w[keep])
        negs.append(~m[keep])
    if n_regions == 0:
        return float("nan")
    s = np.concatenate(flat_s)
    w = np.concatenate(weights) / n_regions
    neg = np.concatenate(negs)
    order = _descending(s)
    s, w, neg = s[order], w[order], neg[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    pro = np.r_[0.0, np.cumsum(w)[last]]
    fpr = np.r_[0.0, np.cumsum(neg)[last] / max(int(neg.sum()), 1)]
    cut = np.searchsorted(fpr, max_fpr, side="right")
    x = np.r_[fpr[:cut], max_fpr]
    y = np.r_[pro[:cut], np.interp(max_fpr, fpr, pro)]
    return float(np.trapezoid(y, x) / max_fpr)


def histogram_auroc(pos_hist: np.ndarray, neg_hist: np.ndarray) -> float:
    """AUROC from score histograms over shared bins (ties within a bin count half): for fast bootstraps."""
    p, n = pos_hist.sum(), neg_hist.sum()
    if p == 0 or n == 0:
        return float("nan")
    neg_below = np.cumsum(neg_hist) - neg_hist
    return float((pos_hist * (neg_below + 0.5 * neg_hist)).sum() / (p * n))


def bootstrap_ci(
    values_fn, n_items: int, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile interval of ``values_fn(indices)`` over resamples of ``n_items`` items with replacement."""
    if n_items < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    vals = [values_fn(rng.integers(0, n_items, n_items)) for _ in range(n_boot)]
    vals = [v for v in vals if np.isfinite(v)]
    if not vals:
        return (float("nan"), float("nan"))
    return float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))


def auroc_ap(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """AUROC and AP of positive scores against negative ones; NaN for both where either side is empty."""
    if not len(pos) or not len(neg):
        return float("nan"), float("nan")
    c = curve(np.concatenate([pos, neg]), np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    return auroc(c), average_precision(c)
