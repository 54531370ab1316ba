"""Dataset readers behind one interface: ``open_dataset(path, format)`` -> :class:`DatasetIndex`."""

from __future__ import annotations

import os
from pathlib import Path

from wdmt.datasets.adam import AdamOptions, read_adam
from wdmt.datasets.base import SPLITS, DatasetIndex, Sample, assign_fold, assign_splits
from wdmt.datasets.folder import read_folder
from wdmt.datasets.idrid import IdridOptions, read_idrid
from wdmt.errors import WdmtError

FORMATS = ("folder", "idrid", "adam")


def detect_format(root: Path) -> str:
    """Guess the layout from the folders present (the official archives have unmistakable names)."""
    if (root / "A. Segmentation").is_dir() and (root / "B. Disease Grading").is_dir():
        return "idrid"
    if (root / "Training400").is_dir():
        return "adam"
    return "folder"


def open_dataset(root: str | os.PathLike, format: str = "auto", seed: int = 0, **options: object) -> DatasetIndex:
    """Index a dataset; ``format`` is folder, idrid, adam or auto; ``options`` go to the reader's options."""
    root = Path(root)
    if not root.exists():
        raise WdmtError(root, "dataset folder not found")
    if not root.is_dir():
        raise WdmtError(root, "not a folder")
    fmt = detect_format(root) if format == "auto" else format
    if fmt == "folder":
        if options:
            raise WdmtError(None, f"the folder format takes no options, got {sorted(options)}")
        return read_folder(root, seed=seed)
    if fmt == "idrid":
        return read_idrid(root, seed=seed, options=IdridOptions(**options))  # type: ignore[arg-type]
    if fmt == "adam":
        return read_adam(root, seed=seed, options=AdamOptions(**options))  # type: ignore[arg-type]
    raise WdmtError(None, f"unknown dataset format {format!r}: use {', '.join(FORMATS)} or auto")


__all__ = ["FORMATS", "SPLITS", "DatasetIndex", "Sample", "assign_fold", "assign_splits", "detect_format",
           "open_dataset"]
