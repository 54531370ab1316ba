"""The contrast prior's polarity, vessel line and blob width, judged on the proxy validation set only (no test
photograph):

    python studies/2026-11-red-lesions/contrast_line.py --runs CONTRAST_RUN [CONTRAST_RUN ...] [--save CSV]

For each fitted ``contrast`` run, every candidate (``polarity``, ``vessel_line``, ``blob_width``; the cell statistics of
the run are the same for all: they depend on none of them) scores the run's proxy set (its validation normals with
:mod:`wdmt.synth`'s painted lesions, 3 variants each, the run's seed): pixel AUROC and AP inside the FOV, and the
seconds per 768 px picture on this machine's CPU (one thread). The candidate with the best mean proxy AUROC over the
runs became the model's default (docs/methods.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from wdmt import metrics as M
from wdmt.fuse import fov_pixels
from wdmt.measure.reports import report_runs
from wdmt.models import create_model
from wdmt.preprocess import to_tensor
from wdmt.proxy import proxy_set
from wdmt.rundir import RunDir
from wdmt.runtime import cpu_name

CANDIDATES = [("dark", 0, 0), ("dark", 31, 0), ("both", 0, 0), ("both", 15, 0), ("both", 21, 0), ("both", 31, 0),
              ("both", 41, 0), ("both", 61, 0), ("both", 31, 9), ("both", 31, 13), ("both", 31, 17),
              ("both", 31, 21), ("both", 31, 25)]


def run_rows(run: Path) -> list[dict]:
    return score(run, [dict(zip(("polarity", "vessel_line", "blob_width"), c, strict=True)) for c in CANDIDATES])


def score(run: Path, candidates: list[dict] | None) -> list[dict]:
    """One row per candidate, model options over the run's own (``None``: the run's own alone), on its proxy set."""
    torch.set_num_threads(1)
    rd = RunDir(run)
    cfg = rd.config()
    normals, _ = rd.reference_normals("the proxy set")
    items = proxy_set(normals, cfg.preprocess, variants=3, seed=cfg.seed).lesioned
    state = rd.load("best")["model"]
    rows = []
    for cand in candidates or [None]:
        opts = dict(cfg.model_options)
        opts.update(cand or {})
        model = create_model("contrast", **opts)
        model.load_state_dict(state)
        model.eval()
        t0, maps = time.perf_counter(), []
        with torch.no_grad():
            for it in items:
                maps.append(model.maps(to_tensor(it.prepared.image)[None])[0][0, 0].numpy())
        seconds = (time.perf_counter() - t0) / len(items)
        c = M.curve(*fov_pixels(maps, items))
        full = model.cfg
        rows.append({"run": run.name, "seed": cfg.seed, "background_sigma": full.background_sigma,
                     "polarity": full.polarity, "vessel_detector": full.vessel_detector,
                     "vessel_line": full.vessel_line, "blob_width": full.blob_width,
                     "proxy_auroc": round(M.auroc(c), 4), "proxy_ap": round(M.average_precision(c), 4),
                     "s_per_picture": round(seconds, 3), "cpu": cpu_name()})
    return rows


if __name__ == "__main__":
    report_runs(__doc__, run_rows)
