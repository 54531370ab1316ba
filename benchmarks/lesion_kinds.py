"""Where pixel ranking fails: a run's map judged per lesion kind and against the structures that are not lesions.

    python benchmarks/lesion_kinds.py --runs RUN [RUN ...] [--vessels] [--save CSV]

For IDRiD-style data (``masks/{MA,HE,EX,SE,OD}/<id>_<KIND>.png`` beside the union masks the run was tested on), on
the run's annotated test images, with its own evaluation settings and the map zeroed outside the field of view:
- per lesion kind: its share of the lesion pixels, and the pixel AUROC and AP of that kind's pixels against healthy
  retina (FOV pixels with no lesion of any kind; other kinds' pixels left out);
- the optic disc (not a lesion) against the rest of healthy retina: an AUROC above 0.5 means the disc lights up;
- what the brightest 1 % of FOV pixels are made of: each lesion kind, the disc, the 10 px band inside the rim, and
  the rest of healthy retina (shares of pixels, per image, then averaged).
A map can only reach a high pooled AUROC if every kind that carries many pixels ranks high; this says which do not.

With ``--vessels``, the vessels too, which IDRiD does not annotate: a vessel mask from a ridge filter (scikit-image's
Sato filter for dark ridges on the green channel, 1-3 px scales at 768 px), the ``VESSEL_SHARE`` of FOV pixels that
respond most (about the share of vessel pixels in manually segmented fundus photographs, e.g. DRIVE's 12-13 %). Rows:
healthy vessel pixels against the rest of healthy retina (does the map light vessels?), their share of the brightest
1 %, and the pooled lesion AUROC and AP with and without the vessel pixels among the negatives: how much any vessel
suppression could add at most, on this mask. The mask is rough (it also takes in lesion edges), so it is a
diagnostic, never a member.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from skimage.filters import sato

from wdmt.evaluate import infer
from wdmt.io import read_image, read_mask
from wdmt.measure.lesions import LESIONS, kind_masks
from wdmt.measure.maps import band_masks
from wdmt.measure.reports import report_runs, runs_parser
from wdmt.metrics import auroc_ap
from wdmt.pipeline import load_samples
from wdmt.preprocess import prepare
from wdmt.rundir import RunDir

TOP = 0.01
VESSEL_SHARE = 0.12


def vessel_mask(rgb: np.ndarray, fov: np.ndarray, share: float = VESSEL_SHARE) -> np.ndarray:
    """The ``share`` of FOV pixels with the strongest dark-ridge response in the green channel of an S x S RGB
    picture."""
    scale = rgb.shape[0] / 768
    ridge = sato(rgb[..., 1].astype(np.float32) / 255, sigmas=[scale, 2 * scale, 3 * scale], black_ridges=True)
    return fov & (ridge >= np.quantile(ridge[fov], 1 - share))


def _item_vessels(item, preprocess) -> np.ndarray:
    rgb_cfg = replace(preprocess, channels="rgb", surround="black")
    fov = read_mask(item.sample.fov_mask) if item.sample.fov_mask else None
    rgb = prepare(read_image(item.sample.image), rgb_cfg, fov=fov, source=str(item.sample.image)).image
    return vessel_mask(rgb, item.prepared.fov)


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


def annotated_maps(run: Path) -> tuple[object, list[tuple]]:
    """The run's config and, per annotated test image, (its item, its map inside the FOV, its kind masks)."""
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
    return cfg, [(r.item, r.map(ev), kind_masks(root, r.item, cfg.preprocess.mask_resize)) for r in results]


def _r(v) -> float | str:
    return "" if isinstance(v, str) else round(float(v), 4)


def _row(run: Path, cfg, kind: str, share="", auroc_ap=("", ""), top="") -> dict:
    return {"run": run.name, "model": cfg.model, "seed": cfg.seed, "kind": kind, "share_of_lesion_pixels": _r(share),
            "auroc_vs_healthy": _r(auroc_ap[0]), "ap_vs_healthy": _r(auroc_ap[1]), "share_of_top_1pct": _r(top)}


def kind_rows(run: Path, cfg, maps: list[tuple]) -> list[dict]:
    pools: dict[str, list[np.ndarray]] = {k: [] for k in (*LESIONS, "OD", "healthy")}
    top_share: dict[str, list[float]] = {k: [] for k in (*LESIONS, "OD", "rim", "other")}
    for item, amap, km in maps:
        fov = item.prepared.fov
        healthy = fov & ~np.logical_or.reduce([km[k] for k in LESIONS])
        for k in LESIONS:
            pools[k].append(amap[km[k] & fov])
        pools["OD"].append(amap[km["OD"] & healthy])
        pools["healthy"].append(amap[healthy & ~km["OD"]])
        for k, v in top_shares(amap, fov, km).items():
            top_share[k].append(v)
    pooled = {k: np.concatenate(v) for k, v in pools.items()}
    n_lesion = sum(len(pooled[k]) for k in LESIONS)
    rows = [_row(run, cfg, k, len(pooled[k]) / n_lesion if k in LESIONS else "",
                 auroc_ap(pooled[k], pooled["healthy"]), np.mean(top_share[k])) for k in (*LESIONS, "OD")]
    return rows + [_row(run, cfg, k, top=np.mean(top_share[k])) for k in ("rim", "other")]


def vessel_rows(run: Path, cfg, maps: list[tuple]) -> list[dict]:
    """The ``--vessels`` rows of the module docstring."""
    pools: dict[str, list[np.ndarray]] = {k: [] for k in ("lesion", "vessel", "rest", "rest_od")}
    top_share = []
    for item, amap, km in maps:
        fov = item.prepared.fov
        lesion = fov & np.logical_or.reduce([km[k] for k in LESIONS])
        vessel = _item_vessels(item, cfg.preprocess) & ~lesion
        top = fov & (amap >= np.quantile(amap[fov], 1 - TOP))
        top_share.append((top & vessel & ~km["OD"]).sum() / max(int(top.sum()), 1))
        pools["lesion"].append(amap[lesion])
        pools["vessel"].append(amap[vessel & ~km["OD"]])
        pools["rest"].append(amap[fov & ~lesion & ~vessel & ~km["OD"]])
        pools["rest_od"].append(amap[fov & ~lesion & ~vessel & km["OD"]])
    p = {k: np.concatenate(v) for k, v in pools.items()}
    negatives = np.concatenate([p["vessel"], p["rest"], p["rest_od"]])
    return [_row(run, cfg, "vessels (healthy)", auroc_ap=auroc_ap(p["vessel"], p["rest"]), top=np.mean(top_share)),
            _row(run, cfg, "all lesions", auroc_ap=auroc_ap(p["lesion"], negatives)),
            _row(run, cfg, "all lesions, vessels left out",
                 auroc_ap=auroc_ap(p["lesion"], np.concatenate([p["rest"], p["rest_od"]])))]


def run_rows(run: Path, vessels: bool = False) -> list[dict]:
    cfg, maps = annotated_maps(run)
    return kind_rows(run, cfg, maps) + (vessel_rows(run, cfg, maps) if vessels else [])


def main() -> None:
    ap = runs_parser(__doc__)
    ap.add_argument("--vessels", action="store_true", help="add the vessel rows (module docstring)")
    a = ap.parse_args()
    report_runs(__doc__, lambda run: run_rows(run, a.vessels), a)


if __name__ == "__main__":
    main()
