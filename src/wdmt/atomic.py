"""Every file wdmt writes goes through :func:`atomic_path`: a temporary file beside the target, renamed over it only
once it is complete. A killed run, a full disk or a bad input therefore never leaves half a file where a reader
(a resumed run, a benchmark, a user) expects a whole one, nor destroys the previous good copy.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it replaces ``path`` in one rename.

    The temporary name keeps ``path``'s suffix (writers that pick a format by extension, such as matplotlib and
    Pillow, still work) and the process id (two processes filling one cache never share a temporary file). On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2))


def write_csv_atomic(
    path: str | os.PathLike, rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None
) -> Path:
    """``fields`` (default: the first row's keys) may be wider than a row (blanks) or narrower (extra keys dropped)."""
    if fields is None and not rows:
        raise ValueError(f"{path}: no rows and no header to write")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(fields or rows[0]), restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return Path(path)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """All rows of a CSV written by :func:`write_csv_atomic` (the file is closed before returning)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
