"""Runs side by side on their proxy validation sets, from what ``wdmt tune`` wrote (no test photograph is read):

    for r in RUNS; do wdmt tune --run $r; done
    python benchmarks/proxy_scores.py --runs RUNS [--save CSV]

One row per run: its seed, whether its training photographs were flipped, and the proxy pixel AP and AUROC inside
the FOV of the unsmoothed map scored in one pass (``whole``; a model that cannot must be compared on its tuned
choice, also in the row). A training option is judged this way before any test number is looked at (docs/methods.md).
"""

from __future__ import annotations

from pathlib import Path

from wdmt.measure.reports import report_runs
from wdmt.rundir import RunDir
from wdmt.tune import TUNING_FILE


def run_rows(run: Path) -> list[dict]:
    rd = RunDir(run)
    t, cfg = rd.read_json(TUNING_FILE), rd.config()
    plain = next((c for c in t["candidates"]["pixel"] if c["tiling"] == "whole" and c["smooth_sigma"] == 0.0), None)
    chosen = t["chosen"]["pixel"]
    return [{"run": run.name, "model": cfg.model, "seed": cfg.seed, "flips": cfg.flips,
             "proxy_ap_whole": round(plain["ap"], 4) if plain else "",
             "proxy_auroc_whole": round(plain["auroc"], 4) if plain else "",
             "tuned": f"{chosen['tiling']}, sigma {chosen['smooth_sigma']}",
             "proxy_ap_tuned": round(chosen["ap"], 4), "proxy_auroc_tuned": round(chosen["auroc"], 4)}]


if __name__ == "__main__":
    report_runs(__doc__, run_rows)
