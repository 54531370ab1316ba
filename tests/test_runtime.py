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
