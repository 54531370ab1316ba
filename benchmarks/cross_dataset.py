"""Image level on another camera, per disease: runs trained on one dataset's normals, scored on every photograph of
another (the cross-camera rows of docs/methods.md; HRF: 15 healthy, 15 diabetic retinopathy, 15 glaucoma).

    python benchmarks/cross_dataset.py --data ../shared/data/hrf --runs RUN [RUN ...] --save docs/.../cross-hrf.csv

Each run is evaluated as it would be on its own data (its tiling, its score), with the map counted inside the field
of view only; nothing is chosen on the other dataset. Per run and disease: AUROC of healthy against that disease, for
the map-based score and for the model's own score. Printed: the mean and range over the runs of each model.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from wdmt import api
from wdmt import metrics as M
from wdmt.atomic import write_csv_atomic
from wdmt.rundir import RunDir


def diagnoses(data: Path) -> dict[str, str]:
    """File stem -> diagnosis (``healthy`` for label 0) from the dataset's manifest."""
    with open(data / "manifest.csv", newline="") as f:
        return {Path(r["file"]).stem: (r.get("diagnosis") or "abnormal") if r["label"] == "1" else "healthy"
                for r in csv.DictReader(f)}


def run_rows(run: Path, data: Path) -> list[dict]:
    cfg = RunDir(run).config()
    out = run / f"eval-{data.name}-inside"
    if not (out / "predictions.csv").exists():
        api.test(run, data, split="all", protocol="strict", ev=replace(cfg.eval, fov="inside"), out=out, pictures=0,
                 progress=False)
    with open(out / "predictions.csv", newline="") as f:
        preds = list(csv.DictReader(f))
    dx = diagnoses(data)
    kind = [dx[Path(p["id"]).stem] for p in preds]
    rows = []
    for disease in sorted(set(kind) - {"healthy"}):
        keep = [i for i, k in enumerate(kind) if k in ("healthy", disease)]
        y = np.array([kind[i] == disease for i in keep], dtype=int)
        row = {"run": str(run), "model": cfg.model, "seed": cfg.seed, "disease": disease,
               "n_healthy": int((y == 0).sum()), "n_disease": int(y.sum())}
        for col in ("score", "own_score"):
            s = np.array([float(preds[i][col]) for i in keep])
            row[f"auroc_{col}"] = round(M.auroc(M.curve(s, y)), 4)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--runs", nargs="+", required=True, type=Path)
    ap.add_argument("--save", type=Path, help="write the per-run rows to this CSV")
    a = ap.parse_args()
    rows = [r for run in a.runs for r in run_rows(run, a.data)]
    if a.save:
        write_csv_atomic(a.save, rows, list(rows[0]))
    print(f"{'model':12s} {'disease':24s} runs  AUROC map score (range)   AUROC own score (range)")
    for model in dict.fromkeys(r["model"] for r in rows):
        for disease in dict.fromkeys(r["disease"] for r in rows):
            sel = [r for r in rows if r["model"] == model and r["disease"] == disease]
            a1, a2 = (np.array([r[c] for r in sel]) for c in ("auroc_score", "auroc_own_score"))
            print(f"{model:12s} {disease:24s} {len(sel):4d}  {a1.mean():.3f} ({a1.min():.3f}-{a1.max():.3f})"
                  f"        {a2.mean():.3f} ({a2.min():.3f}-{a2.max():.3f})")


if __name__ == "__main__":
    main()
