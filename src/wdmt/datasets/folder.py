"""The ``folder`` layout: what users are told to arrange their own photographs in.

```
root/normal/**/*.jpg          healthy eyes (label 0)
root/abnormal/**/*.jpg        diseased eyes (label 1)
root/masks/<kind>/<stem>[_<KIND>].png   lesion masks, matched by stem; several kinds are unioned
root/masks/fov/<stem>.png     optional field-of-view masks
root/manifest.csv             optional: file,label[,mask][,fov_mask][,split]
```

With a manifest, it is authoritative: its ``mask`` column (several files separated by ``;``) and ``split`` column
hold. Without one, masks are matched by stem; ``masks/lesion_union`` wins where it exists (it already is the
union), and the optic-disc and FOV folders are never counted as lesions.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from wdmt.datasets.base import DatasetIndex, Sample, assign_splits, duplicate_ids
from wdmt.errors import WdmtError
from wdmt.io import IMAGE_SUFFIXES

NOT_LESION_DIRS = {"od", "optic_disc", "optic_disk", "fov", "vessels"}
UNION_DIR = "lesion_union"


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder``, sorted, hidden files skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.parts[-1:])
    )


def _inside(root: Path, rel: str, manifest: Path, row: int) -> Path:
    """Resolve a manifest path and refuse one that escapes the dataset root."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise WdmtError(manifest, f"row {row}: path {rel!r} escapes the dataset root")
    full = (root / p).resolve()
    if not full.is_relative_to(root.resolve()):
        raise WdmtError(manifest, f"row {row}: path {rel!r} escapes the dataset root")
    return root / p


def _match_masks(stem: str, root: Path, cache: dict) -> tuple[Path, ...]:
    if "union" not in cache:
        cache["union"], cache["parts"], cache["fov"] = {}, {}, {}
        for p in list_images(root / "masks"):
            kind = p.parent.name.lower() if p.parent != root / "masks" else ""
            if kind == "fov":
                cache["fov"][p.stem] = p
            elif kind in NOT_LESION_DIRS:
                continue
            elif kind == UNION_DIR:
                cache["union"][p.stem] = p
            else:
                cache["parts"].setdefault(p.stem, []).append(p)
    if stem in cache["union"]:
        return (cache["union"][stem],)
    found = list(cache["parts"].get(stem, []))
    for k, v in cache["parts"].items():
        if k.startswith(stem + "_"):
            found.extend(v)
    return tuple(sorted(found))


def read_folder(root: str | os.PathLike, seed: int = 0) -> DatasetIndex:
    """Index a ``folder``-layout dataset (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise WdmtError(root, "dataset folder not found" if not root.exists() else "not a folder")
    manifest = root / "manifest.csv"
    idx = DatasetIndex(format="folder", root=root, samples=[])
    if manifest.exists():
        samples, named = _from_manifest(root, manifest)
    else:
        samples, named = _from_tree(root, idx), False
    if not samples:
        raise WdmtError(root, "no images found (expected normal/ and abnormal/ folders or a manifest.csv)")
    if not named:
        samples = assign_splits(samples, seed=seed)
    for d in duplicate_ids(samples):
        idx.problems.append(f"{root}: two images share the name {d!r}; rename one (outputs are keyed by name)")
    idx.samples = samples
    _orphan_masks(root, samples, idx)
    return idx


def _from_tree(root: Path, idx: DatasetIndex) -> list[Sample]:
    cache: dict = {}
    samples = []
    for label, sub in ((0, "normal"), (1, "abnormal")):
        for p in list_images(root / sub):
            masks = _match_masks(p.stem, root, cache)
            samples.append(Sample(id=p.stem, image=p, label=label, masks=masks, fov_mask=cache["fov"].get(p.stem)))
            if label == 0 and masks:
                idx.warnings.append(f"{p}: normal image has lesion masks; they are ignored for training")
    if not (root / "normal").is_dir() and not (root / "abnormal").is_dir():
        raise WdmtError(root, "no normal/ or abnormal/ folder and no manifest.csv")
    return samples


def _from_manifest(root: Path, manifest: Path) -> tuple[list[Sample], bool]:
    """Samples from manifest.csv, and whether it names their splits."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise WdmtError(manifest, f"cannot read manifest: {e}") from e
    if not rows:
        raise WdmtError(manifest, "manifest has no rows")
    cols = set(rows[0])
    missing = {"file", "label"} - cols
    if missing:
        raise WdmtError(manifest, f"manifest lacks column(s) {', '.join(sorted(missing))}")
    has_split = "split" in cols
    cache: dict = {}
    samples = []
    for i, row in enumerate(rows, start=2):
        image = _inside(root, (row["file"] or "").strip(), manifest, i)
        try:
            label = int((row["label"] or "").strip())
        except ValueError as e:
            raise WdmtError(manifest, f"row {i}: label {row['label']!r} is not 0 or 1") from e
        if label not in (0, 1):
            raise WdmtError(manifest, f"row {i}: label {label} is not 0 or 1")
        if "mask" in cols:
            masks = tuple(_inside(root, m.strip(), manifest, i) for m in (row["mask"] or "").split(";") if m.strip())
        else:
            masks = _match_masks(image.stem, root, cache)
        fov = (row.get("fov_mask") or "").strip()
        split = (row.get("split") or "").strip().lower() if has_split else ""
        if has_split and split not in ("train", "val", "test"):
            raise WdmtError(manifest, f"row {i}: split {split!r} is not train, val or test")
        if has_split and label == 1 and split != "test":
            raise WdmtError(
                manifest, f"row {i}: abnormal image in split {split!r}; train and val hold normal images only"
            )
        samples.append(
            Sample(
                id=image.stem,
                image=image,
                label=label,
                masks=masks,
                fov_mask=_inside(root, fov, manifest, i) if fov else None,
                split=split or "test",  # type: ignore[arg-type]
            )
        )
    return samples, has_split


def _orphan_masks(root: Path, samples: list[Sample], idx: DatasetIndex) -> None:
    """Mask files no image claims: usually a renamed or missing photograph."""
    used = {m.resolve() for s in samples for m in s.masks} | {s.fov_mask.resolve() for s in samples if s.fov_mask}
    stems = {s.id for s in samples}
    for p in list_images(root / "masks"):
        if p.resolve() in used or p.parent.name.lower() in NOT_LESION_DIRS - {"fov"}:
            continue
        base = p.stem
        if base in stems or any(base.startswith(s + "_") for s in stems):
            continue  # a per-kind mask of a known image that the union already covers
        idx.warnings.append(f"{p}: mask without an image")
