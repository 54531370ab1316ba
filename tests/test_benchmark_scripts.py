"""The speed scripts under benchmarks/ keep running as wdmt changes (their figures are not asserted: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_throughput_quick_prints_every_figure():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--json"],
                       capture_output=True, text=True, timeout=600, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["matmul_gflops"] > 0
    for preset in ("paper", "cpu"):
        assert {"ours_img_s", "reference_img_s", "ratio", "gflops"} <= set(res["train"][preset])
    assert res["infer"]["paper_images_s"] > 0 and res["infer"]["cpu_images_s"] > 0
    assert res["hog"]["cold_s"] > res["hog"]["cached_s"] >= 0
    assert res["metrics_16m_s"] > 0


@pytest.mark.slow
def test_train_profile_accounts_for_the_whole_step():
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_profile.py"), "--preset", "cpu", "--steps", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for side in ("ours", "reference"):
        b = res[side]
        parts = sum(v for k, v in b.items() if k not in ("total", "conv_gflops", "step_gflops"))
        assert abs(parts - b["total"]) < 1e-6 * max(1.0, b["total"])
        assert 0 < b["convolution"] < b["total"]  # the convolutions are found and are not the whole step
    assert res["step_gflop"] > 0 and res["ratio"] > 0
