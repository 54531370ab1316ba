"""Every way a run's heat maps are judged, in one command, on the run's own test split:

    python benchmarks/maps_report.py --run RUN [--hrf ../shared/data/hrf] [--save docs/....json]

1. the paper's protocol (3 x 3 grid, all pixels, Youden's J on the test pixels) and the strict one (thresholds as
   quantiles of validation normals);
2. the same maps over pixels inside the field of view only, with the grid and with the whole picture;
3. ``wdmt tune`` (choices made on validation normals with synthetic lesions), then the tuned evaluation under the
   proxy's thresholds and under the strict quantile thresholds;
4. with ``--hrf``: image level on every HRF photograph (a camera the model never saw), tuned;
5. seam and rim ratios (``map_artifacts.py``) and the proxy's agreement with the test set (``proxy_agreement.py``).
Evaluations are written into the run as usual; the summary (printed, and saved with ``--save``) holds the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from wdmt import api
from wdmt.config import PAPER_EVAL
from wdmt.rundir import RunDir
from wdmt.tune import tune_run

HERE = Path(__file__).resolve().parent


def _row(m: dict) -> dict:
    p, i = m["pixel"], m["image"]
    return {"protocol": m["protocol"], "fov": m["eval"]["fov"], "tiling": m["eval"]["tiling"],
            "smooth_sigma": m["eval"]["smooth_sigma"], "score": m["eval"]["score"],
            "pixel_auroc": p.get("auroc"), "pixel_ap": p.get("ap"), "aupro": p.get("aupro"),
            "lesion_normal_contrast": (p.get("error") or {}).get("contrast"), "dice": p.get("f1"),
            "pixel_balanced_accuracy": p.get("balanced_accuracy"), "image_auroc": i.get("auroc"),
            "image_auroc_ci95": i.get("auroc_ci95"), "image_balanced_accuracy": i.get("balanced_accuracy"),
            "image_auroc_own_score": m["image_own"].get("auroc"),
            "all_pixels_auroc": (m.get("pixel_all_pixels") or {}).get("auroc")}


def evaluations(run: Path, hrf: str | None) -> dict[str, dict]:
    from dataclasses import replace

    cfg = RunDir(run).config()
    kw = {"pictures": 0, "progress": False}
    paper = replace(cfg.eval, **PAPER_EVAL)  # whatever the run's own defaults
    rows = {
        "paper protocol": api.test(run, ev=paper, out=run / "eval-test", **kw),
        "strict protocol": api.test(run, protocol="strict", ev=paper, out=run / "eval-test-strict", **kw),
        "FOV only, grid": api.test(run, ev=replace(paper, fov="inside"), out=run / "eval-test-inside", **kw),
        "FOV only, whole picture": api.test(run, ev=replace(cfg.eval, fov="inside", tiling="whole"),
                                            out=run / "eval-test-whole", **kw),
    }
    tune_run(run)
    rows["tuned, proxy thresholds"] = api.test(run, protocol="proxy", **{**kw, "pictures": 4})
    rows["tuned, strict thresholds"] = api.test(run, protocol="strict", tuned=True,
                                                out=run / "eval-test-tuned-strict", **kw)
    if hrf:
        rows["HRF, all 45, tuned"] = api.test(run, hrf, split="all", protocol="proxy", out=run / "eval-hrf-tuned", **kw)
    return {k: _row(v) for k, v in rows.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--hrf", help="an HRF folder dataset for the cross-camera image-level row")
    ap.add_argument("--save")
    a = ap.parse_args()
    run = Path(a.run)
    summary = {"run": str(run), "config": RunDir(run).read_json("config.json"), "rows": evaluations(run, a.hrf)}
    for script, key in (("map_artifacts.py", "artifacts"), ("proxy_agreement.py", "agreement")):
        out = run / f"{key}.json"
        subprocess.run([sys.executable, str(HERE / script), "--run", str(run), "--save", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        summary[key] = json.loads(out.read_text())
    summary["tuning"] = RunDir(run).read_json("tuning.json")
    text = json.dumps(summary, indent=2)
    print(text)
    if a.save:
        Path(a.save).parent.mkdir(parents=True, exist_ok=True)
        Path(a.save).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
