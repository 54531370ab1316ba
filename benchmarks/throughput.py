"""Speed of wdmt on this machine, measured side by side in one process.

    python benchmarks/throughput.py [--json] [--quick] [--save FILE]

Prints: the dense float32 matmul ceiling; training throughput of WDMT-Net at the ``paper`` and ``cpu`` preset
geometries against the plainly written official network (``wdmt.measure.reference_unet``: NCHW, eager), same batch
and input, with achieved FLOP/s (counted by torch's FlopCounterMode); full 768 x 768 images per second through tiling
and stitching; HOG targets for 45 images cold and cached; pooled pixel AUROC + AUPRO over 16 M pixels. Medians.
The training batch is smaller than the presets' (stated in the output) so that one step fits a few seconds on 2 cores;
throughput per image is what is compared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from wdmt.measure.timing import (
    bf16_is_native,
    flops,
    matmul_gflops,
    median_time,
    train_step_ours,
    train_step_reference,
)
from wdmt.models import create_model
from wdmt.runtime import cpu_name


def _gf(v: float | None, spec: str = ".1f") -> str:
    """A figure, or "-" where it was not measured; a suffix after the format spec is kept (".2f x": "1.32x")."""
    fmt, _, suffix = spec.partition(" ")
    return "-" if v is None else format(v, fmt) + suffix


def _share(gflops: float | None, ceiling: float | None) -> str:
    return "-" if gflops is None or not ceiling else f"{100 * gflops / ceiling:.0f} %"


def train_throughput(width: int, batch: int, tile: int, repeats: int, bf16: bool = True) -> dict:
    """fp32 (the presets' arithmetic) against the reference; bf16 autocast (``cpu_bf16``, opt-in) reported beside
    where the CPU has it (``bf16``)."""
    ours, ref = train_step_ours(width, batch, tile), train_step_reference(width, batch, tile)
    t_ours = median_time(ours, repeats)
    t_ref = median_time(ref, repeats)

    def ours_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours()
    t_bf16 = median_time(ours_bf16, repeats) if bf16 else None
    fl = flops(ours)
    return {
        "width": width,
        "batch": batch,
        "tile": tile,
        "ours_img_s": batch / t_ours,
        "reference_img_s": batch / t_ref,
        "ratio": t_ref / t_ours,
        "gflops": fl / t_ours / 1e9,
        "ours_bf16_img_s": batch / t_bf16 if t_bf16 else None,
        "bf16_ratio": t_ref / t_bf16 if t_bf16 else None,
        "bf16_gflops": fl / t_bf16 / 1e9 if t_bf16 else None,
    }


def inference_images_s(width: int, repeats: int, fold: bool = True, precision: str = "fp32",
                       tiling: str = "grid") -> float:
    """Full 768 x 768 images/s through wdmt's own inference path: tiling, forward, |x - x_hat|, stitching. ``fold``
    and ``precision`` are the steps measured one by one (``RunDir.load_model`` folds; fp32 is the default).
    ``tiling``: the paper's 3 x 3 grid, whose figures docs/performance.md quotes, unless asked."""
    from dataclasses import replace

    from wdmt.config import TrainConfig
    from wdmt.datasets import Sample
    from wdmt.evaluate import infer
    from wdmt.pipeline import PreparedSample
    from wdmt.preprocess import PreprocessConfig, prepare
    from wdmt.synth import render

    torch.manual_seed(0)
    m = create_model("wdmt", width=width).eval()
    m.alpha.fill_(0.0)  # as after training
    if fold:
        m.fold_for_inference()
    m = m.to(memory_format=torch.channels_last)
    f = render(768, np.random.default_rng(0), abnormal=True)
    item = PreparedSample(Sample("x", Path("x.jpg"), 1), prepare(f.image, PreprocessConfig()))
    with torch.inference_mode():
        cfg = TrainConfig()  # 768 px, 3 x 3 tiles, channels_last, as the presets
        ev = replace(cfg.eval, precision=precision, tiling=tiling)
        t = median_time(lambda: infer(m, [item, item], cfg, ev), repeats)
    return 2 / t


def inference_gflop_per_image(width: int) -> float:
    """FLOPs of the forward passes for one 768 x 768 image (9 tiles) in the inference form: what 10 images/s costs."""
    torch.manual_seed(0)
    m = create_model("wdmt", width=width).eval()
    m.alpha.fill_(0.0)
    m.fold_for_inference()
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        m.predict(torch.rand(9, 1, 256, 256))
    return fc.get_total_flops() / 1e9


def backend_images_s(width: int, repeats: int, bf16: bool = True) -> dict:
    """Full 768 x 768 photographs/s of the same trained-shape WDMT-Net (skips closed, batch norm folded) through each
    runtime, side by side: torch (``wdmt.evaluate.infer``), and the exported ONNX graph under onnxruntime and
    OpenVINO (``wdmt.deploy``: same preprocessing, tiling and stitching), float32 and bfloat16 where the runtime
    offers it. Backends that are not installed are reported as None."""
    from dataclasses import asdict, replace

    from wdmt.config import TrainConfig
    from wdmt.deploy import OnnxDetector
    from wdmt.export import write_onnx
    from wdmt.synth import render

    torch.manual_seed(0)
    m = create_model("wdmt", width=width).eval()
    m.alpha.fill_(0.0)
    m.fold_for_inference()
    rgb = render(768, np.random.default_rng(0), abnormal=True).image
    out = {"torch": inference_images_s(width, repeats),
           "torch_bf16": inference_images_s(width, repeats, precision="bf16") if bf16 else None}
    cfg = TrainConfig()  # 768 px, 3 x 3 tiles; thresholds do not matter for speed
    meta = {"preprocess": asdict(cfg.preprocess), "eval": asdict(replace(cfg.eval, tiling="grid")),  # as torch's
            "thresholds": {"pixel_threshold": 1.0, "image_threshold": 1.0}}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        write_onnx(m, torch.rand(1, 1, 256, 256), path, meta)
        for name, backend, precision in (("onnxruntime", "onnxruntime", "f32"), ("openvino", "openvino", "f32"),
                                         ("openvino_bf16", "openvino", "bf16")):
            try:
                det = OnnxDetector.load(path, backend, openvino_precision=precision)
            except Exception:  # noqa: BLE001 - not installed here
                out[name] = None
                continue
            out[name] = 2 / median_time(lambda det=det: [det.anomaly_map(rgb) for _ in range(2)], repeats)
    return out


def print_backends(res: dict) -> None:
    gflop = res["cpu_gflop_per_image"]
    print(f"{res['cpu']}, {res['threads']} threads: matmul ceiling {res['matmul_gflops']:.0f} GFLOP/s fp32, "
          f"{_gf(res['matmul_bf16_gflops'], '.0f')} bf16; cpu preset, {gflop:.1f} GFLOP per 768 px photograph")
    print("| backend | photographs/s | share of the fp32 matmul ceiling | bf16 photographs/s | "
          "share of the bf16 ceiling |")
    print("|---|---|---|---|---|")
    b = res["backends"]
    for name, bf in (("torch", "torch_bf16"), ("onnxruntime", None), ("openvino", "openvino_bf16")):
        v, w = b.get(name), b.get(bf) if bf else None
        cells = [_gf(v, ".2f"), _share(v and v * gflop, res["matmul_gflops"]),
                 _gf(w, ".2f"), _share(w and w * gflop, res["matmul_bf16_gflops"])]
        print(f"| {name} | " + " | ".join(cells) + " |")


def hog_times(n: int = 45) -> dict:
    from PIL import Image

    from wdmt.hog import HogCache
    from wdmt.synth import render

    grays = [
        np.asarray(
            Image.fromarray(render(768, np.random.default_rng([9, i]), False).image).convert("L").resize((768, 768))
        )
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as d:
        c = HogCache(Path(d))
        t = time.perf_counter()
        c.get_many(grays, progress=False)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        c.get_many(grays, progress=False)
        cached = time.perf_counter() - t
    return {"images": n, "cold_s": cold, "cached_s": cached}


def metrics_16m() -> float:
    from wdmt import metrics as M

    rng = np.random.default_rng(0)
    maps, masks = [], []
    for _ in range(27):
        m = np.zeros((768, 768), bool)
        for _ in range(20):
            y, x = rng.integers(0, 740, 2)
            m[y : y + rng.integers(2, 25), x : x + rng.integers(2, 25)] = True
        maps.append((rng.random((768, 768)) + 0.3 * m).astype(np.float32))
        masks.append(m)
    t = time.perf_counter()
    c = M.curve(np.concatenate([a.ravel() for a in maps]), np.concatenate([b.ravel() for b in masks]))
    M.auroc(c)
    M.aupro(maps, masks)
    return time.perf_counter() - t


def _tilings(rep: int) -> dict:
    res = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "images_s": {t: inference_images_s(16, rep, tiling=t) for t in ("grid", "overlap", "whole")}}
    res["overlap_cost_x_grid"] = res["images_s"]["grid"] / res["images_s"]["overlap"]
    return res


def _backends(rep: int, bf16: bool) -> dict:
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "bf16_native": bf16, "matmul_gflops": matmul_gflops(),
            "matmul_bf16_gflops": matmul_gflops(dtype=torch.bfloat16) if bf16 else None,
            "cpu_gflop_per_image": inference_gflop_per_image(16), "backends": backend_images_s(16, rep, bf16)}


