"""``wdmt demo``: the whole job in one command on synthetic photographs, in a few minutes on a laptop CPU.

Synthesises 30 normal and 10 abnormal 768 px fundus photographs, trains WDMT-Net with the ``cpu`` preset for a
shortened schedule (10 epochs, skips muted by epoch 5), evaluates with both protocols and writes the pictures.
"""

from __future__ import annotations

import time
from pathlib import Path

from wdmt import api
from wdmt.config import resolve_config
from wdmt.synth import generate, montage

DEMO_EPOCHS = 10
DEMO_DELTA = 0.2  # alpha falls 0.2 per epoch: the skips are muted halfway through the 10 epochs


def demo(out: str | Path = "wdmt-demo", epochs: int | None = None, progress: bool = True) -> dict:
    out = Path(out)
    t0 = time.perf_counter()
    data = out / "data"
    if not (data / "manifest.csv").exists():
        generate(data, normal=30, abnormal=10, size=768, seed=0, progress=progress)
        montage(out / "synthetic-montage.png", n=8, size=256, seed=0)
    cfg = resolve_config("cpu", model="wdmt", epochs=epochs or DEMO_EPOCHS, model_options={"delta": DEMO_DELTA})
    run = out / "run"
    api.train(data, cfg, run, overwrite=True, progress=progress)
    paper = api.test(run, protocol="paper", pictures=4, progress=progress, n_boot=200)
    strict = api.test(run, protocol="strict", out=run / "eval-test-strict", pictures=0, progress=False, n_boot=200)
    minutes = (time.perf_counter() - t0) / 60
    p, s, i = paper["pixel"], strict["pixel"], strict["image"]
    lines = [
        f"wdmt demo finished in {minutes:.1f} min",
        f"  pixel AUROC inside the field of view {p['auroc']:.3f} (95% CI {p['auroc_ci95'][0]:.3f}-"
        f"{p['auroc_ci95'][1]:.3f}), AP {p['ap']:.3f}, AUPRO {p['aupro']:.3f}; over all pixels as the paper counts "
        f"them: {(paper.get('pixel_all_pixels') or p)['auroc']:.3f}",
        f"  the paper's threshold (Youden's J on test pixels): balanced acc {p['balanced_accuracy']:.3f}, Dice "
        f"{p['f1']:.3f}",
        f"  strict protocol (threshold from validation normals): balanced acc {s['balanced_accuracy']:.3f}, Dice "
        f"{s['f1']:.3f}",
    ]
    if "auroc" in i:
        lines.append(f"  image AUROC {i['auroc']:.3f}, strict decisions: balanced acc {i['balanced_accuracy']:.3f}")
    lines += [
        f"  heat maps:  {Path(paper['out']) / 'pictures'}",
        f"  ROC curve:  {Path(paper['out']) / 'roc.png'}",
        f"  metrics:    {Path(paper['out']) / 'metrics.json'}",
        f"  data:       {data} (montage: {out / 'synthetic-montage.png'})",
        f"  score your own photos: wdmt predict --run {run} PHOTO.jpg --out {out / 'predictions'}",
    ]
    print("\n".join(lines))
    return {"paper": paper, "strict": strict, "minutes": minutes}
