"""Running a benchmark's rows: train (or resume, or reuse) one run per (row, seed), evaluate it every way the tables
need, and read the result back as a typed :class:`RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from wdmt import api
from wdmt.benchmark.suites import Config, Setting, normalise, seed_list, suite_settings
from wdmt.config import PAPER_EVAL, TrainConfig, resolve_config
from wdmt.rundir import RunDir

# The evaluations every run gets, by folder: (protocol, eval settings changed from the run's own, checkpoint). The
# tiling and the FOV handling are pinned, so that the tables mean the same whatever a run's own defaults (the grid
# and all pixels of the paper's protocol; runs trained before overlapping tiles and FOV pixels became the defaults
# recorded the paper's as theirs).
EVALUATIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "eval-test": ("paper", PAPER_EVAL, "best"),
    "eval-test-strict": ("strict", PAPER_EVAL, "best"),
    "eval-test-overlap": ("paper", {**PAPER_EVAL, "tiling": "overlap"}, "best"),  # the seam-free tiling beside the grid
    # the honest protocol: pixels inside the field of view only, image scores from them, strict thresholds
    "eval-test-inside": ("strict", {"fov": "inside", "tiling": "grid"}, "best"),
}
PAPER_CHOICE = (
    "eval-test-paper"  # the official epoch choice, for runs that kept their epochs: beside ours, never instead
)


@dataclass
class RunResult:
    """One run's numbers, as the tables and ``results-<suite>.csv`` read them (None where a run has no value)."""

    row: str
    model: str
    seed: int
    run: str
    auc: float | None = None  # paper protocol: pooled pixels of the annotated test images
    acc: float | None = None
    f1_micro: float | None = None
    dice: float | None = None
    auc_lo: float | None = None
    auc_hi: float | None = None
    ap: float | None = None
    aupro: float | None = None
    dice_strict: float | None = None
    acc_strict: float | None = None
    auc_fov_zero: float | None = None
    auc_fov_inside: float | None = None
    image_auc: float | None = None
    image_acc_strict: float | None = None
    image_auc_own: float | None = None  # the model's own image score (ModelOutput.score), highest tile
    image_acc_own_strict: float | None = None
    error_contrast: float | None = None
    ap_fov_inside: float | None = None  # eval-test-inside: FOV pixels only, strict thresholds
    dice_strict_fov_inside: float | None = None
    image_auc_fov_inside: float | None = None
    image_acc_strict_fov_inside: float | None = None
    auc_overlap: float | None = None
    auc_overlap_fov_zero: float | None = None
    train_min: float | None = None
    cpu: str | None = None  # what trained it, e.g. "AMD EPYC (AVX-512 bf16), 1 thread(s)": train_min depends on it
    epoch: int | None = None
    epoch_paper_choice: int | None = None
    auc_paper_choice: float | None = None
    aupro_paper_choice: float | None = None
    roc: dict[str, list[float]] | None = None

    @classmethod
    def csv_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "roc"]


def training_minutes(log: list[dict[str, str]]) -> float:
    """Median epoch time x epochs: robust to a few epochs slowed by other work on the machine (a paused or
    shared run), which a plain sum would charge to the model."""
    secs = [float(r["seconds"]) for r in log]
    return float(np.median(secs)) * len(secs) / 60 if secs else float("nan")


def run_and_config(
    s: Setting, seed: int, preset: str, out: Path, epochs: int | None, keep_epochs: int = 0, config: Config = None
) -> tuple[RunDir, TrainConfig]:
    """Where a row's run lives and the config the benchmark asks of it. Keeping epochs changes no arithmetic, so a run
    keeps the policy it started with: runs trained without kept epochs are reused, and get no paper's-epoch columns."""
    norm = normalise(s, preset, config)
    rd = RunDir(out / "runs" / norm.run_name(seed))
    if rd.config_path.exists():
        keep_epochs = rd.config().keep_epochs
    cfg = resolve_config(
        preset, config, model=s.model, seed=seed, epochs=epochs, model_options=norm.options, keep_epochs=keep_epochs
    )
    return rd, cfg


def finished(rd: RunDir) -> bool:
    evals = list(EVALUATIONS) + ([PAPER_CHOICE] if rd.kept_epochs() else [])
    return rd.finished_training and all((rd / d / "metrics.json").exists() for d in evals)


def train_run(
    s: Setting,
    seed: int,
    data: str | Path,
    preset: str,
    out: Path,
    fmt: str,
    progress: bool,
    epochs: int | None = None,
    keep_epochs: int = 0,
    config: Config = None,
) -> tuple[RunDir, TrainConfig]:
    """Train one run, or resume it, or leave it if it is finished; refuse a finished run of another config."""
    rd, cfg = run_and_config(s, seed, preset, out, epochs, keep_epochs, config)
    # A finished run is never trusted by its name alone: another preset or --epochs must not be mixed in.
    rd.require_config(
        cfg,
        "this run was trained with another config than the benchmark asks for; "
        "use another --out or the same --preset/--config/--epochs",
    )
    if not rd.finished_training:
        partial = rd.resumable
        api.train(data, cfg, rd.root, format=fmt, overwrite=not partial, resume=partial, progress=progress)
    return rd, cfg