def _everything(rep: int, bf16: bool, quick: bool) -> dict:
    res: dict = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bf16_native": bf16,
        "matmul_gflops": matmul_gflops(),
        "matmul_bf16_gflops": matmul_gflops(dtype=torch.bfloat16) if bf16 else None,
    }
    res["train"] = {
        "paper": train_throughput(64, 2 if quick else 4, 256, rep, bf16),
        "cpu": train_throughput(16, 8, 256, rep, bf16),
    }
    res["infer"] = {
        "paper_images_s": inference_images_s(64, rep),
        "cpu_images_s": inference_images_s(16, rep),
        "paper_bf16_images_s": inference_images_s(64, rep, precision="bf16") if bf16 else None,
        "cpu_bf16_images_s": inference_images_s(16, rep, precision="bf16") if bf16 else None,
        "cpu_unfolded_images_s": inference_images_s(16, rep, fold=False),
        "paper_gflop_per_image": inference_gflop_per_image(64),
        "cpu_gflop_per_image": inference_gflop_per_image(16),
    }
    res["hog"] = hog_times(4 if quick else 45)
    res["metrics_16m_s"] = metrics_16m()
    return res


def _print_everything(res: dict) -> None:
    print(
        f"torch {res['torch']}, {res['threads']} threads; matmul ceiling {res['matmul_gflops']:.1f} GFLOP/s float32, "
        f"{_gf(res['matmul_bf16_gflops'])} GFLOP/s bfloat16 (2048^3)"
    )
    print(
        "| preset | width | batch | ours img/s | reference img/s | ratio | ours GFLOP/s | share of fp32 matmul "
        "| ours bf16 img/s | bf16 ratio | bf16 share of bf16 matmul |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, t in res["train"].items():
        print(
            f"| {k} | {t['width']} | {t['batch']} | {t['ours_img_s']:.2f} | {t['reference_img_s']:.2f} | "
            f"{t['ratio']:.2f}x | "
            f"{t['gflops']:.1f} | {_share(t['gflops'], res['matmul_gflops'])} | {_gf(t['ours_bf16_img_s'], '.2f')} | "
            f"{_gf(t['bf16_ratio'], '.2f x')} | {_share(t['bf16_gflops'], res['matmul_bf16_gflops'])} |"
        )
    i = res["infer"]
    print(
        f"inference, full 768 x 768 images/s (fp32, batch norm folded): paper {i['paper_images_s']:.2f}, "
        f"cpu {i['cpu_images_s']:.2f}; bf16: paper {_gf(i['paper_bf16_images_s'], '.2f')}, "
        f"cpu {_gf(i['cpu_bf16_images_s'], '.2f')}; "
        f"cpu without folding {i['cpu_unfolded_images_s']:.2f}"
    )
    print(
        f"inference FLOPs per image: paper {i['paper_gflop_per_image']:.0f} GFLOP, cpu {i['cpu_gflop_per_image']:.1f} "
        "GFLOP; "
        f"10 cpu images/s need {10 * i['cpu_gflop_per_image']:.0f} GFLOP/s"
    )
    h = res["hog"]
    print(f"HOG targets for {h['images']} images at 768: cold {h['cold_s']:.1f} s, cached {h['cached_s']:.2f} s")
    print(f"pixel AUROC + AUPRO over 27 x 768 x 768 = 15.9 M pixels: {res['metrics_16m_s']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, HOG on 4 images (for a smoke test)")
    ap.add_argument("--save", help="also write the JSON object to this file")
    ap.add_argument("--backends-only", action="store_true",
                    help="only the inference backends side by side (torch, onnxruntime, OpenVINO)")
    ap.add_argument("--tilings-only", action="store_true",
                    help="only the cpu preset's inference under each tiling (grid, overlap, whole) side by side")
    a = ap.parse_args()
    rep = 2 if a.quick else 3
    bf16 = None if a.tilings_only else bf16_is_native()
    if a.tilings_only:
        res = _tilings(rep)
    elif a.backends_only:
        res = _backends(rep, bf16)
    else:
        res = _everything(rep, bf16, a.quick)
    if a.save:
        Path(a.save).write_text(json.dumps(res, indent=1) + "\n")
    if a.tilings_only:
        print(json.dumps(res, indent=None if a.json else 1))
    elif a.json:
        print(json.dumps(res))
    elif a.backends_only:
        print_backends(res)
    else:
        _print_everything(res)


if __name__ == "__main__":
    main()
