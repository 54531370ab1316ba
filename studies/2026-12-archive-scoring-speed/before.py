"""``wdmt predict`` as it was at commit 27ec1a6, on the benchmark's photographs: photographs per second from a 1- and
an N-photograph call, whose difference cancels model loading. Run with that commit's source first on PYTHONPATH.

    PYTHONPATH=../wdmt-27ec1a6/src python studies/2026-12-archive-scoring-speed/before.py PHOTOS_DIR N
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import wdmt
from wdmt.api import predict
from wdmt.shipped import shipped_run


def seconds(photos: list[Path], out: Path) -> float:
    t = time.perf_counter()
    predict(shipped_run(), photos, out, progress=False)
    return time.perf_counter() - t


def main() -> None:
    photos = sorted(Path(sys.argv[1]).glob("*.jpg"))[: int(sys.argv[2])]
    out = Path(tempfile.mkdtemp())
    t1, tn = seconds(photos[:1], out / "one"), seconds(photos, out / "all")
    print(json.dumps({"wdmt_source": wdmt.__file__, "photographs": len(photos), "seconds_1": t1, "seconds_n": tn,
                      "photos_per_s": (len(photos) - 1) / (tn - t1)}))


if __name__ == "__main__":
    main()
