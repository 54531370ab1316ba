"""Choosing a run's evaluation on its proxy validation set (:mod:`wdmt.proxy`), never on test images.

``wdmt tune --run RUN`` scores the validation normals and their lesioned copies under every candidate tiling and
map smoothing, keeps the one with the best pixel average precision inside the field of view (AUROC breaks ties),
then the image score that best separates clean from lesioned copies, and finally thresholds: the pixel threshold
with the best Dice on the synthetic lesions and the image threshold with the best balanced accuracy between clean
and lesioned copies. Everything, candidates included, goes to ``tuning.json`` in the run; ``wdmt test --tuned``
and ``wdmt predict --tuned`` use it.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from wdmt import metrics as M
from wdmt.config import EvalConfig
from wdmt.evaluate import ImageResult, infer, pixel_metrics
from wdmt.preprocess import TILINGS, takes_tiling
from wdmt.proxy import proxy_set
from wdmt.rundir import RunDir

SIGMAS_768 = (0.0, 2.0, 4.0, 8.0)  # Gaussian smoothing of the map, in pixels of a 768 px picture
SCORES: tuple[dict[str, Any], ...] = (
    {"score": "topk", "topk_fraction": 0.01}, {"score": "topk", "topk_fraction": 0.001}, {"score": "max"},
    {"score": "model"},
)
TUNING_FILE = "tuning.json"


def candidate_tilings(input_size: int | None) -> list[str]:
    return [t for t in TILINGS if takes_tiling(t, input_size)]


def _proxy_images(rd: RunDir, cfg: Any, variants: int) -> tuple[Any, str]:
    """The proxy set, from the normals :meth:`RunDir.reference_normals` gives."""
    normals, is_val = rd.reference_normals("the tuned choices")
    source = ("validation normals" if is_val
              else "training normals (no validation split; optimistic: the model saw them)")
    return proxy_set(normals, cfg.preprocess, variants=variants, seed=cfg.seed), source


def _pixel_rows(results: list[ImageResult], base: EvalConfig, tiling: str, size: int) -> list[dict[str, Any]]:
    rows = []
    for sigma in SIGMAS_768:
        ev = replace(base, tiling=tiling, smooth_sigma=round(sigma * size / 768, 3), fov="inside")
        pix = pixel_metrics(results, ev, None, n_boot=0)
        rows.append({"tiling": tiling, "smooth_sigma": ev.smooth_sigma, "ap": pix["ap"], "auroc": pix["auroc"],
                     "aupro": pix["aupro"]})
    return rows


def _image_rows(results: list[ImageResult], ev: EvalConfig) -> list[dict[str, Any]]:
    y = np.array([r.item.sample.label for r in results])
    rows = []
    for sc in SCORES:
        e = replace(ev, **sc)
        c = M.curve(np.array([r.score(e) for r in results]), y)
        rows.append({**sc, "auroc": M.auroc(c), "ap": M.average_precision(c)})
    return rows


def _thresholds(results: list[ImageResult], ev: EvalConfig) -> dict[str, Any]:
    lesioned = [r for r in results if r.item.sample.label == 1]
    s = np.concatenate([r.map(ev)[r.item.prepared.fov] for r in lesioned])
    y = np.concatenate([r.item.prepared.lesion[r.item.prepared.fov] for r in lesioned])
    pixel = M.best_dice_threshold(M.curve(s, y))
    scores = np.array([r.score(ev) for r in results])
    image = M.youden_threshold(M.curve(scores, np.array([r.item.sample.label for r in results])))
    return {"pixel_threshold": pixel, "image_threshold": image,
            "rule": "pixel: best Dice on the proxy set's synthetic lesions (inside the FOV); image: best balanced "
                    "accuracy between the proxy set's clean and lesioned copies"}


def tune_run(run: str | Path, which: str = "best", variants: int = 3, progress: bool = False) -> dict[str, Any]:
    """Choose tiling, smoothing, image score and thresholds on the proxy set; write and return ``tuning.json``."""
    rd = RunDir(run)
    model, cfg = rd.load_model(which)
    ps, source = _proxy_images(rd, cfg, variants)
    pixel_rows, by_tiling = [], {}
    for tiling in candidate_tilings(model.info.input_size):
        by_tiling[tiling] = infer(model, ps.items, cfg, replace(cfg.eval, tiling=tiling), progress=progress)
        pixel_rows += _pixel_rows(by_tiling[tiling], cfg.eval, tiling, cfg.preprocess.size)
    best = max(pixel_rows, key=lambda r: (r["ap"], r["auroc"]))
    ev = replace(cfg.eval, tiling=best["tiling"], smooth_sigma=best["smooth_sigma"], fov="inside")
    results = by_tiling[best["tiling"]]
    image_rows = _image_rows(results, ev)
    chosen_score = max(image_rows, key=lambda r: (r["auroc"], r["ap"]))
    ev = replace(ev, **{k: chosen_score[k] for k in ("score", "topk_fraction") if k in chosen_score})
    share = float(np.mean([x.prepared.lesion[x.prepared.fov].mean() for x in ps.lesioned]))
    out = {"checkpoint": which, "eval": asdict(ev), "thresholds": _thresholds(results, ev),
           "proxy": {"source": source, "normal_images": len(ps.normal), "lesioned_images": len(ps.lesioned),
                     "lesion_fraction_in_fov": share},
           "chosen": {"pixel": best, "image": chosen_score}, "candidates": {"pixel": pixel_rows, "image": image_rows}}
    rd.write_json(TUNING_FILE, out)
    return out


def tuned_eval(run: str | Path) -> tuple[EvalConfig, dict[str, Any]]:
    """The evaluation and thresholds ``wdmt tune`` chose for a run (tuning it first if it never was)."""
    rd = RunDir(run)
    t = rd.read_json(TUNING_FILE) if (rd / TUNING_FILE).exists() else tune_run(run)
    return EvalConfig(**t["eval"]), t
