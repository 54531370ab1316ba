"""A harder proxy set tried on a fusion's weight: would it choose differently from the shipped proxy?

    python studies/2026-12-oracle-bound/proxy_beyond.py --runs FUSED_RUN [...] [--lesions beyond|annotated] [--save CSV]

The shipped proxy (:mod:`wdmt.proxy`) is saturated for the lesion segmenter (AUROC 0.998): its painted lesions are
ones the segmenter finds, so it refuses any prior beneath it. Real disease is, by definition, what the segmenter did
not train on, and a prior's job in a fusion is to cover that. This proxy keeps the painter's lesions and adds, on
every lesioned copy, lesions of the training generator's family (:mod:`wdmt.lesion_synth`) drawn outside the
segmenter's training ranges: 1-3 smooth-noise blobs at 32-128 px (training: 8-64) covering 0.5-4 % of the FOV
together, each either darker (the smoothed background times R 0.85-0.98, G 0.70-0.90, B 0.75-0.92; training's
green: 0.35-0.75) or brighter (+0.04-0.12, yellow; training +0.15-0.5), feathered by 2-6 px, opacity 0.5-1,
labelled where the opacity exceeds 0.25. The design and the rule (the shipped one, :func:`wdmt.fuse.choose_weight`)
were fixed before it was run.

``--lesions annotated``, a second design, also fixed before it was run (:func:`wdmt.proxy.paint_annotated`, since
offered by ``wdmt fuse --proxy annotated``): the painter's lesions as they are, with the haemorrhages labelled the
way annotators draw them, as regions rather than the painted pixels. Each picture's haemorrhage mask is grown by a
radius drawn once per picture from 2-6 px, haemorrhages closer than about 16 px are joined (a closing of radius 8 px)
and holes are filled (radii at 768 px, scaled to the picture). The idea comes from
reading the test set's masks (``mask_contrast.py``: a quarter of the haemorrhage mask is no darker than healthy
retina), so what it chooses is not free of the test set; its radii were not fitted to that figure, and nothing was
tuned after the run. Other kinds keep their exact masks.

For each fused run, every candidate weight: the shipped proxy's figures (recorded in ``fusion.json``) beside this
proxy's ("harder" columns), and each one's choice. Test photographs are not read (``fusion_weights.py`` has the test
figures per weight). Nothing is written into the runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from wdmt.fuse import FUSION_FILE, choose_weight, member_maps
from wdmt.measure.reports import report_runs, runs_parser
from wdmt.proxy import Painter, paint_annotated, paint_lesions, proxy_set
from wdmt.rundir import RunDir

DARK = ((0.85, 0.98), (0.70, 0.90), (0.75, 0.92))
YELLOW = np.array([1.0, 0.9, 0.3], np.float32)


def _blob(fov: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """One connected smooth-noise shape (the largest piece) covering about ``share`` of the FOV."""
    size = fov.shape[0]
    cells = max(2, int(size / 2 ** rng.uniform(5, 7)) + 1)
    noise = ndimage.zoom(rng.random((cells, cells)).astype(np.float32), size / cells, order=3)[:size, :size]
    shape = noise >= np.quantile(noise[fov], 1 - share)
    shape &= fov
    labels, n = ndimage.label(shape)
    if n > 1:
        shape = labels == 1 + int(np.argmax(ndimage.sum(shape, labels, range(1, n + 1))))
    return shape.astype(np.float32)


def beyond_training(rgb: np.ndarray, fov: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The lesions of the module docstring in an S x S RGB uint8 picture: (painted picture, mask within the FOV)."""
    img = rgb.astype(np.float32) / 255
    out, alpha_all = img.copy(), np.zeros(fov.shape, np.float32)
    background = ndimage.gaussian_filter(img, (3, 3, 0))  # what blood darkens: the same for every blob
    n = int(rng.integers(1, 4))
    total = rng.uniform(0.005, 0.04)
    for _ in range(n):
        alpha = ndimage.gaussian_filter(_blob(fov, total / n, rng), rng.uniform(2, 6)) * rng.uniform(0.5, 1.0) * fov
        if rng.random() < 0.5:
            factor = np.array([rng.uniform(lo, hi) for lo, hi in DARK], np.float32)
            fill = background * factor
        else:
            fill = np.clip(img + rng.uniform(0.04, 0.12) * YELLOW, 0, 1)
        out = out * (1 - alpha[..., None]) + fill * alpha[..., None]
        alpha_all = np.maximum(alpha_all, alpha)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8), (alpha_all > 0.25) & fov


def painter_and_beyond(rgb: np.ndarray, fov: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    painted, mask = paint_lesions(rgb, fov, rng)
    painted, more = beyond_training(painted, fov, rng)
    return painted, mask | more


PAINTERS: dict[str, Painter] = {"beyond": painter_and_beyond, "annotated": paint_annotated}


def run_rows(run: Path, lesions: str = "beyond") -> list[dict]:
    rd = RunDir(run)
    cfg, info = rd.config(), rd.read_json(FUSION_FILE)
    normals, _ = rd.reference_normals("the proxy set")
    ps = proxy_set(normals, cfg.preprocess, variants=3, seed=cfg.seed, paint=PAINTERS[lesions])
    seg, prior = member_maps(rd.load_model("best")[0].eval(), ps.lesioned)
    choice, rows = choose_weight(seg, prior, ps.lesioned, info["scale"], cfg.eval)
    return [{"run": run.name, "prior": cfg.model_options["prior"], "seed": cfg.seed, "weight": cand["weight"],
             "proxy_auroc": round(cand["proxy_auroc"], 4), "proxy_ap": round(cand["proxy_ap"], 4),
             "harder_auroc": round(r["proxy_auroc"], 4), "harder_ap": round(r["proxy_ap"], 4),
             "proxy_choice": "yes" if cand["weight"] == info["proxy_choice"] else "",
             "harder_choice": "yes" if cand["weight"] == choice else ""}
            for cand, r in zip(info["candidates"], rows, strict=True)]


def main() -> None:
    ap = runs_parser(__doc__)
    ap.add_argument("--lesions", choices=sorted(PAINTERS), default="beyond", help="which harder proxy (docstring)")
    a = ap.parse_args()
    report_runs(__doc__, lambda run: run_rows(run, a.lesions), a)


if __name__ == "__main__":
    main()
