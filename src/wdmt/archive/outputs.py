"""The output folder of ``wdmt predict``: one row per photograph, per-photograph files, errors, and what scored them.

``predictions.jsonl`` and ``predictions.csv`` grow by one whole line per photograph, written in one system call
after that photograph's files are complete, so a run killed at any moment leaves whole rows for the photographs it
finished and nothing for the ones in flight. A rerun reads the rows back (a torn last line is dropped), rewrites both
tables whole and scores only what is missing. ``predict.json`` records the model, its settings and the wdmt
version; a rerun with another model or other settings is refused rather than mixed in.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wdmt.atomic import atomic_path, write_csv_atomic, write_json_atomic, write_text_atomic
from wdmt.errors import WdmtError

FIELDS = ("image", "score", "threshold", "decision", "lesion_pixels_percent", "threshold_rule", "overlay", "map",
          "mask", "width", "height")
ERROR_FIELDS = ("image", "error")
MANIFEST = "predict.json"
# inferno, sampled once: a lookup table colours a map in one indexing step (matplotlib's colormap call on a 12 MP
# float64 array took most of a second and half a gigabyte)
_LUT: np.ndarray | None = None
OVERLAY_FORMATS = ("jpg", "png")


def _inferno() -> np.ndarray:
    global _LUT
    if _LUT is None:
        import matplotlib

        _LUT = (matplotlib.colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return _LUT


@dataclass(frozen=True)
class FileOptions:
    """Which per-photograph files to write. ``overlay_size``: longest side of the overlay (0: the photograph's);
    ``overlay_format``: ``jpg`` (a tenth of the bytes and thirty times faster to write than PNG at 2 MP) or ``png``."""

    overlays: bool = True
    overlay_size: int = 2048
    overlay_format: str = "jpg"
    maps: bool = False
    masks: bool = False

    def __post_init__(self) -> None:
        if self.overlay_format not in OVERLAY_FORMATS:
            raise WdmtError(None, f"overlay format must be one of {', '.join(OVERLAY_FORMATS)}, not "
                            f"{self.overlay_format!r}")


def overlay_picture(rgb: np.ndarray, level: np.ndarray) -> Image.Image:
    """The heat map (``level`` in [0, 1], the photograph's size) over the photograph: inferno, opaque up to 75 %."""
    q = np.round(np.clip(level, 0, 1) * 255).astype(np.uint8)
    alpha = Image.fromarray((q.astype(np.uint16) * 3 // 4).astype(np.uint8))
    return Image.composite(Image.fromarray(_inferno()[q]), Image.fromarray(rgb), alpha)


def save_picture(im: Image.Image | np.ndarray, path: Path) -> Path:
    """Atomically, by the path's suffix: JPEG at quality 90, or PNG at compression level 1 (several times faster
    than Pillow's default 6, a little larger)."""
    im = Image.fromarray(im) if isinstance(im, np.ndarray) else im
    with atomic_path(path) as tmp:
        if path.suffix == ".jpg":
            im.save(tmp, format="JPEG", quality=90)
        else:
            im.save(tmp, format="PNG", compress_level=1)
    return path


def save_npy(arr: np.ndarray, path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
    return path


class ArchiveOut:
    """The output folder, opened for one run of ``wdmt predict``. Nothing is created before the first write."""

    def __init__(self, root: str | os.PathLike, identity: dict[str, Any], files: FileOptions,
                 decode: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.files = files
        self.settings = {"model": identity, "files": files.__dict__, "decode": decode or {}}
        self.done: dict[str, dict[str, Any]] = {}
        if (self.root / MANIFEST).is_file():
            self._check_same_settings()
            self.done = {r["image"]: r for r in self._rows_so_far()}
        elif self.root.exists() and not self.root.is_dir():
            raise WdmtError(self.root, "--out exists and is not a folder")

    def _check_same_settings(self) -> None:
        try:
            before = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))["settings"]
        except (ValueError, KeyError) as e:
            raise WdmtError(self.root / MANIFEST, "unreadable record of an earlier run; give another --out") from e
        if before != json.loads(json.dumps(self.settings)):
            changed = sorted(_differences(before, self.settings))
            raise WdmtError(self.root, "holds predictions of another model or other settings (differs in "
                            f"{', '.join(changed[:4])}); give another --out to keep them apart")

    def _rows_so_far(self) -> list[dict[str, Any]]:
        """The journal's whole rows, the last of each photograph kept; a line torn by a kill is dropped."""
        path = self.root / "predictions.jsonl"
        rows: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if isinstance(r, dict) and "image" in r:
                    rows[r["image"]] = r
        return list(rows.values())

    def start(self, record: dict[str, Any]) -> None:
        """Create the folder, record the run, and rewrite the tables whole from the rows kept so far."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / MANIFEST, {**record, "settings": self.settings})
        rows = list(self.done.values())
        write_text_atomic(self.root / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        write_csv_atomic(self.root / "predictions.csv", rows, FIELDS)
        write_csv_atomic(self.root / "errors.csv", [], ERROR_FIELDS)

    def add(self, row: dict[str, Any]) -> None:
        _append_line(self.root / "predictions.jsonl", json.dumps(row) + "\n")
        _append_line(self.root / "predictions.csv", _csv_line(row, FIELDS))
        self.done[row["image"]] = row

    def error(self, image: Path, reason: str) -> None:
        _append_line(self.root / "errors.csv", _csv_line({"image": str(image), "error": reason}, ERROR_FIELDS))

    def finish(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.root / MANIFEST, {**record, "settings": self.settings})



def file_paths(root: Path, files: FileOptions, key: str) -> dict[str, Path | None]:
    """Where one photograph's files go: its key (its path, mirrored) under ``root``; None for files not asked for."""
    return {"overlay": root / f"{key}_overlay.{files.overlay_format}" if files.overlays else None,
            "map": root / f"{key}_map.npy" if files.maps else None,
            "mask": root / f"{key}_mask.png" if files.masks else None}


def _csv_line(row: dict[str, Any], fields: tuple[str, ...]) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=list(fields), restval="", extrasaction="ignore").writerow(
        {k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def _append_line(path: Path, line: str) -> None:
    """One ``write`` of a whole line on an O_APPEND descriptor: a kill leaves the line whole or absent."""
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(f"{path}: short write")
    finally:
        os.close(fd)


def _differences(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}
