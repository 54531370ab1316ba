"""Subnormal floats are flushed once wdmt's torch modules are imported (see wdmt.runtime for why it matters)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import torch
torch.set_num_threads(2)
{imp}
x = torch.full((16, 8, 128, 128), 1e-41)  # subnormal in, subnormal out unless flushed
w = torch.ones(8, 8, 1, 1) / 8
print(int(torch.nn.functional.conv2d(x, w).count_nonzero()), int((x * 1.0).count_nonzero()))
"""


def _nonzero(imp: str) -> list[str]:
    r = subprocess.run([sys.executable, "-c", CHECK.format(imp=imp)], capture_output=True, text=True, timeout=120,
                       check=True)
    return r.stdout.split()


def test_importing_wdmt_flushes_subnormals():
    if _nonzero("pass") == ["0", "0"]:
        import pytest

        pytest.skip("this CPU/torch flushes subnormals by default")
    assert _nonzero("import wdmt.train") == ["0", "0"]
    assert _nonzero("import wdmt.evaluate") == ["0", "0"]


def test_the_cpu_is_named_with_its_widest_unit(tmp_path, monkeypatch):
    # "AMD EPYC" alone covers CPUs 3x apart in training speed; the unit tells them apart in every run's env.json.
    from pathlib import Path

    import wdmt.runtime as rt

    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
                    "model name\t: AMD EPYC\nflags\t\t: fpu\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: real(info if str(p) == "/proc/cpuinfo" else p, *a, **k))
    assert rt.cpu_name() == "AMD EPYC (AVX-512 bf16)"
    info.write_text("model name\t: Intel Xeon\nflags\t\t: avx2 amx_bf16 avx512f\n")
    assert rt.cpu_name() == "Intel Xeon (AMX)"
    info.write_text("processor\t: 0\n")  # no model name (e.g. some ARM kernels): the platform's name, never empty
    assert rt.cpu_name()
    import torch

    assert rt.environment(torch.device("cpu"), 0)["cpu"]
