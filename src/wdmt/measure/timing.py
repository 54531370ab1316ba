"""Timing helpers the measurement scripts share: medians, the machine's matmul ceiling, FLOP counts, and the two
training steps (ours and the plainly written official network) that the throughput figures compare."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from wdmt.measure.reference_unet import UNetCut
from wdmt.models import Batch, create_model


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / median_time(lambda: a @ b, repeats) / 1e9


def bf16_is_native(n: int = 512) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16, AMX). Without it torch falls back to a path
    about 100x slower than float32 (1.3 GFLOP/s on an AVX2 AMD EPYC), every bf16 figure would take minutes, and
    bf16 is no option there anyway: those figures are then left out (None)."""
    return matmul_gflops(n, 2, torch.bfloat16) >= 0.5 * matmul_gflops(n, 2)


def train_step_ours(width: int, batch: int, tile: int):
    torch.manual_seed(0)
    m = create_model("wdmt", width=width).to(memory_format=torch.channels_last)
    m.alpha.fill_(0.5)
    opt = torch.optim.Adam(m.parameters(), 1e-4, amsgrad=True, weight_decay=5e-5)
    x = torch.rand(batch, 1, tile, tile).contiguous(memory_format=torch.channels_last)
    b = Batch(x, x, torch.rand(batch, 3, tile, tile).contiguous(memory_format=torch.channels_last))

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = m.loss(b)
        loss.backward()
        opt.step()
    return step


def train_step_reference(width: int, batch: int, tile: int):
    torch.manual_seed(0)
    m = UNetCut(1, 2, width)
    opt = torch.optim.Adam(m.parameters(), 1e-4, amsgrad=True, weight_decay=5e-5)
    x, h = torch.rand(batch, 1, tile, tile), torch.rand(batch, 1, tile, tile)

    def step():
        opt.zero_grad()
        _, out = m(x, 0.5)
        loss = F.mse_loss(out[:, :1], x) + F.mse_loss(out[:, 1:], h)
        loss.backward()
        opt.step()
    return step


def flops(step) -> float:
    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())
