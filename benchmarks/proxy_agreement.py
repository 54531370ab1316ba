"""How well the proxy validation set (validation normals with synthetic lesions) stands in for real lesions:
every candidate ``wdmt tune`` weighed, scored again on the run's annotated test images, side by side.

    python benchmarks/proxy_agreement.py --run RUN [--save docs/....json]

Run it after ``wdmt tune``: the choice is already made and written in the run; the test images only report on it.
Prints, per candidate (tiling x smoothing), the proxy's and the test set's pixel AP and AUROC inside the field of
view, with their ranks, and per image score the proxy's and the test's image AUROC; then whether the proxy's choice
is the test set's best, where it ranks on test, and the Spearman correlation of the two rankings.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

from wdmt import metrics as M
from wdmt.config import EvalConfig
from wdmt.evaluate import infer, pixel_metrics
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir
from wdmt.tune import TUNING_FILE


def _ranks(values: list[float]) -> list[int]:
    order = np.argsort(-np.asarray(values), kind="stable")
    r = np.empty(len(values), int)
    r[order] = np.arange(1, len(values) + 1)
    return r.tolist()


def pixel_table(rd: RunDir, tuning: dict, model, cfg, items) -> list[dict]:
    rows, by_tiling = [], {}
    annotated = [it for it in items if it.sample.label == 1 and it.prepared.lesion is not None]
    for cand in tuning["candidates"]["pixel"]:
        t = cand["tiling"]
        if t not in by_tiling:
            by_tiling[t] = infer(model, annotated, cfg, replace(cfg.eval, tiling=t))
        ev = replace(cfg.eval, tiling=t, smooth_sigma=cand["smooth_sigma"], fov="inside")
        pix = pixel_metrics(by_tiling[t], ev, None, n_boot=0)
        rows.append({**{k: cand[k] for k in ("tiling", "smooth_sigma")}, "proxy_ap": cand["ap"],
                     "proxy_auroc": cand["auroc"], "test_ap": pix["ap"], "test_auroc": pix["auroc"]})
    for key in ("proxy_ap", "test_ap"):
        for r, k in zip(rows, _ranks([r[key] for r in rows]), strict=True):
            r[f"{key}_rank"] = k
    return rows


def image_table(tuning: dict, model, cfg, items) -> list[dict]:
    ev = EvalConfig(**tuning["eval"])
    res = infer(model, items, cfg, ev)
    y = np.array([it.sample.label for it in items])
    rows = []
    for cand in tuning["candidates"]["image"]:
        e = replace(ev, **{k: cand[k] for k in ("score", "topk_fraction") if k in cand})
        auc = M.auroc(M.curve(np.array([r.score(e) for r in res]), y))
        rows.append({"score": cand["score"], "topk_fraction": cand.get("topk_fraction"), "proxy_auroc": cand["auroc"],
                     "test_auroc": auc})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--save")
    a = ap.parse_args()
    rd = RunDir(a.run)
    tuning = rd.read_json(TUNING_FILE)
    model, cfg = rd.load_model(tuning["checkpoint"])
    idx, _ = rd.dataset()
    items = load_samples(idx.split("test"), cfg.preprocess, None, progress=False)
    px = pixel_table(rd, tuning, model, cfg, items)
    im = image_table(tuning, model, cfg, items)
    chosen = next(r for r in px if r["proxy_ap_rank"] == 1)
    rho = float(stats.spearmanr([r["proxy_ap"] for r in px], [r["test_ap"] for r in px]).statistic)
    summary = {"chosen": {k: chosen[k] for k in ("tiling", "smooth_sigma")},
               "chosen_test_ap_rank": chosen["test_ap_rank"], "of": len(px), "spearman_ap": rho,
               "test_best": next(r for r in px if r["test_ap_rank"] == 1)}
    print("| tiling | sigma | proxy AP (rank) | test AP (rank) | proxy AUROC | test AUROC |\n|---|---|---|---|---|---|")
    for r in px:
        print(f"| {r['tiling']} | {r['smooth_sigma']:g} | {r['proxy_ap']:.3f} ({r['proxy_ap_rank']}) | "
              f"{r['test_ap']:.3f} ({r['test_ap_rank']}) | {r['proxy_auroc']:.3f} | {r['test_auroc']:.3f} |")
    print("| image score | proxy AUROC | test AUROC |\n|---|---|---|")
    for r in im:
        print(f"| {r['score']} {r['topk_fraction'] or ''} | {r['proxy_auroc']:.3f} | {r['test_auroc']:.3f} |")
    print(f"proxy's choice ranks {summary['chosen_test_ap_rank']} of {len(px)} on test AP; Spearman rho of the two "
          f"AP rankings {rho:.2f}")
    if a.save:
        Path(a.save).parent.mkdir(parents=True, exist_ok=True)
        Path(a.save).write_text(json.dumps({"run": str(a.run), "summary": summary, "pixel": px, "image": im}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
