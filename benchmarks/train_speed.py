"""Training throughput of the WDMT-Net family on this machine, for choosing presets (tiles per second).

    python benchmarks/train_speed.py            # prints a Markdown table; --json for one object

Median of 5 timed steps after 2 warm-up steps, batch 8, 1 grey channel, HOG head on (3 cells), Adam; each geometry
in float32 and under bfloat16 autocast (``--cpu-bf16``), side by side, with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from wdmt.models import Batch, create_model
from wdmt.runtime import cpu_name


def tiles_per_second(width: int, tile: int, channels_last: bool, batch: int = 8, steps: int = 5,
                     bf16: bool = False) -> float:
    torch.manual_seed(0)
    model = create_model("wdmt", width=width)
    model.alpha.fill_(0.5)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), 1e-4, amsgrad=True)
    x = torch.rand(batch, 1, tile, tile).contiguous(memory_format=fmt)
    b = Batch(x, x, torch.rand(batch, 3, tile, tile).contiguous(memory_format=fmt))
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model.loss(b)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="one small geometry, one step (a smoke test)")
    a = ap.parse_args()
    rows = []
    geometries = ((16, 64),) if a.quick else ((16, 128), (16, 256), (24, 256), (32, 256), (64, 256))
    for width, tile in geometries:
        for cl in (False, True):
            fp32, bf16 = (round(tiles_per_second(width, tile, cl, steps=1 if a.quick else 5, bf16=b), 2)
                          for b in (False, True))
            rows.append({"width": width, "tile": tile, "channels_last": cl, "tiles_per_s": fp32,
                         "tiles_per_s_bf16": bf16, "bf16_speedup": round(bf16 / fp32, 2)})
    head = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if a.json:
        print(json.dumps({**head, "rows": rows}))
        return
    print(f"{head['cpu']}, threads: {head['threads']}, torch {head['torch']}")
    print("| width | tile | channels_last | tiles/s fp32 | tiles/s bf16 | bf16 / fp32 |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['tile']} | {r['channels_last']} | {r['tiles_per_s']} | {r['tiles_per_s_bf16']} | "
              f"{r['bf16_speedup']} |")


if __name__ == "__main__":
    main()
