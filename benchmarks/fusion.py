"""The lesion segmenter alone and fused with each feature model (``wdmt fuse``), per seed, side by side:

    python benchmarks/fusion.py --bench bench/idrid-cpu [--seeds 5 6 7] [--priors padim patchcore]
                                [--segmenter-tilings overlap whole] [--segmenter synth-seg]
                                [--save docs/benchmarks/idrid-cpu/beyond/fusion.csv]

``--bench`` is a ``wdmt benchmark --suite beyond`` output folder: its ``runs/synth-seg-sS`` and ``runs/PRIOR-sS`` are
fused into ``runs/fusion-PRIOR-sS`` (the weight is the proxy set's choice, :mod:`wdmt.fuse`), and
``runs/synth-seg-overlap-sS`` is the segmenter alone scored the way the fusion scores it (weight 0: overlapping
tiles, FOV pixels only), so the fusion's gain is not mixed with the tiling's. With ``whole`` among the segmenter
tilings, ``runs/fusion-PRIOR-whole-sS`` has the segmenter score the whole picture in one pass instead. With
``--segmenter NAME`` the segmenter runs are ``runs/NAME-sS`` (e.g. ``synth-seg-fundus``, trained with
``configs/synth-fundus.yaml``) and every output name starts ``NAME-`` instead (``synth-seg-fundus-overlap-sS``,
``fusion-synth-seg-fundus-padim-sS``). A fused run is a segmenter too: ``--segmenter fusion-synth-seg-fundus-padim
--priors contrast`` stacks a second prior beneath that fusion (its "segmenter alone" row is then the first fusion,
scored in one pass of the stacked model, so its tiling reads ``whole``). Each is tested
with strict thresholds from validation normals; the row holds the honest protocol's numbers, the paper protocol's
all-pixel AUROC, and the seam and rim ratios of its maps on the validation normals (``map_artifacts.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wdmt import api
from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown
from wdmt.fuse import FUSION_FILE, fuse_runs
from wdmt.measure.maps import run_ratios
from wdmt.rundir import RunDir


def _r(v: float | None) -> float | str:
    return "" if v is None else round(v, 4)


def evaluated_row(run: Path, label: str, seed: int) -> dict:
    folder = run / "eval-test-inside"
    if not (folder / "metrics.json").exists():
        api.test(run, protocol="strict", out=folder, pictures=0, progress=False)
    rd = RunDir(run)
    m, f = rd.read_json("eval-test-inside/metrics.json"), rd.read_json(FUSION_FILE)
    chosen = next(r for r in f["candidates"] if r["weight"] == f["weight"])
    p, i = m["pixel"], m["image"]
    art = run_ratios(run)
    tiling = "overlap" if rd.config().model_options["segmenter_tiles"] > 1 else "whole"
    return {"method": label, "seed": seed, "segmenter_tiling": tiling, "weight": f["weight"],
            "proxy_auroc": _r(chosen["proxy_auroc"]), "proxy_ap": _r(chosen["proxy_ap"]),
            "auroc_fov": _r(p["auroc"]), "ap_fov": _r(p["ap"]),
            "dice_strict_fov": _r(p.get("f1")), "image_auroc": _r(i.get("auroc")),
            "image_acc_strict": _r(i.get("balanced_accuracy")),
            "auroc_all_pixels": _r((m.get("pixel_all_pixels") or {}).get("auroc")),
            "seam_ratio_val": _r(art["seam_ratio"]), "rim_ratio_val": _r(art["rim_ratio"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[5, 6, 7])
    ap.add_argument("--priors", nargs="+", default=["padim", "patchcore"])
    ap.add_argument("--segmenter-tilings", nargs="+", default=["overlap"], choices=["overlap", "whole"])
    ap.add_argument("--segmenter", default="synth-seg", help="the segmenter runs' name, before -sS")
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    runs = a.bench / "runs"
    rows = []
    for seed in a.seeds:
        seg = runs / f"{a.segmenter}-s{seed}"
        alone = runs / f"{a.segmenter}-overlap-s{seed}"
        fused = "fusion" if a.segmenter == "synth-seg" else f"fusion-{a.segmenter}"
        if not (alone / "summary.json").exists():
            fuse_runs(seg, runs / f"{a.priors[0]}-s{seed}", alone, weight=0.0, overwrite=True)
        rows.append(evaluated_row(alone, f"{a.segmenter} (overlapping tiles)", seed))
        for prior in a.priors:
            for tiling in a.segmenter_tilings:
                name = f"{fused}-{prior}" if tiling == "overlap" else f"{fused}-{prior}-{tiling}"
                out = runs / f"{name}-s{seed}"
                if not (out / "summary.json").exists():
                    fuse_runs(seg, runs / f"{prior}-s{seed}", out, segmenter_tiling=tiling, overwrite=True)
                rows.append(evaluated_row(out, f"fusion: {a.segmenter} + {prior}", seed))
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