def run_one(
    s: Setting,
    seed: int,
    data: str | Path,
    preset: str,
    out: Path,
    fmt: str,
    progress: bool,
    epochs: int | None = None,
    keep_epochs: int = 0,
    config: Config = None,
) -> RunResult:
    """Train (or resume, or skip) one run and evaluate it under both protocols, and where it kept its epochs under the
    paper's epoch choice too; returns its result."""
    rd, cfg = train_run(s, seed, data, preset, out, fmt, progress, epochs, keep_epochs, config)
    for folder, (protocol, changes, which) in EVALUATIONS.items():
        if not (rd / folder / "metrics.json").exists():
            api.test(
                rd.root,
                protocol=protocol,
                ev=replace(cfg.eval, **changes),
                out=rd / folder,
                which=which,
                pictures=0,
                progress=False,
            )
    if rd.kept_epochs() and not (rd / PAPER_CHOICE / "metrics.json").exists():
        api.test(rd.root, protocol="paper", which="paper", ev=replace(cfg.eval, **PAPER_EVAL), out=rd / PAPER_CHOICE,
                 pictures=0, progress=False)
    return read_result(rd, s, seed)


def _trained_on(rd: RunDir) -> str | None:
    """The CPU and threads a run recorded (runs before 2026-12-02 recorded no CPU; GPU runs name their device)."""
    env = rd.read_json("env.json") if (rd / "env.json").exists() else {}
    if env.get("device", "cpu") != "cpu":
        return env["device"]
    return f"{env['cpu']}, {env.get('threads')} thread(s)" if env.get("cpu") else None


def _metrics_if_any(rd: RunDir, folder: str) -> dict[str, Any]:
    """An evaluation's metrics, or {} for runs evaluated before it existed."""
    return rd.read_json(f"{folder}/metrics.json") if (rd / folder / "metrics.json").exists() else {}


def read_result(rd: RunDir, s: Setting, seed: int) -> RunResult:
    """A finished run's result, from its evaluations' metrics.json and its log."""
    paper, strict, overlap = (rd.read_json(f"{d}/metrics.json") for d in list(EVALUATIONS)[:3])
    inside, chosen = _metrics_if_any(rd, "eval-test-inside"), _metrics_if_any(rd, PAPER_CHOICE)
    ip, ii = inside.get("pixel", {}), inside.get("image", {})
    pp, sp, si = paper["pixel"], strict["pixel"], strict["image"]
    lo, hi = pp.get("auroc_ci95") or (None, None)
    by_fov, overlap_fov = paper.get("pixel_auroc_by_fov", {}), overlap.get("pixel_auroc_by_fov", {})
    return RunResult(
        row=s.label,
        model=s.model,
        seed=seed,
        run=str(rd.root),
        auc=pp.get("auroc"),
        acc=pp.get("balanced_accuracy"),
        f1_micro=pp.get("f1_micro"),
        dice=pp.get("f1"),
        auc_lo=lo,
        auc_hi=hi,
        ap=sp.get("ap"),
        aupro=sp.get("aupro"),
        dice_strict=sp.get("f1"),
        acc_strict=sp.get("balanced_accuracy"),
        auc_fov_zero=by_fov.get("zero"),
        auc_fov_inside=by_fov.get("inside"),
        image_auc=si.get("auroc"),
        image_acc_strict=si.get("balanced_accuracy"),
        image_auc_own=strict.get("image_own", {}).get("auroc"),
        image_acc_own_strict=strict.get("image_own", {}).get("balanced_accuracy"),
        error_contrast=pp.get("error", {}).get("contrast"),
        ap_fov_inside=ip.get("ap"),
        dice_strict_fov_inside=ip.get("f1"),
        image_auc_fov_inside=ii.get("auroc"),
        image_acc_strict_fov_inside=ii.get("balanced_accuracy"),
        auc_overlap=overlap["pixel"].get("auroc"),
        auc_overlap_fov_zero=overlap_fov.get("zero"),
        train_min=round(training_minutes(rd.log()), 2),
        cpu=_trained_on(rd),
        epoch=rd.kept_epoch(),
        epoch_paper_choice=chosen.get("epoch_choice", {}).get("epoch"),
        auc_paper_choice=chosen.get("pixel", {}).get("auroc"),
        aupro_paper_choice=chosen.get("pixel", {}).get("aupro"),
        roc=pp.get("roc"),
    )


def _state(rd: RunDir, cfg: TrainConfig) -> str:
    if rd.config_differs(cfg):
        return "refused: trained with another config"
    if rd.finished_training:
        return "done" if finished(rd) else "trained, to evaluate"
    if rd.checkpoint_path("last").exists():
        return f"partial: epoch {len(rd.log())}/{cfg.epochs}"
    return "to train"


def plan(
    suite: str,
    out: str | Path,
    *,
    preset: str = "cpu",
    seeds: int = 1,
    models: list[str] | None = None,
    epochs: int | None = None,
    config: Config = None,
) -> list[dict[str, Any]]:
    """What a benchmark would do, without doing it: one entry per run (rows sharing a run appear once) with its state
    and, where a finished or half-trained run of the same model gives an epoch time, the minutes of training left."""
    out = Path(out)
    entries: dict[str, dict[str, Any]] = {}
    epoch_s: dict[str, list[float]] = {}
    for settings in suite_settings(suite, models, preset=preset, epochs=epochs, config=config).values():
        for s in settings:
            for seed in seed_list(seeds):
                rd, cfg = run_and_config(s, seed, preset, out, epochs, config=config)
                if rd.root.name in entries:
                    continue
                log = rd.log()
                if log:
                    epoch_s.setdefault(s.model, []).append(float(np.median([float(r["seconds"]) for r in log])))
                state = _state(rd, cfg)
                left = 0 if state.startswith(("done", "trained", "refused")) else cfg.epochs - len(log)
                entries[rd.root.name] = {
                    "row": s.label,
                    "seed": seed,
                    "run": str(rd.root),
                    "model": s.model,
                    "state": state,
                    "epochs_left": left,
                }
    for e in entries.values():
        per_epoch = epoch_s.get(e["model"])
        e["minutes_left"] = float(np.median(per_epoch)) * e["epochs_left"] / 60 if per_epoch else None
    return list(entries.values())
