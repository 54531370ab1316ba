"""``wdmt fuse``: one run from a fitted lesion segmenter and a fitted feature model (:mod:`wdmt.models.fusion`).

The weight of the feature model's map is chosen on the proxy validation set (the segmenter run's validation normals
with :mod:`wdmt.synth`'s painted lesions; a different generator from the one the segmenter trained on), by a rule
fixed before any test number was read: the largest proxy pixel AUROC (inside the field of view) among the weights
whose proxy AP is at least ``AP_KEPT`` of the segmenter's own (weight 0). The test split chooses nothing.

The fused run is an ordinary run directory (config, data split, weights of both members, ``fusion.json`` with every
candidate), so ``wdmt test``, ``predict``, ``export`` and ``serve`` take it like any other, and ``wdmt fuse`` takes it
as the segmenter of a second fusion: a second prior stacks on the first by the same rule (the segmenter + PaDiM
fusion, then the vessel-free ``contrast`` map beneath both; docs/methods.md).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wdmt import metrics as M
from wdmt.config import TrainConfig, to_dict
from wdmt.errors import WdmtError
from wdmt.models import create_model
from wdmt.preprocess import to_tensor
from wdmt.proxy import PAINTERS, proxy_set
from wdmt.rundir import RunDir, recorded
from wdmt.runtime import environment
from wdmt.scoring import postprocess_map

WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
AP_KEPT = 0.9
SCALE_QUANTILE = 0.99
FUSION_FILE = "fusion.json"
_SAME_PREPROCESSING = ("size", "channels", "surround", "mask_resize")


def _check_compatible(seg: RunDir, prior: RunDir) -> tuple[TrainConfig, TrainConfig]:
    s, p = seg.config(), prior.config()
    for rd in (seg, prior):
        if not rd.finished_training:
            raise WdmtError(rd.root, "not a finished run (no summary.json)")
    a, b = seg.read_json("data.json"), prior.read_json("data.json")
    if not prior.same_data(a["root"]) or a["splits"] != b["splits"]:
        raise WdmtError(prior.root, f"not trained on the data and split of {seg.root}")
    for k in _SAME_PREPROCESSING:
        if getattr(s.preprocess, k) != getattr(p.preprocess, k):
            raise WdmtError(prior.root, f"preprocess.{k} is {getattr(p.preprocess, k)!r}, the segmenter's is "
                            f"{getattr(s.preprocess, k)!r}: the two maps would not cover the same pixels")
    return s, p


def fused_config(s: TrainConfig, p: TrainConfig, weight: float, scale: float,
                 segmenter_tiling: str = "overlap") -> TrainConfig:
    """The fused run's config: the segmenter run's, on whole pictures, with both members described.
    ``segmenter_tiling``: ``overlap`` (overlapping tiles of its training tile, blended) or ``whole`` (one pass)."""
    if segmenter_tiling not in ("overlap", "whole"):
        raise WdmtError(None, f"segmenter tiling must be overlap or whole, not {segmenter_tiling!r}")
    tiles = s.preprocess.tiles if segmenter_tiling == "overlap" else 1
    opts = {"segmenter": s.model, "segmenter_options": recorded(s).model_options,
            "segmenter_tiles": tiles, "prior": p.model, "prior_options": recorded(p).model_options,
            "prior_tiles": p.preprocess.tiles, "weight": weight, "scale": scale}
    return replace(s, model="fusion", model_options=opts, preprocess=replace(s.preprocess, tiles=1),
                   eval=replace(s.eval, tiling="whole", fov="inside"))


def fov_pixels(maps: list[np.ndarray], items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, lesion labels) of every FOV pixel of prepared items, pooled: what a proxy curve is drawn from."""
    return (np.concatenate([m[it.prepared.fov] for m, it in zip(maps, items, strict=True)]),
            np.concatenate([it.prepared.lesion[it.prepared.fov] for it in items]))


def choose_weight(seg: list[np.ndarray], prior: list[np.ndarray], items: list[Any], scale: float,
                  ev: Any) -> tuple[float, list[dict[str, float]]]:
    """The proxy's choice of weight (module docstring) and every candidate's proxy AUROC and AP."""
    rows = []
    for w in WEIGHTS:
        maps = [postprocess_map(a + (w / scale) * b, it.prepared.fov, ev)
                for a, b, it in zip(seg, prior, items, strict=True)]
        c = M.curve(*fov_pixels(maps, items))
        rows.append({"weight": w, "proxy_auroc": M.auroc(c), "proxy_ap": M.average_precision(c)})
    floor = AP_KEPT * rows[0]["proxy_ap"]
    best = max((r for r in rows if r["proxy_ap"] >= floor), key=lambda r: r["proxy_auroc"])
    return best["weight"], rows


