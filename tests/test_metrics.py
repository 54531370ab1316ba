from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, roc_auc_score, roc_curve

from wdmt import metrics as M


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.1
    s = np.round(rng.random(3000) + 0.6 * y, 2)  # ties on purpose
    return s, y


def test_auroc_ap_match_sklearn(toy):
    s, y = toy
    c = M.curve(s, y)
    assert M.auroc(c) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(c) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_youden_and_threshold_metrics_match_sklearn(toy):
    s, y = toy
    fpr, tpr, th = roc_curve(y, s)
    t = M.youden_threshold(M.curve(s, y))
    assert t == th[np.argmax(tpr - fpr)]
    pred = s >= t
    r = M.at_threshold(M.confusion(s, y, t))
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert r["f1_micro"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert r["f1"] == pytest.approx(f1_score(y, pred))


def test_histogram_auroc_close_to_exact(toy):
    s, y = toy
    bins = np.linspace(0, s.max(), 4097)
    a = M.histogram_auroc(np.histogram(s[y], bins)[0], np.histogram(s[~y], bins)[0])
    assert a == pytest.approx(roc_auc_score(y, s), abs=2e-3)


def _aupro_brute(scores, masks, max_fpr=0.3):
    """Reference: for each distinct threshold compute PRO and FPR directly, then integrate to max_fpr."""
    ths = np.unique(np.concatenate([s.ravel() for s in scores]))[::-1]
    fprs, pros = [0.0], [0.0]
    neg_total = sum((~m).sum() for m in masks)
    for t in ths:
        overlaps, fp = [], 0
        for s, m in zip(scores, masks, strict=True):
            pred = s >= t
            lab, n = ndimage.label(m, structure=np.ones((3, 3)))
            overlaps += [(pred & (lab == k)).sum() / (lab == k).sum() for k in range(1, n + 1)]
            fp += (pred & ~m).sum()
        fprs.append(fp / neg_total)
        pros.append(np.mean(overlaps))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs <= max_fpr
    x = np.r_[fprs[keep], max_fpr]
    yv = np.r_[pros[keep], np.interp(max_fpr, fprs, pros)]
    return np.trapezoid(yv, x) / max_fpr


def test_aupro_matches_brute_force():
    rng = np.random.default_rng(1)
    scores, masks = [], []
    for _ in range(3):
        m = np.zeros((20, 20), bool)
        m[2:5, 3:9] = True
        m[12:14, 12:13] = True
        m[rng.integers(0, 20), rng.integers(0, 20)] = True
        s = np.round(rng.random((20, 20)) + 0.5 * m, 2)
        scores.append(s)
        masks.append(m)
    assert M.aupro(scores, masks) == pytest.approx(_aupro_brute(scores, masks), abs=1e-9)


def test_aupro_perfect_and_valid_mask():
    m = np.zeros((10, 10), bool)
    m[3:5, 3:5] = True
    assert M.aupro([m.astype(float)], [m]) == pytest.approx(1.0)
    valid = np.ones_like(m)
    valid[:, 8:] = False
    s = m.astype(float)
    s[:, 8:] = 5.0  # huge scores outside the valid area must not count
    assert M.aupro([s], [m], valid=[valid]) == pytest.approx(1.0)
    assert M.aupro([s], [m]) < 1.0


def test_bootstrap_interval_contains_estimate(toy):
    s, y = toy
    lo, hi = M.bootstrap_ci(lambda idx: roc_auc_score(y[idx], s[idx]), len(s), n_boot=100)
    assert lo < roc_auc_score(y, s) < hi


def test_error_contrast_separates_reproduced_from_missed_lesions():
    from types import SimpleNamespace

    from wdmt.config import EvalConfig
    from wdmt.evaluate import _error_contrast

    lesion = np.zeros((8, 8), bool)
    lesion[2:4, 2:4] = True
    fov = np.zeros((8, 8), bool)
    fov[1:7, 1:7] = True

    def result(m):
        return SimpleNamespace(map=lambda ev: m, item=SimpleNamespace(prepared=SimpleNamespace(lesion=lesion, fov=fov)))

    flat = _error_contrast([result(np.full((8, 8), 0.1))], EvalConfig())
    assert flat["contrast"] == pytest.approx(1.0)
    m = np.where(lesion, 0.4, 0.1)
    m[~fov] = 0.3
    e = _error_contrast([result(m)], EvalConfig())
    assert e["contrast"] == pytest.approx(4.0) and e["outside_fov"] == pytest.approx(0.3)
