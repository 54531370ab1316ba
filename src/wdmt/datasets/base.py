"""One interface over every dataset layout: a list of samples, each with its split.

Splits: ``train`` and ``val`` hold normal images only, ``test`` holds normal and abnormal ones. Where the data
names its splits (the official archives, a ``split`` column in a manifest) those hold; otherwise the normal
images are divided by a seeded rule (70 / 10 / 20 by default) and every abnormal image goes to test.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wdmt.errors import WdmtError

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class Sample:
    """One photograph and what is known about it.

    Args:
        id: unique name (the file stem), used for outputs.
        image: the photograph's path.
        label: 0 normal, 1 abnormal.
        masks: lesion mask files, unioned; empty when the image has no pixel annotation.
        fov_mask: a field-of-view mask file, or None to detect the FOV from the image.
        split: train, val or test.
        masks_inverted: True where lesion pixels are 0 (ADAM's BMPs).
    """

    id: str
    image: Path
    label: int
    masks: tuple[Path, ...] = ()
    fov_mask: Path | None = None
    split: Split = "test"
    masks_inverted: bool = False

    @property
    def has_mask(self) -> bool:
        return bool(self.masks)


@dataclass
class DatasetIndex:
    """The samples of one dataset plus anything its reader noticed on the way."""

    format: str
    root: Path
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)  # data cannot be used as is
    warnings: list[str] = field(default_factory=list)  # data can be used; the user should know

    def split(self, name: str) -> list[Sample]:
        """Samples of one split, or all of them for ``all``."""
        if name == "all":
            return list(self.samples)
        if name not in SPLITS:
            raise WdmtError(None, f"unknown split {name!r}: use train, val, test or all")
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {normal, abnormal, masks}} plus a ``total`` row."""
        out: dict[str, dict[str, int]] = {}
        for key in (*SPLITS, "total"):
            ss = self.samples if key == "total" else self.split(key)
            out[key] = {
                "normal": sum(s.label == 0 for s in ss),
                "abnormal": sum(s.label == 1 for s in ss),
                "masks": sum(s.has_mask for s in ss),
            }
        return out

    def require_training_data(self) -> None:
        """Training needs at least one normal train image; say so before anything is built."""
        if not self.split("train"):
            raise WdmtError(self.root, "no normal training image found (train needs images labelled normal)")


def assign_splits(
    samples: Iterable[Sample], seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> list[Sample]:
    """Seeded 70/10/20 train/val/test split of the normal images; abnormal images all go to test.

    The shuffle is over ids sorted by name, so it does not depend on the order files were listed in.
    """
    samples = list(samples)
    normals = sorted((s for s in samples if s.label == 0), key=lambda s: s.id)
    rng = random.Random(seed)
    order = list(range(len(normals)))
    rng.shuffle(order)
    n = len(normals)
    n_val = round(n * fractions[1]) if n >= 3 else 0
    n_test = round(n * fractions[2]) if n >= 3 else 0
    n_train = n - n_val - n_test
    split_of = {}
    for rank, i in enumerate(order):
        split_of[normals[i].id] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return [
        _with_split(s, split_of[s.id] if s.label == 0 else "test") for s in samples
    ]


def assign_fold(
    samples: Iterable[Sample], fold: int, folds: int, seed: int = 0, val_share: float = DEFAULT_FRACTIONS[1]
) -> list[Sample]:
    """Fold ``fold`` (1 to ``folds``) of a seeded partition of the normal images is the test split, a share
    ``val_share`` of all normals is val and the rest train; abnormal images all go to test.

    Why: a 20 % test split of a small dataset holds a handful of normals (IDRiD: 9 of 45), so an image-level AUROC on
    it is mostly noise. Trained once per fold, every normal is a test image exactly once, scored by a model that never
    saw it (``benchmarks/cv_image.py`` pools the folds)."""
    samples = list(samples)
    normals = sorted((s for s in samples if s.label == 0), key=lambda s: s.id)
    if not 2 <= folds <= len(normals) or not 1 <= fold <= folds:
        raise WdmtError(None, f"fold {fold}/{folds}: need 1 <= fold <= folds and 2 <= folds <= {len(normals)} "
                              "(the number of normal images)")
    order = list(range(len(normals)))
    random.Random(seed).shuffle(order)
    test = {normals[i].id for rank, i in enumerate(order) if rank % folds == fold - 1}
    rest = [normals[i].id for i in order if normals[i].id not in test]
    n_val = min(round(len(normals) * val_share), len(rest) - 1)
    split_of = {**dict.fromkeys(test, "test"), **dict.fromkeys(rest[:n_val], "val"),
                **dict.fromkeys(rest[n_val:], "train")}
    return [_with_split(s, split_of[s.id] if s.label == 0 else "test") for s in samples]


def carve_val(samples: list[Sample], seed: int = 0, fraction: float = 0.1) -> list[Sample]:
    """Move a seeded ``fraction`` of the train normals to val (for archives that name only train and test)."""
    train = sorted((s for s in samples if s.split == "train"), key=lambda s: s.id)
    rng = random.Random(seed)
    k = max(1, round(len(train) * fraction)) if len(train) >= 2 else 0
    val_ids = {s.id for s in rng.sample(train, k)}
    return [_with_split(s, "val") if s.id in val_ids else s for s in samples]


def _with_split(s: Sample, split: str) -> Sample:
    from dataclasses import replace

    return replace(s, split=split)  # type: ignore[arg-type]


def duplicate_ids(samples: Iterable[Sample]) -> list[str]:
    """Ids that occur more than once (outputs are keyed by id, so these must be renamed)."""
    return sorted(k for k, v in Counter(s.id for s in samples).items() if v > 1)
