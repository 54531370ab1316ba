"""Runs side by side, from their evaluations: the paper's protocol and the honest one (FOV pixels only).

    python benchmarks/compare_runs.py --runs RUN [RUN ...] [--save FILE.csv]

Each run is evaluated twice if it has not been yet: ``wdmt test`` (paper protocol, the run's own settings) into
``eval-test/``, and ``wdmt test --protocol strict --fov inside`` into ``eval-test-fov-strict/``. One row per run: its
model, seed and arithmetic (``cpu_bf16``), surround and loss, pixel AUROC in the paper protocol, pixel AUROC and AP
inside the field of view, lesion/normal contrast, image AUROC (FOV-only score) and the strict image balanced
accuracy, median epoch seconds (empty for a fused run). Only threshold-free columns are compared across runs
evaluated at other times.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from wdmt import api
from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown
from wdmt.config import PAPER_EVAL
from wdmt.rundir import RunDir


def evaluated(run: Path, folder: str, **kw) -> dict:
    rd = RunDir(run)
    if not (run / folder / "metrics.json").exists():
        api.test(run, out=run / folder, pictures=0, progress=False, **kw)
    return rd.read_json(f"{folder}/metrics.json")


def row(run: Path) -> dict:
    from dataclasses import replace

    rd = RunDir(run)
    cfg = rd.config()
    paper = evaluated(run, "eval-test", ev=replace(cfg.eval, **PAPER_EVAL))
    inside = evaluated(run, "eval-test-fov-strict", protocol="strict", ev=replace(cfg.eval, fov="inside"))
    p, i = inside["pixel"], inside["image"]
    seconds = [float(r["seconds"]) for r in rd.log()]  # none for a fused run: it has no training loop
    return {"run": run.name, "model": cfg.model, "seed": cfg.seed, "cpu_bf16": cfg.cpu_bf16,
            "surround": cfg.preprocess.surround, "fov_loss": cfg.fov_loss,
            "auroc_paper": round(paper["pixel"]["auroc"], 4), "auroc_fov": round(p["auroc"], 4),
            "ap_fov": round(p["ap"], 4), "contrast": round((p.get("error") or {}).get("contrast", float("nan")), 3),
            "image_auroc_fov": round(i["auroc"], 4), "image_strict_acc_fov": round(i["balanced_accuracy"], 4),
            "epoch_s_median": statistics.median(seconds) if seconds else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, type=Path)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    rows = [row(r) for r in a.runs]
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
