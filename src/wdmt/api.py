"""Plain functions behind the CLI verbs: train, test, predict, demo. Each returns what it wrote."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wdmt.atomic import write_csv_atomic, write_json_atomic
from wdmt.calibration import calibrate_run
from wdmt.config import EvalConfig, TrainConfig
from wdmt.datasets import DatasetIndex, assign_fold, open_dataset
from wdmt.distributed import barrier, init_from_env
from wdmt.errors import WdmtError
from wdmt.evaluate import (
    PROTOCOLS,
    ImageResult,
    _headline,
    fov_variants,
    image_metrics,
    infer,
    picture,
    pixel_metrics,
    plot_epoch_choice,
    plot_roc,
    write_predictions,
)
from wdmt.models import MODELS
from wdmt.pipeline import PreparedSample, load_samples
from wdmt.rundir import RunDir
from wdmt.runtime import pick_device, to_device
from wdmt.train import Trainer
from wdmt.tune import tuned_eval

PAPER_EPOCH_RULE = ("the official code's: the kept epoch with the highest pooled pixel AUROC on these test images "
                    "(tuned on test data; for comparison with the paper only)")


def train(data: str | Path, cfg: TrainConfig, out: str | Path, *, format: str = "auto", split_seed: int = 0,
          fold: tuple[int, int] | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` on the normal images of ``data``; calibrate strict thresholds on its val normals.
    ``fold`` (k, n): the normals of fold k of n are the test split instead of a seeded 20 % (cross-validation). A
    resumed run keeps the splits it started with, whatever these say."""
    out = Path(out)
    if (entry := MODELS.get(cfg.model)) is not None and entry.info.composite:
        raise WdmtError(None, f"model {cfg.model} is not trained: 'wdmt fuse' builds it from two fitted runs")
    dist_info = init_from_env()  # a plain run is world size 1; under torchrun only rank 0 writes
    if dist_info.is_main and out.exists() and any(out.iterdir()) and not resume:
        if not overwrite:
            raise WdmtError(out, "run directory exists and is not empty; use --resume to continue or --overwrite")
        shutil.rmtree(out)
    barrier(dist_info)
    idx = open_dataset(data, format=format, seed=split_seed)
    if idx.problems:
        raise WdmtError(data, f"dataset has problems (run 'wdmt data check'): {idx.problems[0]}")
    if fold is not None:
        idx.samples = assign_fold(idx.samples, *fold, seed=split_seed)
    if resume and (out / "data.json").exists():
        RunDir.apply_splits(idx, RunDir(out).read_json("data.json"))
    t0 = time.perf_counter()
    summary = Trainer(cfg, idx, out, progress=progress, dist_info=dist_info).fit(resume=resume)
    # A resumed run also counts the epochs of its earlier sittings (their logged epoch times; their start-up is lost):
    # this sitting alone would under-report a run killed at epoch 39 of 40 as a minute's training.
    earlier = sum(float(r["seconds"]) for r in RunDir(out).log()[: summary["resumed_at_epoch"]])
    summary["train_seconds"] = round(time.perf_counter() - t0 + earlier, 1)
    summary["processes"] = dist_info.world
    barrier(dist_info)
    if not dist_info.is_main:
        return summary
    summary["calibration"] = calibrate_run(out, progress=progress)
    RunDir(out).write_json("summary.json", summary)
    return summary


def _test_samples(rd: RunDir, data: str | Path | None, format: str, split: str) -> tuple[DatasetIndex, list[Any]]:
    """The run's own data and split, or another dataset (its own splits, or every image with ``split='all'``)."""
    if data is None:
        idx, _ = rd.dataset()
    else:
        idx = open_dataset(data, format=format)
        if split != "all" and rd.same_data(data):
            RunDir.apply_splits(idx, rd.read_json("data.json"))
    samples = idx.split(split)
    if not samples:
        raise WdmtError(data or rd.root, f"no images in split {split!r}")
    return idx, samples