@torch.no_grad()
def member_maps(model: Any, items: list[Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    seg, prior = [], []
    for it in items:
        a, b = model.member_maps(to_tensor(it.prepared.image)[None])
        seg.append(a[0, 0].numpy())
        prior.append(b[0, 0].numpy())
    return seg, prior


def fuse_runs(segmenter: str | Path, prior: str | Path, out: str | Path, *, weight: float | None = None,
              segmenter_tiling: str = "overlap", overwrite: bool = False, variants: int = 3,
              proxy: str = "painted") -> dict[str, Any]:
    """Build the fused run in ``out``; returns what ``fusion.json`` holds. ``weight``: the prior's share as given
    (0: the segmenter alone on the fused run's tiling, for ablations) instead of the proxy's choice. ``proxy``: the
    lesion set that chooses it (:data:`wdmt.proxy.PAINTERS`)."""
    if proxy not in PAINTERS:
        raise WdmtError(None, f"--proxy must be one of {', '.join(PAINTERS)}, not {proxy!r}")
    seg_rd, prior_rd, out = RunDir(segmenter), RunDir(prior), Path(out)
    s, p = _check_compatible(seg_rd, prior_rd)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise WdmtError(out, "run directory exists and is not empty; use --overwrite")
        shutil.rmtree(out)
    cfg = fused_config(s, p, 0.0, 1.0, segmenter_tiling)
    model = create_model("fusion", **cfg.model_options, in_channels=cfg.preprocess.in_channels, pretrained=False)
    model.segmenter.load_state_dict(seg_rd.load("best")["model"])
    model.prior.load_state_dict(prior_rd.load("best")["model"])
    model.eval()
    normals, is_val = seg_rd.reference_normals("the fusion weight")
    ps = proxy_set(normals, cfg.preprocess, variants=variants, seed=cfg.seed, paint=PAINTERS[proxy])
    seg_maps, prior_maps = member_maps(model, ps.items)
    n = len(ps.normal)
    scale = float(np.quantile(np.concatenate([m[it.prepared.fov] for m, it in zip(prior_maps[:n], ps.normal,
                                                                                    strict=True)]), SCALE_QUANTILE))
    scale = scale if scale > 0 else 1.0
    chosen, rows = choose_weight(seg_maps[n:], prior_maps[n:], ps.lesioned, scale, cfg.eval)
    if weight is None:
        weight = chosen
    elif weight < 0:
        raise WdmtError(None, f"--weight must be 0 or more, not {weight}")
    cfg = fused_config(s, p, weight, scale, segmenter_tiling)
    rd = RunDir(out)
    rd.start(cfg, environment(torch.device("cpu"), cfg.seed), seg_rd.read_json("data.json"))
    state = {f"segmenter.{k}": v for k, v in model.segmenter.state_dict().items()}
    state |= {f"prior.{k}": v for k, v in model.prior.state_dict().items()}
    rd.save("best", {"model": state, "model_name": "fusion"})
    info = {"segmenter_run": str(seg_rd.root), "prior_run": str(prior_rd.root), "weight": weight, "scale": scale,
            "scale_rule": f"quantile {SCALE_QUANTILE} of the prior's map over the proxy's clean copies' FOV pixels",
            "rule": (f"the largest proxy pixel AUROC inside the FOV among the weights whose proxy AP is at least "
                     f"{AP_KEPT} x the segmenter's own (weight 0)") if weight == chosen else "given (--weight)",
            "proxy_choice": chosen,
            "proxy": {"source": "validation normals" if is_val else "training normals (no validation split)",
                      "normal_images": n, "lesioned_images": len(ps.lesioned), "lesions": proxy},
            "candidates": rows, "eval": asdict(cfg.eval)}
    rd.write_json(FUSION_FILE, info)
    from wdmt.calibration import calibrate_run

    rd.write_json("summary.json", {"model": "fusion", "fusion": {"weight": weight, "scale": scale},
                                   "calibration": calibrate_run(out), "config": to_dict(cfg)})
    return info
