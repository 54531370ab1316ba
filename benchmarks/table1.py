"""Table 1 of the paper (the six WDMT-Net ablation rows) on one dataset, one preset: train, test, print a table.

    python benchmarks/table1.py --data ../shared/data/idrid --preset cpu --out runs/table1-idrid

Runs that already finished (summary.json present) are not trained again, and a run that was killed part-way resumes
from its last epoch, so the script can simply be started again.
Prints a Markdown table (paper protocol, pixel level, with and without FOV masking) and writes it to OUT/table1.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from wdmt import api
from wdmt.config import resolve_config
from wdmt.train import load_run_model

ROWS = ["ae", "unet", "wdmt-nohog", "ae-hog", "unet-hog", "wdmt"]
PAPER_IDRID = {"ae": ".686/.627/.537", "unet": ".553/.564/.532", "wdmt-nohog": ".725/.667/.680",
               "ae-hog": ".715/.655/.664", "unet-hog": ".640/.597/.539", "wdmt": ".748/.694/.711"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="+", default=ROWS)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--set", action="append", default=[], help="model option KEY=VALUE for every row")
    a = ap.parse_args()
    out = Path(a.out)
    opts = {k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v for k, v in (s.split("=", 1) for s in a.set)}
    lines = ["| model | pixel AUROC (95% CI) | bal. acc | F1-micro | Dice | AP | AUPRO | AUROC, map zeroed outside FOV | AUROC, FOV pixels only | train min (sum of epochs) | paper IDRiD AUC/ACC/F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in a.models:
        run = out / name
        if not (run / "summary.json").exists():
            over = {"model": name, "epochs": a.epochs, "seed": a.seed}
            if opts:
                over["model_options"] = opts
            cfg = resolve_config(a.preset, **over)
            partial = (run / "checkpoints" / "last.pt").exists() and (run / "config.json").exists()
            api.train(a.data, cfg, run, overwrite=not partial, resume=partial, progress=True)
        import csv

        train_min = sum(float(r["seconds"]) for r in csv.DictReader(open(run / "log.csv"))) / 60  # epochs only
        _, cfg = load_run_model(run)
        r = api.test(run, protocol="paper", pictures=3, progress=False)
        z = api.test(run, protocol="paper", ev=replace(cfg.eval, fov="zero"), out=run / "eval-test-fovzero",
                     pictures=0, progress=False)
        p, pz = r["pixel"], z["pixel"]
        ci = p["auroc_ci95"]
        lines.append(f"| {name} | {p['auroc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f}) | {p['balanced_accuracy']:.3f} | {p['f1_micro']:.3f} | "
                     f"{p['f1']:.3f} | {p['ap']:.3f} | {p['aupro']:.3f} | {pz['auroc']:.3f} | {r['pixel_auroc_by_fov']['inside']:.3f} | "
                     f"{train_min:.1f} | {PAPER_IDRID.get(name, '')} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    (out / "table1.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
