"""What sets the shipped model's image score on healthy photographs, and which part of its map moves when the same
photograph arrives at another resolution?

    python studies/2026-12-healthy-score/healthy_score.py --data ../shared/data/heimed \
        --save studies/2026-12-healthy-score/heimed-normals.csv

Healthy photographs only (no lesion, no abnormal photograph is read). For each: the image score (mean of the fused
map's top 1 % inside the field of view) split into the three terms of fundus-v4's map (the segmenter's probability,
PaDiM's share, the contrast map's share), averaged over those top pixels; then the same photograph downsized by
``--shrink`` first (as another camera or an archive's resizing would hand it over), and how much each term's part of
the score moved. And where the top pixels lie: near the optic disc (within 60 px of the brightest smoothed spot of
the green channel, a rough stand-in for a disc detector), in the 40 px band inside the rim, or elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown
from wdmt.io import read_image
from wdmt.preprocess import prepare, to_tensor
from wdmt.rundir import RunDir
from wdmt.shipped import shipped_run


def terms(model, picture) -> dict[str, np.ndarray]:
    """The fused map's three additive terms at S x S (their sum is the shipped map before the FOV mask)."""
    outer, inner = model.cfg, model.segmenter.cfg
    x = to_tensor(picture.image)[None]
    with torch.no_grad():
        seg, padim = model.segmenter.member_maps(x)
        contrast = model.prior.maps(x)[0].float()
    return {"segmenter": seg[0, 0].numpy(), "padim": (inner.weight / inner.scale * padim)[0, 0].numpy(),
            "contrast": (outer.weight / outer.scale * contrast)[0, 0].numpy()}


def split_score(parts: dict[str, np.ndarray], fov: np.ndarray, fraction: float = 0.01) -> dict[str, float]:
    """The image score and each term's share of it, over the top ``fraction`` of the fused map's FOV pixels."""
    total = sum(parts.values())[fov]
    k = max(1, round(total.size * fraction))
    top = np.argpartition(total, total.size - k)[-k:]
    out = {"score": float(total[top].mean())}
    out.update({name: float(p[fov][top].mean()) for name, p in parts.items()})
    return out


def zones(picture) -> dict[str, np.ndarray]:
    """Disc (rough: 60 px around the brightest smoothed green spot), the 40 px band inside the rim, the rest."""
    fov = picture.fov
    green = ndimage.gaussian_filter(picture.image[..., 1].astype(np.float32), 15) * fov
    cy, cx = np.unravel_index(np.argmax(green), green.shape)
    yy, xx = np.indices(fov.shape)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 60**2) & fov
    rim = fov & ~ndimage.binary_erosion(fov, iterations=40, border_value=1) & ~disc
    return {"disc": disc, "rim": rim, "elsewhere": fov & ~disc & ~rim}


def where(parts: dict[str, np.ndarray], picture, fraction: float = 0.01) -> dict[str, float]:
    """Shares of the fused map's top ``fraction`` of FOV pixels in each zone."""
    total = sum(parts.values()) * picture.fov
    cut = np.quantile(total[picture.fov], 1 - fraction)
    top = (total >= cut) & picture.fov
    return {f"top_in_{k}": round(float((top & z).sum() / max(top.sum(), 1)), 3) for k, z in zones(picture).items()}


def row(model, pre, path: Path, shrink: float) -> dict:
    rgb = read_image(path)
    small = np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * shrink), round(rgb.shape[0] * shrink)),
                                                   Image.LANCZOS))
    a, b = prepare(rgb, pre), prepare(small, pre)
    parts = terms(model, a)
    full, shrunk = split_score(parts, a.fov), split_score(terms(model, b), b.fov)
    r = {"photo": path.name, **{f"{k}": round(v, 5) for k, v in full.items()}, **where(parts, a)}
    r.update({f"{k}_shrunk": round(v, 5) for k, v in shrunk.items()})
    r["score_change"] = round(shrunk["score"] / full["score"] - 1, 4)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder dataset; its normal/ photographs are read")
    ap.add_argument("--shrink", type=float, default=0.75, help="the downsizing applied before the second scoring")
    ap.add_argument("--save", type=Path, help="write the per-photograph rows to this CSV")
    a = ap.parse_args()
    model, cfg = RunDir(shipped_run()).load_model()
    rows = [row(model, cfg.preprocess, p, a.shrink) for p in sorted((a.data / "normal").glob("*.jpg"))]
    if a.save:
        write_csv_atomic(a.save, rows)
    keys = ("score", "segmenter", "padim", "contrast")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    moved = {k: float(np.median([abs(r[f"{k}_shrunk"] - r[k]) for r in rows])) for k in keys}
    print(markdown([{"term": k, "mean part of the score": round(mean[k], 5),
                     "median |change| when shrunk": round(moved[k], 5)} for k in keys]), end="")
    print(f"median relative score change: {np.median([r['score_change'] for r in rows]):+.3f}; "
          f"photographs: {len(rows)}; top 1 % in the disc zone, rim band, elsewhere (means): "
          + ", ".join(f"{np.mean([r[f'top_in_{z}'] for r in rows]):.2f}" for z in ("disc", "rim", "elsewhere")))


if __name__ == "__main__":
    main()
