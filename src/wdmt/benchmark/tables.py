"""From run results to the paper-shaped tables: mean ± std over seeds, the paired difference to WDMT-Net, and what
every column means (the report's glossary is rendered from :data:`COLUMNS`, so a column and its definition live
together)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from wdmt.atomic import write_csv_atomic, write_text_atomic
from wdmt.benchmark.runner import RunResult
from wdmt.benchmark.suites import Setting

Cell = Callable[[list[RunResult]], str]


def _fmt(vals: list[float | None]) -> str:
    v = [x for x in vals if x is not None and np.isfinite(x)]
    if not v:
        return "-"
    return f"{np.mean(v):.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "")


def _mean(attr: str) -> Cell:
    return lambda rs: _fmt([getattr(r, attr) for r in rs])


def _interval(rs: list[RunResult]) -> str:
    lo, hi = _fmt([r.auc_lo for r in rs]), _fmt([r.auc_hi for r in rs])
    return f"{lo.split(' ')[0]}-{hi.split(' ')[0]}"


def _epochs(rs: list[RunResult]) -> str:
    return " ".join(f"{r.epoch or '-'}/{r.epoch_paper_choice or '-'}" for r in rs)


# Column -> (what it means, how a row's runs give it), in the tables' order.
COLUMNS: dict[str, tuple[str, Cell]] = {
    "AUC": (
        "pixel AUROC, paper protocol: every pixel of the annotated abnormal test images pooled, the black "
        "surround included; ± is the std over seeds",
        _mean("auc"),
    ),
    "AUC 95% CI": ("the mean of the per-seed bootstrap 95 % intervals of AUC (test images resampled)", _interval),
    "ACC": ("balanced pixel accuracy at the paper's threshold: Youden's J on the test pixels themselves", _mean("acc")),
    "F1 (micro)": ("the paper's F1: micro-averaged over both classes, which equals pixel accuracy", _mean("f1_micro")),
    "Dice": ("the lesion class's F1 at the paper's threshold", _mean("dice")),
    "AUC, FOV zeroed": ("AUC with the map set to 0 outside the field of view", _mean("auc_fov_zero")),
    "AUC, FOV only": ("AUC over pixels inside the field of view only", _mean("auc_fov_inside")),
    "AP, FOV only": ("pixel average precision over pixels inside the field of view only", _mean("ap_fov_inside")),
    "strict Dice, FOV only": (
        "Dice inside the field of view at the strict threshold, a quantile of validation-normal FOV pixels",
        _mean("dice_strict_fov_inside"),
    ),
    "image AUC, FOV only": (
        "image-level AUROC of the map-based score computed inside the field of view",
        _mean("image_auc_fov_inside"),
    ),
    "image strict ACC, FOV only": (
        "balanced image accuracy of that score at its strict threshold (a quantile of the validation normals')",
        _mean("image_acc_strict_fov_inside"),
    ),
    "AUC, overlapping tiles": (
        "AUC with eval.tiling=overlap: half-tile strides, blended, no seams (not the paper's protocol)",
        _mean("auc_overlap"),
    ),
    "AUC, overlap + FOV zeroed": ("both of the above", _mean("auc_overlap_fov_zero")),
    "AP": ("pixel average precision (threshold-free)", _mean("ap")),
    "AUPRO": ("area under the per-region-overlap curve up to FPR 0.3 (threshold-free)", _mean("aupro")),
    "strict ACC": (
        "balanced pixel accuracy at the strict threshold, a quantile of validation-normal pixels",
        _mean("acc_strict"),
    ),
    "strict Dice": ("Dice at the strict threshold", _mean("dice_strict")),
    "image AUC": ("image-level AUROC of the map-based image score", _mean("image_auc")),
    "image AUC, own score": (
        "image-level AUROC of the method's own score (GANomaly's latent distance, f-AnoGAN's "
        "izi_f, ...: 'wdmt models' lists each), the highest tile's per image",
        _mean("image_auc_own"),
    ),
    "image strict ACC, own score": (
        "balanced image accuracy of the own score at its strict threshold, a quantile of "
        "the validation normals' own scores",
        _mean("image_acc_own_strict"),
    ),
    "lesion/normal error": (
        "mean map on lesion pixels over the mean on lesion-free pixels inside the field of view "
        "(near 1: the model reproduces lesions)",
        _mean("error_contrast"),
    ),
    "train min": (
        "median epoch time x epochs (robust to epochs slowed by other work on the machine), on the CPU "
        "results-<suite>.csv names per run",
        _mean("train_min"),
    ),
    "AUC, paper's epoch choice": (
        "AUC at the kept epoch with the highest test AUROC, the official code's choice "
        "(tuned on test data; only for runs that kept their epochs)",
        _mean("auc_paper_choice"),
    ),
    "epoch, ours / paper's": (
        "per seed, the epoch our validation rule kept and the paper's test-chosen epoch",
        _epochs,
    ),
}
PAPER_CHOICE_COLUMNS = ("AUC, paper's epoch choice", "epoch, ours / paper's")
DELTA_HELP = (
    "the AUC minus WDMT-Net's (as the preset trains it), seed by seed on the same test images, and on how "
    "many seeds the row was higher"
)
PAPER_HELP = "the poster's AUC/ACC/F1 for the row, on IDRiD and on ADAM"


def _paired_delta(rs: list[RunResult], ref: list[RunResult]) -> str:
    """AUROC minus the reference's, seed by seed (same seed, same split, same test images): mean ± std, and on how
    many seeds this row was the higher. Training noise is what the std measures; the test images are the same."""
    by_seed = {r.seed: r.auc for r in ref if r.auc is not None}
    d = [r.auc - by_seed[r.seed] for r in rs if r.auc is not None and r.seed in by_seed]
    if not d:
        return "-"
    sd = f" ± {np.std(d, ddof=1):.3f}" if len(d) > 1 else ""
    return f"{np.mean(d):+.3f}{sd} ({sum(x > 0 for x in d)}/{len(d)} higher)"


def _table_row(s: Setting, rs: list[RunResult], reference: Setting | None, ref_rows: list[RunResult]) -> dict[str, str]:
    paper = s.paper()
    row = {"method": s.label, "seeds": str(len(rs))}
    for name, (_, cell) in COLUMNS.items():
        row[name] = cell(rs)
        if name == "AUC 95% CI" and ref_rows:
            row[f"AUC - {reference.model}"] = "-" if s == reference else _paired_delta(rs, ref_rows)
    row["paper IDRiD"], row["paper ADAM"] = (str(paper[0]), str(paper[1])) if paper else ("", "")
    return row


def aggregate(rows: list[RunResult], settings: list[Setting], reference: Setting | None = None) -> list[dict[str, str]]:
    """One table row per setting: mean ± std over seeds; the AUROC interval is the mean of the per-seed bootstrap
    95 % intervals (images resampled); with a reference, the paired AUROC difference to it."""
    ref_rows = [r for r in rows if reference and r.row == reference.label]
    out = [_table_row(s, rs, reference, ref_rows) for s in settings if (rs := [r for r in rows if r.row == s.label])]
    if not any(r.auc_paper_choice is not None for r in rows):  # no run kept its epochs: no empty columns
        for o in out:
            for c in PAPER_CHOICE_COLUMNS:
                del o[c]
    return out


def glossary(columns: list[str]) -> dict[str, str]:
    """What each of ``columns`` means, for the report."""
    out = {}
    for c in columns:
        if c in COLUMNS:
            out[c] = COLUMNS[c][0]
        elif c.startswith("AUC - "):
            out[c] = DELTA_HELP
        elif c.startswith("paper "):
            out[c] = PAPER_HELP
    return out


def markdown(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(out: Path, name: str, table: list[dict[str, str]]) -> None:
    """``table-NAME.md`` and ``table-NAME.csv`` (an empty table still gets its header)."""
    write_text_atomic(out / f"table-{name}.md", markdown(table))
    write_csv_atomic(out / f"table-{name}.csv", table, None if table else ["method"])


def write_results(path: Path, rows: list[RunResult]) -> None:
    write_csv_atomic(path, [asdict(r) for r in rows], RunResult.csv_fields())


def read_results(path: Path) -> list[RunResult]:
    """The rows :func:`write_results` wrote, typed again, so a table can be rebuilt when the runs are gone."""
    kinds = {f.name: str(f.type) for f in fields(RunResult)}
    with path.open(newline="") as f:
        return [RunResult(**{k: _cast(kinds[k], v) for k, v in r.items() if k in kinds}) for r in csv.DictReader(f)]


def _cast(kind: str, text: str) -> Any:
    if text == "":
        return None
    if "int" in kind:
        return int(text)
    return float(text) if "float" in kind else text


def recipe(preset: str, config: str | Path | None) -> str:
    """How a suite's runs were trained, for a report's section title."""
    return f"{preset} preset" + (f" + {Path(config).name}" if config else "")
