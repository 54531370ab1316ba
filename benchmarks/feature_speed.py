"""Speed and size of a fitted feature model (PatchCore, PaDiM), measured side by side in one process.

    python benchmarks/feature_speed.py --run RUN [--repeats 5] [--save FILE]

Prints the CPU and thread count, the dense matmul ceiling (float32 and bfloat16) measured in the same run, full
768 x 768 photographs per second through wdmt's own inference path (``wdmt.evaluate.infer``: the whole picture in
one pass, float32 and with the backbone under bfloat16 autocast; distances stay float32), the median of ``repeats``
timings, the split of one photograph's time between backbone and distances, the memory bank's size, the largest
temporary of the nearest-neighbour search, and the fit time from the run's log.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from wdmt.evaluate import infer
from wdmt.measure.timing import matmul_gflops, median_time
from wdmt.pipeline import load_samples
from wdmt.rundir import RunDir
from wdmt.runtime import cpu_name


def measure(run: Path, repeats: int) -> dict:
    rd = RunDir(run)
    model, cfg = rd.load_model("best")
    idx, _ = rd.dataset()
    items = load_samples(idx.split("test")[:2], cfg.preprocess, None, progress=False)
    res: dict = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                 "model": cfg.model, "run": str(run), "picture_px": cfg.preprocess.size,
                 "matmul_fp32_gflops": round(matmul_gflops(dtype=torch.float32), 1),
                 "matmul_bf16_gflops": round(matmul_gflops(dtype=torch.bfloat16), 1)}
    with torch.inference_mode():
        for prec in ("fp32", "bf16"):
            ev = replace(cfg.eval, tiling="whole", precision=prec)
            t = median_time(lambda ev=ev: infer(model, items, cfg, ev), repeats)
            res[f"images_s_{prec}"] = round(len(items) / t, 3)
        x = torch.rand(1, 3, cfg.preprocess.size, cfg.preprocess.size)
        res["backbone_s"] = round(median_time(lambda: model.embed(x), repeats), 4)
        f = model.embed(x)
        res["distances_s"] = round(median_time(lambda: model.distances(f), repeats), 4)
    buffers = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    res["fitted_state_mb"] = round(sum(v.numel() * v.element_size() for v in buffers.values()) / 2**20, 2)
    res["backbone_mb"] = round(sum(p.numel() * p.element_size() for p in model.backbone.parameters()) / 2**20, 2)
    if hasattr(model, "bank"):
        rows = max(1, model.cfg.chunk // f.shape[-1]) * f.shape[-1]
        res["bank_rows"] = int(model.bank.shape[0])
        res["search_temporary_mb"] = round(rows * model.bank.shape[0] * 4 / 2**20, 1)
    res["fit_s"] = round(sum(float(r["seconds"]) for r in rd.log()), 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    res = measure(a.run, a.repeats)
    if a.save:
        a.save.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
