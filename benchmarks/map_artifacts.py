"""Seams and rim in a run's heat maps, measured on its validation normals (no lesion there: whatever lights up is an
artefact of the method).

    python benchmarks/map_artifacts.py --run RUN [--save docs/....json]

For each tiling (the paper's grid, overlapping tiles, the whole picture where the model allows it, and the run's
tuned evaluation if it has one) it prints:
- seam ratio: the mean map on the former 3 x 3 tile boundaries (the two pixel rows and columns either side of each
  boundary, inside the FOV) over the mean 8-16 px away from them (target: within 5 %, i.e. <= 1.05);
- rim ratio: the mean map in the 10 px band inside the FOV's rim over the mean of the interior beyond it
  (target: <= 1.2).
Distances are pixels of a 768 px picture, scaled to the run's size. The maps are smoothed as each evaluation says.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wdmt.evaluate import infer  # noqa: E402
from wdmt.pipeline import load_samples  # noqa: E402
from wdmt.rundir import RunDir  # noqa: E402
from wdmt.tune import TUNING_FILE, candidate_tilings  # noqa: E402


def band_masks(size: int, n: int, fov: np.ndarray) -> dict[str, np.ndarray]:
    """Boundary pixels, pixels 8-16 px from a boundary, the 10 px rim band and the interior, all inside the FOV."""
    k = size / 768
    t = size // n
    idx = np.arange(size)
    d = np.min(np.abs(idx[:, None] - np.array([b * t - 0.5 for b in range(1, n)])[None, :]), axis=1)
    d_row, d_col = d[:, None], d[None, :]
    dist = np.minimum(np.broadcast_to(d_row, (size, size)), np.broadcast_to(d_col, (size, size)))
    seam = (dist <= max(1.0, 2 * k)) & fov  # bands never thinner than a pixel on small pictures
    near = (dist >= max(3.0, 8 * k)) & (dist <= max(6.0, 16 * k)) & fov
    inner = ndimage.binary_erosion(fov, iterations=max(1, round(10 * k)), border_value=1)
    return {"seam": seam, "near": near, "rim": fov & ~inner, "interior": inner}


def artifact_ratios(results: list, ev) -> dict[str, float]:
    sums = {k: 0.0 for k in ("seam", "near", "rim", "interior")}
    counts = dict.fromkeys(sums, 0)
    for r in results:
        m, fov = r.map(ev), r.item.prepared.fov
        for k, mask in band_masks(m.shape[0], 3, fov).items():
            sums[k] += float(m[mask].sum())
            counts[k] += int(mask.sum())
    mean = {k: sums[k] / max(counts[k], 1) for k in sums}
    return {"seam_ratio": mean["seam"] / mean["near"], "rim_ratio": mean["rim"] / mean["interior"],
            "mean_map": mean["interior"]}


def validation_normals(rd: RunDir, cfg) -> list:
    return load_samples(rd.reference_normals("the artefact figures")[0], cfg.preprocess, None, progress=False)


def run_ratios(run: Path) -> dict[str, float]:
    """Seam and rim ratios of a run's maps as it evaluates itself, on its validation normals."""
    rd = RunDir(run)
    model, cfg = rd.load_model()
    return artifact_ratios(infer(model, validation_normals(rd, cfg), cfg), cfg.eval)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--save", help="write the figures as JSON here")
    a = ap.parse_args()
    rd = RunDir(a.run)
    model, cfg = rd.load_model()
    val = validation_normals(rd, cfg)
    settings = {f"{t}, sigma {cfg.eval.smooth_sigma:g}": replace(cfg.eval, tiling=t, fov="inside")
                for t in candidate_tilings(model.info.input_size)}
    if (rd / TUNING_FILE).exists():
        from wdmt.config import EvalConfig

        tuned = EvalConfig(**rd.read_json(TUNING_FILE)["eval"])
        settings[f"tuned: {tuned.tiling}, sigma {tuned.smooth_sigma:g}"] = tuned
    rows = []
    for name, ev in settings.items():
        rows.append({"setting": name, **artifact_ratios(infer(model, val, cfg, ev), ev)})
    print(f"{a.run}: {len(val)} validation normals; preprocess surround={cfg.preprocess.surround}, "
          f"fov_loss={cfg.fov_loss}")
    print("| setting | seam ratio (target <= 1.05) | rim ratio (target <= 1.2) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['seam_ratio']:.3f} | {r['rim_ratio']:.3f} |")
    if a.save:
        Path(a.save).parent.mkdir(parents=True, exist_ok=True)
        Path(a.save).write_text(json.dumps({"run": str(a.run), "n_images": len(val), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
