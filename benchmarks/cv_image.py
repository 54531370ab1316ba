"""Image-level AUROC cross-validated over every normal photograph, with a bootstrap interval:

    for k in 1 2 3 4 5; do
      wdmt train --data DATA --model MODEL --preset cpu --seed 5 --fold $k/5 --out runs/MODEL-f$k
    done
    python benchmarks/cv_image.py --runs runs/MODEL-f{1,2,3,4,5} [--save CSV]

Why: IDRiD's 20 % test split holds 9 normal photographs, so an image AUROC on it moves by 0.1 when one photograph
moves. With ``--fold k/n`` each run's test split is fold k of the normals (the rest train and validate as usual;
abnormal photographs are always test), so over the n runs every normal is scored exactly once, by a model that never
saw it. Each run scores its own test photographs with its own evaluation settings, and only scores from the same run
are compared: the cross-validated AUROC is the share of (normal, abnormal) pairs of a run in which the abnormal
photograph scores higher (ties count half), over all the runs' pairs; the 95 % interval resamples normal and abnormal
photographs (stratified bootstrap, 2000 draws, seed 0). Two image scores per run: the run's own evaluation score
(``score``: for new runs the mean of the top 1 % of the map inside the FOV) and the model's own (``model``, the
highest per-tile score it reports). Also per fold, for the spread a single 20 % split would show.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown
from wdmt.errors import WdmtError
from wdmt.evaluate import infer
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir
from wdmt.runtime import cpu_name

SCORES = ("score", "model")
DRAWS = 2000


def fold_scores(run: Path) -> dict:
    """The run's test photographs: ids, labels and both image scores."""
    import torch

    torch.set_num_threads(2)
    rd = RunDir(run)
    cfg = rd.config()
    idx, _ = rd.dataset()
    samples = idx.split("test")
    model, _ = rd.load_model("best")
    results = infer(model, load_samples(samples, cfg.preprocess, None, progress=False), cfg, cfg.eval)
    evs = {"score": cfg.eval, "model": replace(cfg.eval, score="model")}
    return {"run": run.name, "model": cfg.model, "seed": cfg.seed, "ids": [s.id for s in samples],
            "labels": np.array([s.label for s in samples]),
            "scores": {k: np.array([r.score(ev) for r in results]) for k, ev in evs.items()}}


def pair_auroc(folds: list[dict], key: str, normals: list[tuple[int, int]], abnormals: list[str]) -> float:
    """Share of within-run (normal, abnormal) pairs ordered right; ``normals``: (run, position) of each normal drawn,
    ``abnormals``: ids of the abnormal photographs drawn (every run scores every abnormal one)."""
    wins, pairs = 0.0, 0
    pos = [{i: j for j, i in enumerate(f["ids"])} for f in folds]
    for f_i, j in normals:
        f = folds[f_i]
        s_n = f["scores"][key][j]
        s_a = f["scores"][key][[pos[f_i][a] for a in abnormals]]
        wins += float((s_a > s_n).sum() + 0.5 * (s_a == s_n).sum())
        pairs += len(s_a)
    return wins / pairs


def check_folds(folds: list[dict]) -> tuple[list[tuple[int, int]], list[str]]:
    """Every normal in exactly one run's test split, the same abnormal photographs in every run."""
    normals = [(i, j) for i, f in enumerate(folds) for j, y in enumerate(f["labels"]) if y == 0]
    ids = [folds[i]["ids"][j] for i, j in normals]
    if len(set(ids)) != len(ids):
        raise WdmtError(None, "a normal photograph is in the test split of two runs: not folds of one partition")
    abn = [set(i for i, y in zip(f["ids"], f["labels"], strict=True) if y == 1) for f in folds]
    if any(a != abn[0] for a in abn):
        raise WdmtError(None, "the runs test different abnormal photographs: not folds of one dataset")
    return normals, sorted(abn[0])


def cv_rows(folds: list[dict]) -> list[dict]:
    normals, abnormals = check_folds(folds)
    rng = np.random.default_rng(0)
    rows = []
    for key in SCORES:
        auc = pair_auroc(folds, key, normals, abnormals)
        boots = [pair_auroc(folds, key, [normals[i] for i in rng.integers(0, len(normals), len(normals))],
                            [abnormals[i] for i in rng.integers(0, len(abnormals), len(abnormals))])
                 for _ in range(DRAWS)]
        per_fold = [pair_auroc(folds, key, [n for n in normals if n[0] == i], abnormals) for i in range(len(folds))]
        rows.append({"model": folds[0]["model"], "seed": folds[0]["seed"], "image_score": key, "folds": len(folds),
                     "normals": len(normals), "abnormal": len(abnormals), "image_auroc_cv": round(auc, 4),
                     "ci_low": round(float(np.quantile(boots, 0.025)), 4),
                     "ci_high": round(float(np.quantile(boots, 0.975)), 4),
                     "per_fold": " ".join(f"{a:.3f}" for a in per_fold),
                     "fold_min": round(min(per_fold), 4), "fold_max": round(max(per_fold), 4), "cpu": cpu_name()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, type=Path, help="one run per fold, all folds of one model")
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    rows = cv_rows([fold_scores(r) for r in a.runs])
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
