"""How much of each lesion kind's annotated area looks like that lesion: IDRiD's masks against the photographs.

    python studies/2026-12-oracle-bound/mask_contrast.py --data ../shared/data/idrid [--save CSV]

No model: the annotated test photographs (prepared as every model sees them, 768 px, colour) and their per-kind
masks. Each pixel's contrast is its green value against the local background, the median over a ``W`` px window
(``WINDOWS``: from a small blot's size to twice the largest blot's), signed so that positive means darker for red
lesions (microaneurysms, haemorrhages) and brighter for bright ones (hard and soft exudates). Green carries most
lesion contrast in fundus photographs. Healthy retina: FOV pixels more than 3 px from any lesion, the disc left out.

Per kind and window: the share of the kind's pixels no more contrasted than the median healthy pixel (in this
channel they look like healthy retina), the share more contrasted than 90 % of healthy pixels, and the pixel AUROC
of the contrast alone against healthy retina. A map can rank a pixel that looks like healthy retina above healthy
retina only through what lies around it (a smoothed or region-level response), so a kind whose mask holds many such
pixels rewards maps that spread their response, and caps any map that does not. A diagnostic of the test masks, read
for the docs; it chooses nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown
from wdmt.datasets import open_dataset
from wdmt.measure.lesions import LESIONS, kind_masks
from wdmt.metrics import auroc_ap
from wdmt.pipeline import load_samples
from wdmt.preprocess import PreprocessConfig

WINDOWS = (41, 81, 161)
RED = ("MA", "HE")
MARGIN = 3


def local_contrast(green: np.ndarray, window: int) -> np.ndarray:
    """Green value minus its local median (positive: brighter), the median taken at a quarter of the resolution
    (a 161 px median at full size would take minutes per picture)."""
    g = green.astype(np.float32)
    small = ndimage.zoom(g, 0.25, order=1)
    bg = ndimage.median_filter(small, size=max(3, window // 4))
    bg = ndimage.zoom(bg, np.array(g.shape) / np.array(small.shape), order=1)[: g.shape[0], : g.shape[1]]
    return g - bg


def toward_lesion(kind: str) -> int:
    """The sign that makes a kind's contrast positive: darker for red lesions, brighter for bright ones."""
    return -1 if kind in RED else 1


def kind_contrast(contrast: np.ndarray, km: dict[str, np.ndarray], fov: np.ndarray) -> tuple[dict, np.ndarray]:
    """({kind: its pixels' contrast, signed toward the lesion}, healthy pixels' contrast, unsigned)."""
    lesion = np.logical_or.reduce([km[k] for k in LESIONS])
    healthy = fov & ~ndimage.binary_dilation(lesion, iterations=MARGIN) & ~km["OD"]
    return {k: toward_lesion(k) * contrast[km[k] & fov] for k in LESIONS}, contrast[healthy]


def shares(kind: np.ndarray, healthy: np.ndarray) -> dict[str, float]:
    """``kind`` and ``healthy`` signed the same way (positive: toward the lesion)."""
    q50, q90 = np.quantile(healthy, [0.5, 0.9])
    return {"share_like_healthy": float(np.mean(kind <= q50)), "share_beyond_healthy_q90": float(np.mean(kind > q90)),
            "auroc_vs_healthy": auroc_ap(kind, healthy)[0]}


def rows_for(data: Path) -> list[dict]:
    idx = open_dataset(data)
    samples = [s for s in idx.split("test") if s.has_mask]
    cfg = PreprocessConfig(channels="rgb")
    items = load_samples(samples, cfg, None, progress=False)
    masks = [kind_masks(data, it, cfg.mask_resize) for it in items]  # read once, used for every window
    rows = []
    for w in WINDOWS:
        pools: dict[str, list[np.ndarray]] = {k: [] for k in LESIONS}
        healthy: list[np.ndarray] = []
        for it, km in zip(items, masks, strict=True):
            contrast = local_contrast(it.prepared.image[..., 1], w)
            kinds, h = kind_contrast(contrast, km, it.prepared.fov)
            for k, v in kinds.items():
                pools[k].append(v)
            healthy.append(h)
        h = np.concatenate(healthy)
        for k in LESIONS:
            v = np.concatenate(pools[k])
            rows.append({"window_px": w, "kind": k, "pixels": len(v),
                         **{n: round(x, 4) for n, x in shares(v, toward_lesion(k) * h).items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    rows = rows_for(a.data)
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
