"""The official ADAM archive (iChallenge-AMD, 2020): ``Training400`` plus ``Training400-Lesion``.

ADAM's lesion masks are BMPs with lesion = 0 (black) on 255 background. Two protocols:
``paper`` (the WDMT-Net code): an image with any lesion mask is a test abnormal, every other image (AMD or not)
is a normal training image; ``amd``: image level, non-AMD images are normal (split 70/10/20), AMD images are
abnormal test images, with their masks where they have them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wdmt.datasets.base import DatasetIndex, Sample, assign_splits, carve_val
from wdmt.errors import WdmtError
from wdmt.io import IMAGE_SUFFIXES

IMAGES = Path("Training400")
MASKS = Path("Training400-Lesion") / "Lesion_Masks"
KINDS = ("drusen", "exudate", "hemorrhage", "others", "scar")


@dataclass(frozen=True)
class AdamOptions:
    """``protocol``: ``paper`` or ``amd`` (see the module docstring); ``val_fraction`` for ``paper``."""

    protocol: str = "paper"
    val_fraction: float = 0.1


def read_adam(root: str | os.PathLike, seed: int = 0, options: AdamOptions = AdamOptions()) -> DatasetIndex:
    """Index the official ADAM archive rooted at ``root``."""
    root = Path(root)
    if not (root / IMAGES).is_dir():
        raise WdmtError(root, f"not an ADAM archive: expected a '{IMAGES}' folder")
    if options.protocol not in ("paper", "amd"):
        raise WdmtError(None, f"ADAM protocol must be paper or amd, not {options.protocol!r}")
    masks: dict[str, list[Path]] = {}
    for kind in KINDS:
        for p in sorted((root / MASKS / kind).glob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                masks.setdefault(p.stem, []).append(p)
    idx = DatasetIndex(format="adam", root=root, samples=[])
    samples = []
    for sub, amd in (("AMD", True), ("Non-AMD", False)):
        for img in sorted((root / IMAGES / sub).glob("*")):
            if img.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            m = tuple(masks.pop(img.stem, []))
            if options.protocol == "paper":
                label, split = (1, "test") if m else (0, "train")
            else:
                label, split = (1, "test") if amd else (0, "train")
            samples.append(Sample(id=img.stem, image=img, label=label, masks=m, split=split, masks_inverted=True))  # type: ignore[arg-type]
    for _stem, ps in sorted(masks.items()):
        idx.warnings.extend(f"{p}: mask without an image" for p in ps)
    if options.protocol == "paper":
        samples = carve_val(samples, seed=seed, fraction=options.val_fraction)
    else:
        samples = assign_splits(samples, seed=seed)
    idx.samples = samples
    return idx
