"""Training throughput of the WDMT-Net family on this machine, for choosing presets (tiles per second).

    python benchmarks/train_speed.py            # prints a Markdown table; --json for one object

Median of 5 timed steps after 2 warm-up steps, batch 8, 1 grey channel, HOG head on (3 cells), Adam.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from wdmt.models import Batch, create_model


def tiles_per_second(width: int, tile: int, channels_last: bool, batch: int = 8, steps: int = 5) -> float:
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
        loss, _ = model.loss(b)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for width, tile in ((16, 128), (16, 256), (32, 256), (64, 256)):
        for cl in (False, True):
            rows.append(
                {
                    "width": width,
                    "tile": tile,
                    "channels_last": cl,
                    "tiles_per_s": round(tiles_per_second(width, tile, cl), 2),
                }
            )
    if a.json:
        print(json.dumps({"threads": torch.get_num_threads(), "rows": rows}))
        return
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    print("| width | tile | channels_last | tiles/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['tile']} | {r['channels_last']} | {r['tiles_per_s']} |")


if __name__ == "__main__":
    main()
