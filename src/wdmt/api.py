"""Plain functions behind the CLI verbs: train, test, predict, demo. Each returns what it wrote."""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wdmt.config import EvalConfig, TrainConfig
from wdmt.datasets import open_dataset
from wdmt.distributed import barrier, init_from_env
from wdmt.errors import WdmtError
from wdmt.evaluate import (
    FOV_MODES,
    _headline,
    calibrate,
    fov_variants,
    image_metrics,
    infer,
    picture,
    pixel_metrics,
    plot_epoch_choice,
    plot_roc,
    write_predictions,
)
from wdmt.pipeline import load_samples
from wdmt.scoring import append_predictions, prediction_row, write_overlay
from wdmt.train import (
    Trainer,
    load_checkpoint,
    load_run_config,
    load_run_model,
    pick_device,
    write_csv_atomic,
    write_json_atomic,
)


def train(data: str | Path, cfg: TrainConfig, out: str | Path, *, format: str = "auto", split_seed: int = 0,
          resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` on the normal images of ``data``; calibrate strict thresholds on its val normals."""
    out = Path(out)
    dist_info = init_from_env()  # a plain run is world size 1; under torchrun only rank 0 writes
    if dist_info.is_main and out.exists() and any(out.iterdir()) and not resume:
        if not overwrite:
            raise WdmtError(out, "run directory exists and is not empty; use --resume to continue or --overwrite")
        shutil.rmtree(out)
    barrier(dist_info)
    idx = open_dataset(data, format=format, seed=split_seed)
    if idx.problems:
        raise WdmtError(data, f"dataset has problems (run 'wdmt data check'): {idx.problems[0]}")
    t0 = time.perf_counter()
    summary = Trainer(cfg, idx, out, progress=progress, dist_info=dist_info).fit(resume=resume)
    summary["train_seconds"] = round(time.perf_counter() - t0, 1)
    summary["processes"] = dist_info.world
    barrier(dist_info)
    if not dist_info.is_main:
        return summary
    cal = calibrate_run(out, progress=progress)
    summary["calibration"] = cal
    write_json_atomic(out / "summary.json", summary)
    return summary


def _run_data(run: Path) -> tuple[Any, dict[str, Any]]:
    info = json.loads((run / "data.json").read_text())
    idx = open_dataset(info["root"], format=info["format"])
    splits = info["splits"]
    idx.samples = [replace(s, split=splits.get(s.id, s.split)) for s in idx.samples]
    return idx, info


def calibrate_run(run: str | Path, ev: EvalConfig | None = None, which: str = "best", progress: bool = False) -> dict[str, Any]:
    """Strict thresholds for every FOV mode from the run's validation normals; cached in calibration.json."""
    run = Path(run)
    cfg = load_run_config(run)
    ev = ev or cfg.eval
    path = run / "calibration.json"
    cache = json.loads(path.read_text()) if path.exists() else []
    key = {"checkpoint": which, **asdict(ev)}
    for entry in cache:
        if entry.get("key") == key:
            return entry
    model, _ = load_run_model(run, which)  # only on a cache miss
    idx, _ = _run_data(run)
    val = load_samples(idx.split("val"), cfg.preprocess, None, progress=False)
    results = infer(model, val, cfg.preprocess.tiles, latent=ev.score == "gatingano", progress=progress,
                    channels_last=cfg.channels_last, precision=ev.precision, tiling=ev.tiling)
    new = []
    for mode in FOV_MODES:
        e = replace(ev, fov=mode)
        entry = {"key": {"checkpoint": which, **asdict(e)}, **calibrate(results, e)}
        new.append(entry)
    cache = [c for c in cache if c.get("key") not in [n["key"] for n in new]] + new
    write_json_atomic(path, cache)
    return next(n for n in new if n["key"] == key)


def test(run: str | Path, data: str | Path | None = None, *, format: str = "auto", split: str = "test",
         protocol: str = "paper", ev: EvalConfig | None = None, out: str | Path | None = None, which: str = "best",
         pictures: int = 4, progress: bool = True, n_boot: int = 1000) -> dict[str, Any]:
    """Evaluate a run on the test split of its own data (or every image of another dataset with split='all')."""
    run = Path(run)
    if protocol not in ("paper", "strict"):
        raise WdmtError(None, f"protocol must be paper or strict, not {protocol!r}")
    asked = which
    cfg = load_run_config(run)
    ev = ev or cfg.eval
    if data is None:
        idx, _ = _run_data(run)
    else:
        idx = open_dataset(data, format=format)
        if split != "all":
            _, info = _run_data(run)
            if Path(info["root"]).resolve() == Path(data).resolve():
                idx.samples = [replace(s, split=info["splits"].get(s.id, s.split)) for s in idx.samples]
    samples = idx.split(split)
    if not samples:
        raise WdmtError(data or run, f"no images in split {split!r}")
    t0 = time.perf_counter()
    items = load_samples(samples, cfg.preprocess, None, progress=progress, desc="test images")
    device = pick_device(cfg.device)
    epoch_rows: list[dict[str, Any]] = []
    if which == "paper":
        which, epoch_rows = choose_epoch_on_test(run, items, cfg, ev, device, progress)
    model, _ = load_run_model(run, which)
    cal = calibrate_run(run, ev, which)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    results = infer(model, items, cfg.preprocess.tiles, device, latent=ev.score == "gatingano", progress=progress,
                    channels_last=cfg.channels_last, precision=ev.precision, tiling=ev.tiling)
    infer_s = time.perf_counter() - t0
    pix = pixel_metrics(results, ev, cal["pixel_threshold"], n_boot=n_boot)
    img = image_metrics(results, ev, cal["image_threshold"], n_boot=n_boot)
    out = Path(out) if out else run / (f"eval-{split}" if asked == "best" else f"eval-{split}-{asked}")
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "protocol": protocol, "checkpoint": which, "split": split, "data": str(idx.root), "model": cfg.model,
        "eval": asdict(ev), "calibration": {k: cal[k] for k in ("pixel_threshold", "image_threshold", "n_images", "rule")},
        "pixel": _headline(pix, protocol), "image": _headline(img, protocol),
        "pixel_auroc_by_fov": fov_variants(results, ev) if pix.get("n_images") else {},
        "seconds": {"inference": round(infer_s, 2)},
    }
    if epoch_rows:
        report["epoch_choice"] = {"rule": PAPER_EPOCH_RULE, "epoch": int(which.split("-")[1]), "epochs": epoch_rows}
        write_csv_atomic(out / "epochs.csv", epoch_rows)
        ours = load_checkpoint(run / "checkpoints" / "best.pt").get("epoch") if (run / "checkpoints" / "best.pt").exists() else None
        report["epoch_choice"]["ours"] = ours
        plot_epoch_choice(out / "epochs.png", epoch_rows, ours, report["epoch_choice"]["epoch"],
                          f"{cfg.model}: the paper's epoch choice and ours")
    write_json_atomic(out / "metrics.json", report)
    thr = cal["image_threshold"] if protocol == "strict" else (img.get("paper") or {}).get("threshold")
    write_predictions(out / "predictions.csv", results, ev, thr)
    plot_roc(out / "roc.png", results, ev, f"{cfg.model} ({protocol} protocol)")
    if pictures:
        pic_dir = out / "pictures"
        pic_dir.mkdir(exist_ok=True)
        vmax = float(np.quantile(np.concatenate([r.map(ev).ravel() for r in results]), 0.999)) or 1.0
        chosen = sorted(results, key=lambda r: (-r.item.sample.label, r.item.sample.id))[:pictures]
        pthr = cal["pixel_threshold"] if protocol == "strict" else (pix.get("paper") or {}).get("threshold")
        for r in chosen:
            picture(pic_dir / f"{r.item.sample.id}.png", r, ev, vmax, pthr)
    report["out"] = str(out)
    return report


PAPER_EPOCH_RULE = ("the official code's: the kept epoch with the highest pooled pixel AUROC on these test images "
                    "(tuned on test data; for comparison with the paper only)")


def kept_epochs(run: Path) -> list[int]:
    """Epochs whose weights ``train --keep-epochs`` kept, in order."""
    found = []
    for p in (run / "checkpoints").glob("epoch-*.pt"):
        tail = p.stem.split("-", 1)[1]
        if tail.isdigit():
            found.append(int(tail))
    return sorted(found)


def choose_epoch_on_test(run: Path, items: list[Any], cfg: TrainConfig, ev: EvalConfig, device: torch.device,
                         progress: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The paper's epoch choice, offered so its numbers can be reproduced and set beside ours: every kept epoch
    scores the annotated test images, and the one with the highest pixel AUROC wins (the earliest on a tie).
    Returns the checkpoint name and one row per epoch with the log's alpha and validation error, so the report
    shows what validation data alone would have chosen."""
    epochs = kept_epochs(run)
    if not epochs:
        raise WdmtError(run, "no kept epochs for --checkpoint paper; train with --keep-epochs 1 (or K) to keep them")
    annotated = [it for it in items if it.sample.label == 1 and it.prepared.lesion is not None]
    if not annotated:
        raise WdmtError(run, "--checkpoint paper needs abnormal test images with lesion masks")
    log = {}
    if (run / "log.csv").exists():
        with open(run / "log.csv", newline="") as f:
            log = {int(r["epoch"]): r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()}
    rows = []
    for e in tqdm(epochs, desc="kept epochs", unit="epoch", disable=None if progress else True):
        model, _ = load_run_model(run, f"epoch-{e:03d}")
        model.to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        res = infer(model, annotated, cfg.preprocess.tiles, device, channels_last=cfg.channels_last,
                    precision=ev.precision, tiling=ev.tiling)
        pix = pixel_metrics(res, ev, None, n_boot=0)
        entry = log.get(e, {})
        rows.append({"epoch": e, "test_pixel_auroc": pix["auroc"], "test_aupro": pix["aupro"],
                     "alpha": _float_or_none(entry.get("alpha")), "val_error": _float_or_none(entry.get("val_error"))})
    best = max(rows, key=lambda r: (r["test_pixel_auroc"], -r["epoch"]))
    return f"epoch-{best['epoch']:03d}", rows


def _float_or_none(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def predict(run: str | Path, images: list[str | Path], out: str | Path, *, which: str = "best",
            progress: bool = True, ev: EvalConfig | None = None) -> list[dict[str, Any]]:
    """Score any fundus photographs: score, decision at the run's strict threshold, heat-map overlay, JSON/CSV rows."""

    from wdmt.datasets import Sample
    from wdmt.io import read_image
    from wdmt.pipeline import PreparedSample
    from wdmt.preprocess import prepare

    run = Path(run)
    model, cfg = load_run_model(run, which)
    ev = ev or cfg.eval
    cal = calibrate_run(run, ev, which)
    out = Path(out)
    rows = []
    items = []
    for path in images:
        path = Path(path)
        rgb = read_image(path)
        prep = prepare(rgb, cfg.preprocess, source=str(path))
        items.append((path, rgb, PreparedSample(Sample(id=path.stem, image=path, label=-1), prep)))
    results = infer(model, [it[2] for it in items], cfg.preprocess.tiles, latent=ev.score == "gatingano",
                    progress=progress, channels_last=cfg.channels_last, precision=ev.precision, tiling=ev.tiling)
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad photograph above leaves no output folder behind
    for (path, rgb, _), r in zip(items, results):
        score = r.score(ev)
        amap = r.map(ev)
        ov_path = write_overlay(rgb, amap, 2 * cal["pixel_threshold"], out / f"{path.stem}_overlay.png")
        rows.append(prediction_row(path, score, amap, cal, ov_path))
    append_predictions(out, rows)
    return rows
