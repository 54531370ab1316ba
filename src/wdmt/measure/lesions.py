"""IDRiD's lesion kinds at a prepared picture's size: what the per-kind measurements share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wdmt.io import read_mask
from wdmt.preprocess import resize_mask

LESIONS = ("MA", "HE", "EX", "SE")  # microaneurysms, haemorrhages, hard and soft exudates; "OD" is the optic disc


def kind_masks(root: Path, item, rule: str) -> dict[str, np.ndarray]:
    """Each kind's mask at the prepared size (all-false where the image has none of it)."""
    size = item.prepared.fov.shape
    out = {}
    for kind in (*LESIONS, "OD"):
        path = root / "masks" / kind / f"{item.sample.id}_{kind}.png"
        out[kind] = (resize_mask(read_mask(path), item.prepared.geometry, rule) if path.is_file()
                     else np.zeros(size, bool))
    return out