def test(
    run: str | Path,
    data: str | Path | None = None,
    *,
    format: str = "auto",
    split: str = "test",
    protocol: str = "paper",
    ev: EvalConfig | None = None,
    out: str | Path | None = None,
    which: str = "best",
    pictures: int = 4,
    progress: bool = True,
    n_boot: int = 1000,
    tuned: bool = False,
    backend: str = "torch",
) -> dict[str, Any]:
    """Evaluate a run on the test split of its own data (or every image of another dataset with split='all').
    ``tuned``: the evaluation ``wdmt tune`` chose on the proxy validation set, and its thresholds (protocol
    ``proxy``). ``backend``: ``torch``, or the exported graph under ``onnxruntime`` or ``openvino``."""
    if protocol not in PROTOCOLS:
        raise WdmtError(None, f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    rd = RunDir(run)
    cfg = rd.config()
    tuning = None
    tuned = tuned or protocol == "proxy"  # the proxy thresholds hold for the tuned evaluation only
    if tuned:
        ev, tuning = tuned_eval(rd.root)
    ev = ev or cfg.eval
    idx, samples = _test_samples(rd, data, format, split)
    t0 = time.perf_counter()
    items = load_samples(samples, cfg.preprocess, None, progress=progress, desc="test images")
    device = pick_device(cfg.device)
    epoch_rows: list[dict[str, Any]] = []
    chosen = which
    if which == "paper":
        chosen, epoch_rows = choose_epoch_on_test(rd, items, cfg, ev, device, progress)
    model = _model_for_test(rd, chosen, backend, ev)
    cal = calibrate_run(rd.root, ev, chosen)
    results = infer(to_device(model, device, cfg.channels_last), items, cfg, ev, device, progress)
    infer_s = time.perf_counter() - t0
    blocks = _metric_blocks(results, ev, cal, n_boot, tuning)
    out = Path(out) if out else rd.eval_dir(f"{split}-tuned" if tuned else split, which)
    out.mkdir(parents=True, exist_ok=True)
    report = _report(protocol, chosen, split, idx, cfg, ev, cal, blocks, model, results, tuning)
    report["seconds"] = {"inference": round(infer_s, 2)}
    if epoch_rows:
        report["epoch_choice"] = _write_epoch_choice(rd, out, epoch_rows, chosen, cfg.model)
    write_json_atomic(out / "metrics.json", report)
    _write_test_outputs(out, results, ev, cal, blocks, protocol, cfg.model, pictures, tuning)
    report["out"] = str(out)
    return report


def _model_for_test(rd: RunDir, which: str, backend: str, ev: EvalConfig) -> Any:
    if backend == "torch":
        return rd.load_model(which)[0]
    from wdmt.export import runtime_model

    return runtime_model(rd.root, which, backend, ev)


def _report(protocol: str, chosen: str, split: str, idx: DatasetIndex, cfg: TrainConfig, ev: EvalConfig,
            cal: dict[str, Any], blocks: dict[str, Any], model: Any, results: list[ImageResult],
            tuning: dict[str, Any] | None) -> dict[str, Any]:
    """metrics.json: the chosen protocol's numbers flattened beside every protocol's own block; when the map is
    evaluated inside the field of view, the paper's all-pixel numbers in a block of their own."""
    report = {
        "protocol": protocol, "checkpoint": chosen, "split": split, "data": str(idx.root), "model": cfg.model,
        "eval": asdict(ev),
        "calibration": {k: cal[k] for k in ("pixel_threshold", "image_threshold", "own_image_threshold", "n_images",
                                            "rule")},
        "pixel": _headline(blocks["pixel"], protocol), "image": _headline(blocks["image"], protocol),
        "image_own": {**_headline(blocks["own"], protocol if protocol != "proxy" else "paper"),
                      "definition": model.info.own_score},
        "pixel_auroc_by_fov": fov_variants(results, ev) if blocks["pixel"].get("n_images") else {},
    }
    if "pixel_all" in blocks:
        report["pixel_all_pixels"] = _headline(blocks["pixel_all"], "paper")
    if tuning is not None:
        report["tuning"] = {k: tuning[k] for k in ("thresholds", "proxy", "chosen")}
    return report


def _metric_blocks(results: list[ImageResult], ev: EvalConfig, cal: dict[str, Any], n_boot: int,
                   tuning: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pixel metrics, image metrics of the map-based score and of the model's own score, under every protocol that
    has thresholds; and the paper's all-pixel pixel metrics when ``ev`` counts the field of view only."""
    px = im = None
    if tuning is not None:
        t = tuning["thresholds"]
        px, im = {"proxy": (t["pixel_threshold"], t["rule"])}, {"proxy": (t["image_threshold"], t["rule"])}
    blocks = {"pixel": pixel_metrics(results, ev, cal["pixel_threshold"], n_boot=n_boot, extra=px),
              "image": image_metrics(results, ev, cal["image_threshold"], n_boot=n_boot, extra=im),
              "own": image_metrics(results, replace(ev, score="model"), cal["own_image_threshold"], n_boot=n_boot)}
    if ev.fov != "none":
        blocks["pixel_all"] = pixel_metrics(results, replace(ev, fov="none"), None, n_boot=n_boot)
    return blocks


def _write_test_outputs(out: Path, results: list[ImageResult], ev: EvalConfig, cal: dict[str, Any],
                        blocks: dict[str, Any], protocol: str, model: str, pictures: int,
                        tuning: dict[str, Any] | None = None) -> None:
    """predictions.csv, roc.png and the picture grids, each at the protocol's thresholds."""

    def threshold(block: str, strict_key: str) -> float | None:
        if protocol == "strict":
            return cal[strict_key]
        if protocol == "proxy" and block != "own":
            return tuning["thresholds"][strict_key.replace("own_", "")]
        return (blocks[block].get("paper") or {}).get("threshold")

    write_predictions(out / "predictions.csv", results, ev, threshold("image", "image_threshold"),
                      threshold("own", "own_image_threshold"))
    plot_roc(out / "roc.png", results, ev, f"{model} ({protocol} protocol)")
    if pictures:
        _pictures(out / "pictures", results, ev, pictures, threshold("pixel", "pixel_threshold"))


def _write_epoch_choice(rd: RunDir, out: Path, rows: list[dict[str, Any]], chosen: str, model: str) -> dict[str, Any]:
    """epochs.csv and epochs.png beside the metrics: every kept epoch's test AUROC, and both rules' epochs."""
    ours = rd.load("best").get("epoch") if rd.checkpoint_path("best").exists() else None
    epoch = int(chosen.split("-")[1])
    write_csv_atomic(out / "epochs.csv", rows)
    plot_epoch_choice(out / "epochs.png", rows, ours, epoch, f"{model}: the paper's epoch choice and ours")
    return {"rule": PAPER_EPOCH_RULE, "epoch": epoch, "epochs": rows, "ours": ours}


def _pictures(folder: Path, results: list[ImageResult], ev: EvalConfig, n: int, threshold: float | None) -> None:
    """The first ``n`` images (abnormal first) as picture grids, on one colour scale for the whole evaluation."""
    folder.mkdir(exist_ok=True)
    vmax = float(np.quantile(np.concatenate([r.map(ev).ravel() for r in results]), 0.999)) or 1.0
    for r in sorted(results, key=lambda r: (-r.item.sample.label, r.item.sample.id))[:n]:
        picture(folder / f"{r.item.sample.id}.png", r, ev, vmax, threshold)


def choose_epoch_on_test(
    rd: RunDir,
    items: list[PreparedSample],
    cfg: TrainConfig,
    ev: EvalConfig,
    device: torch.device,
    progress: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The paper's epoch choice, offered so its numbers can be reproduced and set beside ours: every kept epoch
    scores the annotated test images, and the one with the highest pixel AUROC wins (the earliest on a tie).
    Returns the checkpoint name and one row per epoch with the log's alpha and validation error, so the report
    shows what validation data alone would have chosen."""
    epochs = rd.kept_epochs()
    if not epochs:
        raise WdmtError(
            rd.root, "no kept epochs for --checkpoint paper; train with --keep-epochs 1 (or K) to keep them"
        )
    annotated = [it for it in items if it.sample.label == 1 and it.prepared.lesion is not None]
    if not annotated:
        raise WdmtError(rd.root, "--checkpoint paper needs abnormal test images with lesion masks")
    log = rd.log_by_epoch()
    rows = []
    for e in tqdm(epochs, desc="kept epochs", unit="epoch", disable=None if progress else True):
        model, _ = rd.load_model(f"epoch-{e:03d}")
        res = infer(to_device(model, device, cfg.channels_last), annotated, cfg, ev, device)
        pix = pixel_metrics(res, ev, None, n_boot=0)
        rows.append(
            {
                "epoch": e,
                "test_pixel_auroc": pix["auroc"],
                "test_aupro": pix["aupro"],
                **log.get(e, {"alpha": None, "val_error": None}),
            }
        )
    best = max(rows, key=lambda r: (r["test_pixel_auroc"], -r["epoch"]))
    return f"epoch-{best['epoch']:03d}", rows


def predict(
    run: str | Path | None,
    images: list[str | Path],
    out: str | Path,
    *,
    which: str = "best",
    progress: bool = True,
    ev: EvalConfig | None = None,
    tuned: bool = False,
    **archive: Any,
) -> list[dict[str, Any]]:
    """Score fundus photographs (files, folders, ``@lists``): score, decision at the run's strict threshold
    (``tuned``: the evaluation and thresholds chosen on the proxy validation set), heat-map overlay, JSON/CSV rows.
    ``run`` None: the shipped model. The rows of every photograph asked for, in order; ``archive`` takes
    :func:`wdmt.archive.score_archive`'s options (``opts``, ``engine``, ``on_row``, ...)."""
    from wdmt.archive import EngineSpec, StreamOptions, score_archive

    overrides = None
    if ev is not None:
        from wdmt.shipped import shipped_run

        own = RunDir(run if run is not None else shipped_run()).config().eval
        overrides = {k: v for k, v in asdict(ev).items() if getattr(own, k) != v} or None
    spec = EngineSpec(run=None if run is None else str(run), checkpoint=which, tuned=tuned, eval=overrides)
    archive.setdefault("opts", StreamOptions(progress=progress))
    return score_archive(spec, images, out, **archive)["rows"]
