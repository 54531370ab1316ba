"""Choosing the evaluation on validation normals with synthetic lesions; the proxy set itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wdmt import api
from wdmt.rundir import RunDir


def test_proxy_set_pairs_clean_and_lesioned_copies_with_exact_masks(tiny_run):
    from wdmt.preprocess import PreprocessConfig
    from wdmt.proxy import proxy_set

    idx, _ = RunDir(tiny_run).dataset()
    normals = idx.split("train")[:2]
    ps = proxy_set(normals, PreprocessConfig(size=96, tiles=3), variants=2, seed=1)
    assert len(ps.normal) == 2 and len(ps.lesioned) == 4 and ps.pairs == [0, 0, 1, 1]
    for lesioned, i in zip(ps.lesioned, ps.pairs, strict=True):
        clean = ps.normal[i].prepared
        p = lesioned.prepared
        assert p.lesion.any() and not (p.lesion & ~p.fov).any()  # lesions lie in the eye
        changed = p.image != clean.image
        assert changed[p.lesion].mean() > 0.5  # the masked pixels were painted ...
        # ... and little else (at 96 px a microaneurysm can be sub-pixel: painted faintly, below the mask's 0.5)
        assert (changed & ~ndilate(p.lesion, 3)).sum() <= 0.05 * changed.sum()
    again = proxy_set(normals, PreprocessConfig(size=96, tiles=3), variants=2, seed=1)
    assert all(np.array_equal(a.prepared.image, b.prepared.image) for a, b in zip(ps.items, again.items, strict=True))


    def square(rgb, fov, rng):  # another lesion set: a benchmark's harder proxy
        out, mask = rgb.copy(), np.zeros(fov.shape, bool)
        mask[40:50, 40:50] = True
        out[mask] = 0
        return out, mask & fov

    other = proxy_set(normals, PreprocessConfig(size=96, tiles=3), variants=1, seed=1, paint=square)
    assert all(p.prepared.lesion.sum() == 100 for p in other.lesioned)


def ndilate(mask, n):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=n)


def test_tune_chooses_by_the_proxy_set_and_test_reports_both_pixel_protocols(tiny_run, tmp_path):
    from wdmt.tune import tune_run

    t = tune_run(tiny_run, variants=2)
    rows = t["candidates"]["pixel"]
    assert {r["tiling"] for r in rows} == {"grid", "overlap", "whole"} and len(rows) == 12
    best = max(rows, key=lambda r: (r["ap"], r["auroc"]))
    assert (t["eval"]["tiling"], t["eval"]["smooth_sigma"]) == (best["tiling"], best["smooth_sigma"])
    assert t["eval"]["fov"] == "inside" and "Dice" in t["thresholds"]["rule"]
    assert json.loads((tiny_run / "tuning.json").read_text()) == t
    r = api.test(tiny_run, protocol="proxy", out=tmp_path / "tuned", progress=False, n_boot=10, pictures=0)
    assert r["eval"] == t["eval"] and r["pixel"]["threshold"] == t["thresholds"]["pixel_threshold"]
    assert r["pixel"]["protocol"] == "proxy"
    assert r["pixel"]["proxy_protocol"]["threshold_rule"] == t["thresholds"]["rule"]
    # the honest headline counts FOV pixels only; the paper's all-pixel numbers stand beside it
    assert r["pixel"]["n_pixels"] < r["pixel_all_pixels"]["n_pixels"] == 4 * 96 * 96
    assert r["pixel_auroc_by_fov"]["inside"] == pytest.approx(r["pixel"]["auroc"])
    rows = api.predict(tiny_run, [RunDir(tiny_run).dataset()[0].split("test")[0].image], tmp_path / "p", tuned=True,
                       progress=False)
    assert rows[0]["threshold"] == t["thresholds"]["image_threshold"] and "Dice" in rows[0]["threshold_rule"]


def test_a_dataset_without_validation_images_still_gets_thresholds(tmp_path):
    """A folder dataset with 5 or fewer normals has no validation split: predict used to fail with a TypeError."""
    from wdmt.config import resolve_config
    from wdmt.synth import generate

    data = generate(tmp_path / "d", normal=4, abnormal=1, size=96, seed=2, progress=False)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="no validation images"):
        api.train(data, resolve_config("tiny", model="ae"), run, progress=False)
    cal = json.loads((run / "calibration.json").read_text())[0]
    assert cal["pixel_threshold"] is not None and "training-normal" in cal["rule"]
    rows = api.predict(run, [sorted((data / "abnormal").glob("*.jpg"))[0]], tmp_path / "p", progress=False)
    assert rows[0]["decision"] in ("normal", "abnormal") and "training-normal" in rows[0]["threshold_rule"]


def test_tuned_export_runs_the_whole_picture_in_onnx_like_torch(tiny_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from dataclasses import replace

    from wdmt.deploy import OnnxDetector
    from wdmt.export import export_onnx
    from wdmt.io import read_image
    from wdmt.scoring import image_score
    from wdmt.tune import tune_run

    t = tune_run(tiny_run, variants=1)
    t["eval"] = {**t["eval"], "tiling": "whole"}  # exercise the one-pass graph whatever the proxy chose
    RunDir(tiny_run).write_json("tuning.json", t)
    r = export_onnx(tiny_run, tmp_path / "m.onnx", tuned=True)
    assert r["metadata"]["tile_size"] == 96 and r["metadata"]["thresholds"]["rule"] == t["thresholds"]["rule"]
    assert r["max_abs_diff"] is not None and r["max_abs_diff"] <= 1e-4
    det = OnnxDetector.load(tmp_path / "m.onnx")
    img = RunDir(tiny_run).dataset()[0].split("test")[0].image
    onnx_map, prep = det.anomaly_map(read_image(img))
    torch_rows = api.predict(tiny_run, [img], tmp_path / "t", progress=False, tuned=True)
    assert image_score(onnx_map, prep.fov, replace(det.eval)) == pytest.approx(torch_rows[0]["score"], abs=1e-4)


def test_the_annotated_proxy_outlines_haemorrhages_and_leaves_the_picture_and_other_kinds_alone():
    """The annotated proxy (wdmt fuse --proxy annotated, proxy_beyond.py's second design) paints exactly what the
    painter paints; only the haemorrhage label grows, into a region that holds the painted one, stays inside the FOV
    and joins close blots."""
    from wdmt.proxy import drawn_region, paint_annotated, paint_kinds, paint_lesions

    fov = np.ones((64, 64), bool)
    fov[:, 60:] = False
    blots = np.zeros_like(fov)
    blots[20:24, 20:24] = blots[20:24, 30:34] = True  # two blots 6 px apart
    blots[40:44, 56:60] = True  # one at the FOV's edge
    region = drawn_region(blots, fov, grow=2.0, join=4.0)
    assert (region >= blots).all() and not (region & ~fov).any()
    assert region[22, 25:30].all()  # the gap between the two blots is inside the outline
    assert not region[5, 5] and not region[22, 45]

    size = 192
    yy, xx = np.mgrid[:size, :size]
    fov = (yy - 96) ** 2 + (xx - 96) ** 2 < 88**2
    rng = np.random.default_rng(0)
    rgb = np.where(fov[..., None], (rng.random((size, size, 3)) * 30 + [150, 70, 30]), 0).astype(np.uint8)
    grew = 0
    for seed in range(6):
        painted, masks = paint_kinds(rgb, fov, np.random.default_rng(seed))
        out, label = paint_annotated(rgb, fov, np.random.default_rng(seed))
        assert np.array_equal(out, painted)
        assert np.array_equal(paint_lesions(rgb, fov, np.random.default_rng(seed))[0], out)
        exact = np.zeros_like(fov)
        for m in masks.values():
            exact |= m
        assert (label >= exact).all() and not (label & ~fov).any()
        he = masks.get("HE", np.zeros_like(fov))
        widest = drawn_region(he, fov, 6.0 * size / 768, 8.0 * size / 768)  # the largest outline the draw allows
        assert np.array_equal(label & ~widest, exact & ~widest)  # elsewhere the painter's exact masks
        grew += int(("HE" in masks) and label.sum() > exact.sum())
        assert "HE" in masks or np.array_equal(label, exact)
    assert grew > 0
