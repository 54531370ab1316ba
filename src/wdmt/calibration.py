"""The decision thresholds of a run: strict ones from its validation normals (cached in ``calibration.json``), or
those ``wdmt tune`` chose on the proxy validation set. Used by evaluation, prediction, serving and export alike."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from wdmt.config import EvalConfig
from wdmt.evaluate import FOV_MODES, calibrate, infer
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir
from wdmt.tune import tuned_eval


def calibrate_run(
    run: str | Path, ev: EvalConfig | None = None, which: str = "best", progress: bool = False
) -> dict[str, Any]:
    """Strict thresholds for every FOV mode from the run's validation normals; cached in calibration.json."""
    rd = RunDir(run)
    cfg = rd.config()
    ev = ev or cfg.eval
    cache = rd.calibrations()
    key = {"checkpoint": which, **asdict(ev)}
    hit = next((e for e in cache if e.get("key") == key and "own_image_threshold" in e), None)  # older: recompute
    if hit is not None:
        return hit
    model, _ = rd.load_model(which)  # only on a cache miss
    samples, is_val = rd.reference_normals("strict thresholds")
    source = "validation-normal" if is_val else "training-normal (no validation split; the model saw them)"
    results = infer(model, load_samples(samples, cfg.preprocess, None, progress=False), cfg, ev, progress=progress)
    new = [{"key": {"checkpoint": which, **asdict(replace(ev, fov=mode))},
            **calibrate(results, replace(ev, fov=mode), source)} for mode in FOV_MODES]
    cache = [c for c in cache if c.get("key") not in [n["key"] for n in new]] + new
    rd.write_json("calibration.json", cache)
    return next(n for n in new if n["key"] == key)


def decision_settings(run: str | Path, ev: EvalConfig | None = None, which: str = "best",
                      tuned: bool = False) -> tuple[EvalConfig, dict[str, Any]]:
    """The evaluation and the thresholds that decide normal or abnormal: what ``wdmt tune`` chose (``tuned``), or
    ``ev`` (default: the run's own) with its strict calibration."""
    if tuned:
        ev, tuning = tuned_eval(run)
        return ev, tuning["thresholds"]
    ev = ev or RunDir(run).config().eval
    return ev, calibrate_run(run, ev, which)


