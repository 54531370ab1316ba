"""Photographs per second of finished runs, side by side in one process, each scored the way it evaluates itself.

    python benchmarks/run_speed.py --runs RUN [RUN ...] [--repeats 5] [--save FILE.json]

For each run: full 768 x 768 photographs through ``wdmt.evaluate.infer`` (its tiling, its model folded for
inference, float32), the median of ``repeats`` timings of 2 photographs, and its weights' size. Printed with the CPU,
the thread count and the float32 matmul ceiling measured in the same run, so that machines compare as ratios.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from wdmt.datasets import Sample
from wdmt.evaluate import infer
from wdmt.measure.timing import matmul_gflops, median_time
from wdmt.pipeline import PreparedSample
from wdmt.preprocess import prepare
from wdmt.rundir import RunDir
from wdmt.runtime import cpu_name
from wdmt.synth import render


def measure(run: Path, repeats: int) -> dict:
    rd = RunDir(run)
    model, cfg = rd.load_model()
    rgb = render(768, np.random.default_rng(0), abnormal=True).image
    item = PreparedSample(Sample("x", Path("x.jpg"), 1), prepare(rgb, cfg.preprocess))
    with torch.inference_mode():
        t = median_time(lambda: infer(model, [item, item], cfg), repeats)
    weights = sum(p.stat().st_size for p in rd.checkpoints.glob("best.*"))
    return {"run": run.name, "model": cfg.model, "tiling": cfg.eval.tiling, "photographs_s": round(2 / t, 3),
            "weights_mb": round(weights / 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    res = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "matmul_gflops": round(matmul_gflops(), 1), "runs": [measure(r, a.repeats) for r in a.runs]}
    if a.save:
        a.save.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
