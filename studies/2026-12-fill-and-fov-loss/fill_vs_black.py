"""The rerun of Tables 1 and 3 under the fill + FOV-loss preset against the black-surround runs, model by model.

    python studies/2026-12-fill-and-fov-loss/fill_vs_black.py [--fill docs/benchmarks/idrid-cpu-fill] \
        [--black docs/benchmarks/idrid-cpu]
                                       [--save docs/benchmarks/idrid-cpu-fill/fill-vs-black.csv]

Reads the two benchmarks' ``results-<suite>.csv`` (ablation and sota), pairs the runs by model and seed (only seeds
present in both), and prints per model the mean of each metric under each preset and on how many seeds the fill is
higher: with three seeds or fewer, "higher on 3 of 3" says more than a difference of means.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from wdmt.atomic import write_csv_atomic

METRICS = {
    "auc_fov_inside": "pixel AUROC inside the FOV",
    "ap": "pixel AP, all pixels",
    "error_contrast": "lesion/normal contrast",
    "auc": "pixel AUROC, all pixels (paper)",
    "image_auc": "image AUROC",
}


def rows(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    out: dict[tuple[str, str], dict[str, str]] = {}
    for suite in ("ablation", "sota"):
        path = folder / f"results-{suite}.csv"
        if path.exists():
            for r in csv.DictReader(open(path)):
                out.setdefault((r["model"], r["seed"]), r)  # a model in both suites is the same run
    return out


def compare(fill: Path, black: Path) -> list[dict[str, object]]:
    new, old = rows(fill), rows(black)
    table = []
    for model in dict.fromkeys(m for m, _ in new):
        seeds = [s for m, s in new if m == model and (m, s) in old]
        if not seeds:
            continue
        row: dict[str, object] = {"model": model, "seeds": " ".join(seeds)}
        for k in METRICS:
            a = [float(new[(model, s)][k]) for s in seeds]
            b = [float(old[(model, s)][k]) for s in seeds]
            row[f"{k}_fill"] = round(float(np.mean(a)), 3)
            row[f"{k}_black"] = round(float(np.mean(b)), 3)
            row[f"{k}_fill_higher"] = sum(x > y for x, y in zip(a, b, strict=True))
        table.append(row)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fill", type=Path, default=Path("docs/benchmarks/idrid-cpu-fill"))
    ap.add_argument("--black", type=Path, default=Path("docs/benchmarks/idrid-cpu"))
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    table = compare(a.fill, a.black)
    for r in table:
        n = len(str(r["seeds"]).split())
        cells = [f"{r[k + '_fill']:.3f} vs {r[k + '_black']:.3f} ({r[k + '_fill_higher']}/{n})" for k in METRICS]
        print(f"{r['model']:<11} seeds {r['seeds']:<6} " + " | ".join(cells))
    print("columns (fill vs black, seeds where the fill is higher):", "; ".join(METRICS.values()))
    if a.save and table:
        write_csv_atomic(a.save, table)


if __name__ == "__main__":
    main()
