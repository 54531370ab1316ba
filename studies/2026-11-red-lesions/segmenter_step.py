"""What fine-tuning the lesion segmenter's encoder costs per training step (``synth-seg``, ``train_encoder_from``).

    python studies/2026-11-red-lesions/segmenter_step.py [--threads N] [--json]

Median of 5 timed steps after 2 warm-up steps, batch 8 of 256 px RGB tiles (the ``cpu`` preset's), width 16, the
model's own optimiser, for the frozen encoder (-1) and fine-tuning from block 3 (the 1/8 and 1/16 scales) and from
block 0 (every block), measured in turns in one run, with the CPU named; the ratios to the frozen encoder are what
transfers to another machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from wdmt.models import Batch, create_model
from wdmt.runtime import cpu_name

FROM = (-1, 3, 0)


def step_seconds(models: dict, batch: Batch, steps: int = 5, warmup: int = 2) -> dict[int, float]:
    """Median seconds per step of each model, the models taking turns step by step so that they share the machine's
    state (clock, other load) alike."""
    times: dict[int, list[float]] = {k: [] for k in models}
    for i in range(warmup + steps):
        for k, (model, opts) in models.items():
            t = time.perf_counter()
            model.training_step(batch, opts, contextlib.nullcontext)
            if i >= warmup:
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {}
    for k in FROM:
        model = create_model("synth-seg", width=16, train_encoder_from=k).train()
        models[k] = (model, model.configure_optimizers(1e-4, 0.0))
    x = torch.rand(8, 3, 256, 256)
    batch = Batch(image=x, target=x, lesion=(x[:, :1] > 0.95).float())
    secs = step_seconds(models, batch)
    out = {"cpu": cpu_name(), "threads": torch.get_num_threads(),
           "rows": [{"train_encoder_from": k, "step_s": round(s, 3), "vs_frozen": round(s / secs[-1], 2)}
                    for k, s in secs.items()]}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['cpu']}, {out['threads']} thread(s); batch 8 x 3 x 256 x 256, median of 5 steps")
    print("| train_encoder_from | s / step | vs frozen |\n|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['train_encoder_from']} | {r['step_s']} | {r['vs_frozen']} |")


if __name__ == "__main__":
    main()
