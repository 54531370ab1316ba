"""The official IDRiD archive, exactly as distributed (Porwal et al., 2018).

Train: grading-training images of DR grade 0 (and, by default, DME risk 0). Test: the 27 segmentation-test images
(abnormal; mask = union of MA, HE, EX, SE; the optic disc is not a lesion) plus the grade-0 grading-test images
(normal). Val: a seeded 10 % of the train normals. The alternatives of method-spec 1.3 are switches.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from wdmt.datasets.base import DatasetIndex, Sample, carve_val
from wdmt.errors import WdmtError

SEG = Path("A. Segmentation")
SEG_IMAGES = SEG / "1. Original Images"
SEG_GT = SEG / "2. All Segmentation Groundtruths"
GRADE = Path("B. Disease Grading")
GRADE_IMAGES = GRADE / "1. Original Images"
GRADE_GT = GRADE / "2. Groundtruths"
SETS = {"train": "a. Training Set", "test": "b. Testing Set"}
LABEL_CSV = {
    "train": "a. IDRiD_Disease Grading_Training Labels.csv",
    "test": "b. IDRiD_Disease Grading_Testing Labels.csv",
}
LESIONS = {"MA": "1. Microaneurysms", "HE": "2. Haemorrhages", "EX": "3. Hard Exudates", "SE": "4. Soft Exudates"}
OPTIC_DISC = ("OD", "5. Optic Disc")


@dataclass(frozen=True)
class IdridOptions:
    """Protocol switches (method-spec 1.3).

    Args:
        train_pool: ``train``: grade-0 images of the grading training set; ``all``: grade 0 of both sets (then
            no normal test images remain).
        require_dme0: also require DME risk 0 for a normal image.
        test_abnormal: ``test``: the 27 segmentation-test images; ``all``: all 81 lesion images.
        include_optic_disc: count the optic-disc mask as lesion (off: the disc is anatomy).
        val_fraction: share of the train normals held out for validation.
    """

    train_pool: str = "train"
    require_dme0: bool = True
    test_abnormal: str = "test"
    include_optic_disc: bool = False
    val_fraction: float = 0.1


def _grades(csv_path: Path) -> dict[str, tuple[int, int]]:
    if not csv_path.is_file():
        raise WdmtError(csv_path, "IDRiD grading label file not found")
    out = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        try:
            i_name = header.index("image name")
            i_dr = header.index("retinopathy grade")
            i_dme = header.index("risk of macular edema")
        except ValueError as e:
            raise WdmtError(csv_path, "expected columns 'Image name, Retinopathy grade, Risk of macular edema'") from e
        for n, row in enumerate(reader, start=2):
            if not row or not row[i_name].strip():
                continue
            try:
                out[row[i_name].strip()] = (int(row[i_dr]), int(row[i_dme]))
            except (ValueError, IndexError) as e:
                raise WdmtError(csv_path, f"row {n}: grades are not integers") from e
    return out


def _find(folder: Path, stem: str) -> Path | None:
    for suf in (".jpg", ".JPG", ".jpeg", ".png", ".tif"):
        p = folder / f"{stem}{suf}"
        if p.is_file():
            return p
    return None


def read_idrid(root: str | os.PathLike, seed: int = 0, options: IdridOptions = IdridOptions()) -> DatasetIndex:
    """Index the official IDRiD archive rooted at ``root``."""
    root = Path(root)
    if not (root / SEG).is_dir() or not (root / GRADE).is_dir():
        raise WdmtError(root, f"not an IDRiD archive: expected '{SEG}' and '{GRADE}' folders")
    idx = DatasetIndex(format="idrid", root=root, samples=[])
    samples: list[Sample] = []
    for part in ("train", "test"):
        grades = _grades(root / GRADE_GT / LABEL_CSV[part])
        folder = root / GRADE_IMAGES / SETS[part]
        for name, (dr, dme) in sorted(grades.items()):
            if dr != 0 or (options.require_dme0 and dme != 0):
                continue
            img = _find(folder, name)
            if img is None:
                idx.problems.append(f"{folder / name}.jpg: listed in the grading labels but missing")
                continue
            split = "train" if part == "train" or options.train_pool == "all" else "test"
            samples.append(Sample(id=name, image=img, label=0, split=split))  # type: ignore[arg-type]
    kinds = dict(LESIONS)
    if options.include_optic_disc:
        kinds[OPTIC_DISC[0]] = OPTIC_DISC[1]
    seg_parts = ("train", "test") if options.test_abnormal == "all" else ("test",)
    for part in seg_parts:
        folder = root / SEG_IMAGES / SETS[part]
        for img in sorted(folder.glob("IDRiD_*.jpg")):
            masks = tuple(
                p
                for kind, sub in kinds.items()
                if (p := root / SEG_GT / SETS[part] / sub / f"{img.stem}_{kind}.tif").is_file()
            )
            if not masks:
                idx.warnings.append(f"{img}: segmentation image without any lesion mask")
            samples.append(Sample(id=img.stem, image=img, label=1, masks=masks, split="test"))
    idx.samples = carve_val(samples, seed=seed, fraction=options.val_fraction)
    return idx
