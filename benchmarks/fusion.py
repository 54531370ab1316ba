"""The lesion segmenter's map with a feature model's beneath it: does a smooth normality model order the pixels the
segmenter leaves at zero?

    python benchmarks/fusion.py --seg SYNTH_SEG_RUN --prior PADIM_OR_PATCHCORE_RUN [--save docs/....csv]

The segmenter's probability is near zero on most of the retina, so its pooled pixel AUROC is set by an arbitrary
order among near-zero values; a feature model's distance ranks every pixel. The fused map is ``p_seg + w * d / q``:
``d`` is the prior's map (PaDiM's or PatchCore's distance), ``q`` its 0.99 quantile over the validation normals' FOV
pixels (so ``d / q`` is about 1 at the healthy retina's extremes and ``w`` is on the probability's scale). Both runs
must share data and split.

``w`` is chosen on the segmenter run's proxy set (its validation normals with :mod:`wdmt.synth`'s painted lesions; a
different generator from the one the segmenter trained on), by a rule fixed before any test number was read: the
largest proxy pixel AUROC among the weights whose proxy AP is at least 0.9 x the segmenter's own. The test rows are
printed for every ``w`` so the choice can be read against them; they choose nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wdmt import metrics as M  # noqa: E402
from wdmt.atomic import write_csv_atomic  # noqa: E402
from wdmt.benchmark.tables import markdown  # noqa: E402
from wdmt.evaluate import infer  # noqa: E402
from wdmt.pipeline import load_samples  # noqa: E402
from wdmt.proxy import proxy_set  # noqa: E402
from wdmt.rundir import RunDir  # noqa: E402

WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def maps(run: Path, items: list) -> list[np.ndarray]:
    rd = RunDir(run)
    cfg = rd.config()
    ev = replace(cfg.eval, fov="inside")
    return [r.map(ev) for r in infer(rd.load_model("best")[0], items, cfg, ev)]


def pixel_scores(seg: list, pad: list, items: list, w: float, q: float) -> dict[str, float]:
    s = np.concatenate([(a + w * b / q)[it.prepared.fov] for a, b, it in zip(seg, pad, items, strict=True)])
    y = np.concatenate([it.prepared.lesion[it.prepared.fov] for it in items])
    c = M.curve(s, y)
    return {"auroc": M.auroc(c), "ap": M.average_precision(c)}


def pair_rows(seg: Path, prior: Path) -> list[dict]:
    rd = RunDir(seg)
    cfg = rd.config()
    split = ("root", "splits")
    if any(RunDir(prior).read_json("data.json").get(k) != rd.read_json("data.json").get(k) for k in split):
        raise SystemExit(f"{seg} and {prior} were not trained on the same data and split")
    normals, _ = rd.reference_normals("the fusion weight")
    ps = proxy_set(normals, cfg.preprocess, variants=3, seed=cfg.seed)
    idx, _ = rd.dataset()
    test = load_samples([s for s in idx.split("test") if s.has_mask], cfg.preprocess, None, progress=False)
    seg_p, pri_p = maps(seg, ps.items), maps(prior, ps.items)
    seg_t, pri_t = maps(seg, test), maps(prior, test)
    n = len(ps.normal)
    q = float(np.quantile(np.concatenate([m[it.prepared.fov] for m, it in zip(pri_p[:n], ps.normal, strict=True)]),
                          0.99))
    rows = []
    for w in WEIGHTS:
        p = pixel_scores(seg_p[n:], pri_p[n:], ps.lesioned, w, q)
        t = pixel_scores(seg_t, pri_t, test, w, q)
        rows.append({"seg_run": seg.name, "prior_run": prior.name, "w": w, "proxy_auroc": round(p["auroc"], 4),
                     "proxy_ap": round(p["ap"], 4), "test_auroc_fov": round(t["auroc"], 4),
                     "test_ap_fov": round(t["ap"], 4)})
    floor = 0.9 * rows[0]["proxy_ap"]
    chosen = max((r for r in rows if r["proxy_ap"] >= floor), key=lambda r: r["proxy_auroc"])
    for r in rows:
        r["chosen"] = r is chosen
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seg", nargs="+", required=True, type=Path, help="segmenter runs")
    ap.add_argument("--prior", nargs="+", required=True, type=Path, help="feature-model runs, paired in order")
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    if len(a.seg) != len(a.prior):
        raise SystemExit("give one --prior run per --seg run")
    rows = [r for seg, prior in zip(a.seg, a.prior, strict=True) for r in pair_rows(seg, prior)]
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
