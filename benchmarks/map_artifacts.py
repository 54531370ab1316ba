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

from wdmt.evaluate import infer
from wdmt.measure.maps import artifact_ratios, validation_normals
from wdmt.rundir import RunDir
from wdmt.tune import TUNING_FILE, candidate_tilings


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
