"""Where a training step's time goes, ours against the reference: why the fp32 throughput targets of
docs/performance.md are or are not reachable on this machine.

    python benchmarks/train_profile.py [--preset paper|cpu] [--steps 2] [--compile] [--json]

Profiles ``--steps`` training steps (after two warm-up steps) of the same models and batch as
``throughput.py`` with torch's profiler, sums self CPU time by kind of op, and divides the step's FLOPs (counted by
FlopCounterMode, which counts only convolutions and matrix products here) by the convolutions' own time. That rate,
against the matmul ceiling measured in the same run, bounds what the whole step could reach if every other op were
free. The profiler adds a little overhead to every op, so the absolute times run a few per cent slower than
``throughput.py``'s. ``--compile`` also times our step eager against the same step with the forward pass and
loss under ``torch.compile`` (one graph: alpha fixed, no Python floats inside), alternating, medians of 5 after
compilation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from wdmt.measure.timing import flops, matmul_gflops, train_step_ours, train_step_reference
from wdmt.models import Batch, create_model

PRESETS = {"paper": (64, 4), "cpu": (16, 8)}  # width, batch: as throughput.py
KINDS = (  # (kind, substrings); first match wins; self time, so a parent op never counts its children
    ("convolution", ("convolution",)),
    ("batch norm", ("batch_norm",)),
    ("relu", ("threshold", "clamp_min", "relu")),
    ("up-sample, max-pool", ("upsample", "max_pool")),
    ("loss", ("mse_loss",)),
)
BLEND = {"aten::mul", "aten::add", "aten::sub", "aten::rsub", "aten::cat", "aten::copy_"}  # skip mix, concat, casts


def _kind(name: str) -> str:
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    if name in BLEND:
        return "skip blend, concat, copies"
    if name.endswith("_") or name in ("aten::sqrt", "aten::maximum", "aten::div"):
        return "in-place updates (Adam, gradient sums)"
    return "other"


def breakdown(step, steps: int) -> dict[str, float]:
    """Self CPU seconds per kind of op over ``steps`` steps, plus ``total``."""
    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    out: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        if ev.key.startswith("autograd::") or ev.key.startswith("Optimizer."):
            continue  # wrappers: their self time is bookkeeping, counted under "other" below
        out[_kind(ev.key)] += ev.self_cpu_time_total / 1e6
    total = sum(ev.self_cpu_time_total for ev in prof.key_averages()) / 1e6
    out["other"] += total - sum(out.values())
    out["total"] = total
    return dict(out)


def _step(width: int, batch: int, compiled: bool):
    """Our training step with the forward pass and both MSE terms in one function, compiled or not."""
    torch.manual_seed(0)
    m = create_model("wdmt", width=width).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), 1e-4, amsgrad=True, weight_decay=5e-5)
    x = torch.rand(batch, 1, 256, 256).contiguous(memory_format=torch.channels_last)
    b = Batch(x, x, torch.rand(batch, 3, 256, 256).contiguous(memory_format=torch.channels_last))

    def loss(image: torch.Tensor, target: torch.Tensor, hog: torch.Tensor) -> torch.Tensor:
        out = m(image, 0.5)[1]
        return F.mse_loss(out[:, :1], target) + F.mse_loss(out[:, 1:], hog)

    fn = torch.compile(loss, fullgraph=True) if compiled else loss

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        fn(b.image, b.target, b.hog).backward()
        opt.step()

    return step


def compile_times(width: int, batch: int, repeats: int = 5) -> dict[str, float]:
    """Eager and compiled steps alternate, so that a slow spell of a shared machine hits both alike."""
    eager, compiled = _step(width, batch, False), _step(width, batch, True)
    t = time.perf_counter()
    compiled()
    first = time.perf_counter() - t
    eager()
    te, tc = [], []
    for _ in range(repeats):
        for fn, ts in ((eager, te), (compiled, tc)):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return {"compile_first_step_s": first, "eager_s": statistics.median(te), "compiled_s": statistics.median(tc)}


def _print(res: dict, preset: str, steps: int, ceiling: float) -> None:
    print(
        f"{preset} preset: width {res['width']}, batch {res['batch']}, tile 256, {steps} profiled steps, "
        f"{res['threads']} threads; {res['step_gflop']:.0f} GFLOP per step; matmul ceiling {ceiling:.0f} GFLOP/s"
    )
    kinds = [k for k, _ in KINDS] + ["skip blend, concat, copies", "in-place updates (Adam, gradient sums)", "other"]
    print("| op kind | ours s | share | reference s | share |")
    print("|---|---|---|---|---|")
    for k in kinds + ["total"]:
        o, r = res["ours"].get(k, 0.0), res["reference"].get(k, 0.0)
        print(f"| {k} | {o:.2f} | {o / res['ours']['total']:.0%} | {r:.2f} | {r / res['reference']['total']:.0%} |")
    o, r = res["ours"], res["reference"]
    print(
        f"convolutions alone: ours {o['conv_gflops']:.0f} GFLOP/s ({o['conv_gflops'] / ceiling:.0%} of matmul), "
        f"reference {r['conv_gflops']:.0f} ({r['conv_gflops'] / ceiling:.0%})"
    )
    print(
        f"whole step: ours {o['step_gflops']:.0f} GFLOP/s ({o['step_gflops'] / ceiling:.0%} of matmul), "
        f"reference {r['step_gflops']:.0f}; ratio {res['ratio']:.2f}x under the profiler"
    )
    print(
        f"if every op but the convolutions were free, the step would reach {res['bound_share_of_matmul']:.0%} of "
        f"the matmul ceiling"
    )
    if "compile" in res:
        c = res["compile"]
        print(
            f"torch.compile (inductor): {c['compiled_s']:.2f} s per step against {c['eager_s']:.2f} eager "
            f"({c['eager_s'] / c['compiled_s']:.2f}x), after a first step of {c['compile_first_step_s']:.0f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=list(PRESETS), default="paper")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    width, batch = PRESETS[a.preset]
    ceiling = matmul_gflops()
    # before any profiling: once the profiler has run, eager steps measured 25 % slower in the same process
    timed = compile_times(width, batch) if a.compile else None
    ours, ref = train_step_ours(width, batch, 256), train_step_reference(width, batch, 256)
    step_flops = flops(ours) * a.steps
    res = {
        "preset": a.preset,
        "width": width,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "matmul_gflops": ceiling,
        "step_gflop": step_flops / a.steps / 1e9,
        "ours": breakdown(ours, a.steps),
        "reference": breakdown(ref, a.steps),
    }
    for side in ("ours", "reference"):
        b = res[side]
        b["conv_gflops"] = step_flops / b["convolution"] / 1e9
        b["step_gflops"] = step_flops / b["total"] / 1e9
    res["ratio"] = res["reference"]["total"] / res["ours"]["total"]
    res["bound_share_of_matmul"] = res["ours"]["conv_gflops"] / ceiling
    if timed:
        res["compile"] = timed
    if a.json:
        print(json.dumps(res))
        return
    _print(res, a.preset, a.steps, ceiling)


if __name__ == "__main__":
    main()
