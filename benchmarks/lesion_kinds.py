"""Where pixel ranking fails: a run's map judged per lesion kind and against the structures that are not lesions.

    python benchmarks/lesion_kinds.py --runs RUN [RUN ...] [--save docs/....csv]

For IDRiD-style data (``masks/{MA,HE,EX,SE,OD}/<id>_<KIND>.png`` beside the union masks the run was tested on), on
the run's annotated test images, with its own evaluation settings and the map zeroed outside the field of view:
- per lesion kind: its share of the lesion pixels, and the pixel AUROC and AP of that kind's pixels against healthy
  retina (FOV pixels with no lesion of any kind; other kinds' pixels left out);
- the optic disc (not a lesion) against the rest of healthy retina: an AUROC above 0.5 means the disc lights up;
- what the brightest 1 % of FOV pixels are made of: each lesion kind, the disc, the 10 px band inside the rim, and
  the rest of healthy retina (shares of pixels, per image, then averaged).
A map can only reach a high pooled AUROC if every kind that carries many pixels ranks high; this says which do not.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from map_artifacts import band_masks  # noqa: E402
from run_report import report_runs  # noqa: E402

from wdmt import metrics as M  # noqa: E402
from wdmt.evaluate import infer  # noqa: E402
from wdmt.io import read_mask  # noqa: E402
from wdmt.pipeline import load_samples  # noqa: E402
from wdmt.preprocess import resize_mask  # noqa: E402
from wdmt.rundir import RunDir  # noqa: E402

LESIONS = ("MA", "HE", "EX", "SE")
TOP = 0.01


def kind_masks(root: Path, item, rule: str) -> dict[str, np.ndarray]:
    """Each kind's mask at the prepared size (all-false where the image has none of it)."""
    size = item.prepared.fov.shape
    out = {}
    for kind in (*LESIONS, "OD"):
        path = root / "masks" / kind / f"{item.sample.id}_{kind}.png"
        out[kind] = (resize_mask(read_mask(path), item.prepared.geometry, rule) if path.is_file()
                     else np.zeros(size, bool))
    return out


def _auroc_ap(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    if not len(pos) or not len(neg):
        return float("nan"), float("nan")
    c = M.curve(np.concatenate([pos, neg]), np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    return M.auroc(c), M.average_precision(c)


def top_shares(amap: np.ndarray, fov: np.ndarray, km: dict[str, np.ndarray]) -> dict[str, float]:
    """What the brightest ``TOP`` share of FOV pixels are, each pixel counted once: lesion kinds first, then the disc,
    the rim band, and the rest."""
    top = fov & (amap >= np.quantile(amap[fov], 1 - TOP))
    n = max(int(top.sum()), 1)
    claimed = np.zeros_like(fov)
    out = {}
    for k in (*LESIONS, "OD"):
        hit = top & km[k] & ~claimed
        out[k] = hit.sum() / n
        claimed |= hit
    rim = top & band_masks(fov.shape[0], 3, fov)["rim"] & ~claimed
    out["rim"] = rim.sum() / n
    out["other"] = (top & ~claimed & ~rim).sum() / n
    return out


def run_rows(run: Path) -> list[dict]:
    rd = RunDir(run)
    cfg = rd.config()
    idx, info = rd.dataset()
    root = Path(info["root"])
    samples = [s for s in idx.split("test") if s.has_mask]
    if not (root / "masks" / "EX").is_dir():
        raise SystemExit(f"{root}: no masks/EX folder; this script needs IDRiD's per-kind masks")
    items = load_samples(samples, cfg.preprocess, None, progress=False)
    ev = replace(cfg.eval, fov="inside")
    results = infer(rd.load_model("best")[0], items, cfg, ev)
    pools: dict[str, list[np.ndarray]] = {k: [] for k in (*LESIONS, "OD", "healthy")}
    top_share: dict[str, list[float]] = {k: [] for k in (*LESIONS, "OD", "rim", "other")}
    for r in results:
        fov, amap = r.item.prepared.fov, r.map(ev)
        km = kind_masks(root, r.item, cfg.preprocess.mask_resize)
        any_lesion = np.logical_or.reduce([km[k] for k in LESIONS])
        healthy = fov & ~any_lesion
        for k in LESIONS:
            pools[k].append(amap[km[k] & fov])
        pools["OD"].append(amap[km["OD"] & healthy])
        pools["healthy"].append(amap[healthy & ~km["OD"]])
        for k, v in top_shares(amap, fov, km).items():
            top_share[k].append(v)
    pooled = {k: np.concatenate(v) for k, v in pools.items()}
    n_lesion = sum(len(pooled[k]) for k in LESIONS)
    rows = []
    for k in (*LESIONS, "OD"):
        auroc, ap = _auroc_ap(pooled[k], pooled["healthy"])
        rows.append({"run": run.name, "model": cfg.model, "seed": cfg.seed, "kind": k,
                     "share_of_lesion_pixels": round(len(pooled[k]) / n_lesion, 4) if k in LESIONS else "",
                     "auroc_vs_healthy": round(auroc, 4), "ap_vs_healthy": round(ap, 4),
                     "share_of_top_1pct": round(float(np.mean(top_share[k])), 4)})
    for k in ("rim", "other"):
        rows.append({"run": run.name, "model": cfg.model, "seed": cfg.seed, "kind": k, "share_of_lesion_pixels": "",
                     "auroc_vs_healthy": "", "ap_vs_healthy": "",
                     "share_of_top_1pct": round(float(np.mean(top_share[k])), 4)})
    return rows


def main() -> None:
    report_runs(__doc__, run_rows)


if __name__ == "__main__":
    main()
