"""The speed scripts under benchmarks/ keep running as wdmt changes (their figures are not asserted: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_dataset

ROOT = Path(__file__).resolve().parents[1]


def _names(script: str, *names: str) -> tuple:
    """Names from a measurement script, loaded by its path (scripts are no package; nothing edits sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(getattr(module, n) for n in names)


@pytest.mark.slow
def test_throughput_quick_prints_every_figure():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--json"],
                       capture_output=True, text=True, timeout=600, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["matmul_gflops"] > 0
    for preset in ("paper", "cpu"):
        assert {"ours_img_s", "reference_img_s", "ratio", "gflops"} <= set(res["train"][preset])
    assert res["infer"]["paper_images_s"] > 0 and res["infer"]["cpu_images_s"] > 0
    assert res["hog"]["cold_s"] > res["hog"]["cached_s"] >= 0
    assert res["metrics_16m_s"] > 0


@pytest.mark.slow
def test_train_profile_accounts_for_the_whole_step():
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_profile.py"), "--preset", "cpu", "--steps", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for side in ("ours", "reference"):
        b = res[side]
        parts = sum(v for k, v in b.items() if k not in ("total", "conv_gflops", "step_gflops"))
        assert abs(parts - b["total"]) < 1e-6 * max(1.0, b["total"])
        assert 0 < b["convolution"] < b["total"]  # the convolutions are found and are not the whole step
    assert res["step_gflop"] > 0 and res["ratio"] > 0


def test_map_artifacts_sees_seams_and_rims():
    from types import SimpleNamespace

    import numpy as np

    from wdmt.config import EvalConfig
    from wdmt.measure.maps import artifact_ratios

    size = 96
    yy, xx = np.mgrid[0:size, 0:size]
    fov = (yy - 47.5) ** 2 + (xx - 47.5) ** 2 < 46**2
    flat = np.full((size, size), 0.1, np.float32)
    seams = flat.copy()
    seams[31:33, :] = seams[:, 31:33] = seams[63:65, :] = seams[:, 63:65] = 0.5
    rim = np.where(fov & ~(((yy - 47.5) ** 2 + (xx - 47.5) ** 2) < 44**2), 0.5, 0.1).astype(np.float32)

    def result(m):
        return SimpleNamespace(map=lambda ev: m * fov, item=SimpleNamespace(prepared=SimpleNamespace(fov=fov)))

    ev = EvalConfig(fov="inside")
    clean = artifact_ratios([result(flat)], ev)
    assert clean["seam_ratio"] == pytest.approx(1.0) and clean["rim_ratio"] == pytest.approx(1.0)
    assert artifact_ratios([result(seams)], ev)["seam_ratio"] > 2
    assert artifact_ratios([result(rim)], ev)["rim_ratio"] > 2


@pytest.mark.slow
def test_maps_report_covers_every_protocol(tiny_run, tmp_path):
    out = tmp_path / "maps.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "maps_report.py"), "--run", str(tiny_run), "--save",
                    str(out)], capture_output=True, text=True, timeout=600, check=True)
    r = json.loads(out.read_text())
    assert list(r["rows"]) == ["paper protocol", "strict protocol", "FOV only, grid", "FOV only, whole picture",
                               "tuned, proxy thresholds", "tuned, strict thresholds"]
    assert r["rows"]["FOV only, grid"]["all_pixels_auroc"] == pytest.approx(r["rows"]["paper protocol"]["pixel_auroc"])
    assert {x["setting"].split(",")[0] for x in r["artifacts"]["rows"]} >= {"grid", "overlap", "whole"}
    assert r["agreement"]["summary"]["of"] == 12 and r["tuning"]["eval"]["fov"] == "inside"


def test_lesion_kinds_counts_each_bright_pixel_once():
    import numpy as np

    LESIONS, top_shares = _names("benchmarks/lesion_kinds.py", "LESIONS", "top_shares")

    size = 100
    yy, xx = np.mgrid[0:size, 0:size]
    fov = (yy - 49.5) ** 2 + (xx - 49.5) ** 2 < 48**2
    km = {k: np.zeros((size, size), bool) for k in (*LESIONS, "OD")}
    km["EX"][40:50, 40:50] = True  # 100 px, the map's brightest
    km["OD"][45:55, 45:55] = True  # overlaps EX: those pixels count as EX
    amap = np.where(km["EX"], 2.0, 0.0) + np.where(km["OD"], 1.0, 0.0) + 1e-6 * yy
    shares = top_shares(amap, fov, km)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["EX"] > 0.9 and shares["HE"] == 0 and shares["rim"] == 0


def test_mask_contrast_counts_mask_pixels_that_look_healthy():
    import numpy as np

    kind_contrast, local_contrast, shares = _names("studies/2026-12-oracle-bound/mask_contrast.py",
                                                 "kind_contrast", "local_contrast", "shares")

    size = 200
    yy, xx = np.mgrid[0:size, 0:size]
    fov = (yy - 99.5) ** 2 + (xx - 99.5) ** 2 < 95**2
    green = 120 + np.random.default_rng(0).normal(0, 2, (size, size))
    blot = (yy - 100) ** 2 + (xx - 100) ** 2 < 8**2
    green[blot] -= 40  # a dark blot, 8 px radius
    loose = (yy - 100) ** 2 + (xx - 100) ** 2 < 16**2  # drawn loosely: 3/4 of it is healthy retina
    km = {k: np.zeros((size, size), bool) for k in ("MA", "HE", "EX", "SE", "OD")}
    contrast = local_contrast(green, 81)
    aurocs = []
    for mask, like_healthy in ((blot, (0, 0.05)), (loose, (0.3, 0.8))):
        km["HE"] = mask
        kinds, healthy = kind_contrast(contrast, km, fov)
        r = shares(kinds["HE"], -healthy)  # red: darker is toward the lesion
        assert like_healthy[0] <= r["share_like_healthy"] <= like_healthy[1]
        aurocs.append(r["auroc_vs_healthy"])
    assert aurocs[0] > 0.99 and 0.5 < aurocs[1] < 0.8  # the loose mask caps what the blot's own contrast can rank


def test_lesion_kinds_vessel_mask_follows_dark_lines_not_blobs():
    import numpy as np

    vessel_mask, = _names("benchmarks/lesion_kinds.py", "vessel_mask")

    size = 256
    yy, xx = np.mgrid[0:size, 0:size]
    fov = (yy - 127.5) ** 2 + (xx - 127.5) ** 2 < 120**2
    rgb = np.full((size, size, 3), 150, np.uint8)
    line = np.abs(yy - 0.5 * xx - 60) < 1.5  # a thin dark ridge, a vessel
    blob = (yy - 170) ** 2 + (xx - 80) ** 2 < 20**2  # a wide dark blot, not a vessel
    rgb[line | blob, 1] = 60
    ves = vessel_mask(rgb, fov, share=0.05)
    assert ves.sum() == pytest.approx(0.05 * fov.sum(), rel=0.1) and not (ves & ~fov).any()
    assert (ves & line & fov).sum() > 0.8 * (line & fov).sum()
    inner = (yy - 170) ** 2 + (xx - 80) ** 2 < 12**2
    assert (ves & inner).sum() < 0.05 * inner.sum()



def test_run_speed_times_a_run_as_it_evaluates_itself(tiny_run):
    measure, = _names("benchmarks/run_speed.py", "measure")

    r = measure(tiny_run, 1)
    assert r["model"] == "wdmt" and r["photographs_s"] > 0 and r["weights_mb"] > 0


def test_contrast_candidates_are_scored_on_the_proxy_set_with_their_own_or_the_runs_options(tiny_synth, tmp_path):
    from wdmt import api
    from wdmt.config import resolve_config

    api.train(tiny_synth, resolve_config("tiny", model="contrast", model_options={"background_sigma": 6.0}),
              tmp_path / "con", progress=False)
    score, = _names("studies/2026-11-red-lesions/contrast_line.py", "score")

    own, = score(tmp_path / "con", None)  # contrast_background.py: the run as fitted
    assert (own["background_sigma"], own["polarity"], own["vessel_line"]) == (6.0, "both", 31)
    dark, = score(tmp_path / "con", [{"polarity": "dark", "vessel_line": 0, "blob_width": 0}])
    assert (dark["background_sigma"], dark["polarity"], dark["vessel_line"], dark["blob_width"]) == (6.0, "dark", 0, 0)
    assert 0 <= dark["proxy_auroc"] <= 1 and 0 <= own["proxy_ap"] <= 1 and own["proxy_auroc"] != dark["proxy_auroc"]


def test_cv_image_compares_only_scores_of_one_run_and_refuses_overlapping_folds():
    import numpy as np

    check_folds, cv_rows, pair_auroc = _names("benchmarks/cv_image.py", "check_folds", "cv_rows", "pair_auroc")

    from wdmt import WdmtError

    def fold(normals, n_scores, a_scores):
        ids = [*normals, "a1", "a2"]
        return {"model": "m", "seed": 0, "ids": ids, "labels": np.array([0] * len(normals) + [1, 1]),
                "scores": {"score": np.array([*n_scores, *a_scores]), "model": np.array([*n_scores, *a_scores])}}

    # run 2 scores on a scale ten times run 1's: pooled across runs its normals would beat run 1's abnormal ones
    folds = [fold(["n1", "n2"], [1.0, 2.0], [3.0, 1.5]), fold(["n3", "n4"], [10.0, 20.0], [30.0, 15.0])]
    normals, abnormals = check_folds(folds)
    assert abnormals == ["a1", "a2"] and len(normals) == 4
    assert pair_auroc(folds, "score", normals, abnormals) == pytest.approx(6 / 8)  # within each run: 3 of 4 pairs
    row = cv_rows(folds)[0]
    assert row["image_auroc_cv"] == 0.75 and row["ci_low"] <= 0.75 <= row["ci_high"] and row["normals"] == 4
    with pytest.raises(WdmtError, match="two runs"):
        check_folds([folds[0], fold(["n1", "n5"], [1.0, 2.0], [3.0, 1.5])])


def test_oracle_bound_finds_the_weights_that_join_two_half_detectors():
    """Two members that each see one of two lesions: alone each ranks half the lesion pixels at chance, their sum
    finds both, and the search must get there from the first member alone."""
    import numpy as np

    Search, = _names("studies/2026-12-oracle-bound/oracle_bound.py", "Search")

    rng = np.random.default_rng(0)
    fov = np.ones((40, 40), bool)
    lesion = np.zeros((40, 40), bool)
    lesion[4:12, 4:12] = lesion[24:32, 24:32] = True
    a, b = rng.random((40, 40)), rng.random((40, 40))
    a[4:12, 4:12] += 5
    b[24:32, 24:32] += 5
    s = Search([{"a": a, "b": b}], [fov], [lesion])
    alone = s.score({"a": 1.0, "b": 0.0}, 0.0)[0]
    auroc, ap, w, sigma = s.ascend({"a": 1.0, "b": 0.0}, 0.0)
    assert alone < 0.8 and auroc > 0.99 and ap > 0.95 and w["b"] > 0 and sigma in (0.0, 2.0, 4.0, 8.0, 16.0)


def test_the_harder_proxy_keeps_the_painters_lesions_and_adds_faint_wide_ones_inside_the_eye():
    """proxy_beyond.py's lesions lie inside the FOV, are seeded, change the pixels they label, and come on top of
    the painter's (their mask holds the painter's)."""
    import numpy as np

    beyond_training, painter_and_beyond = _names("studies/2026-12-oracle-bound/proxy_beyond.py",
                                                     "beyond_training", "painter_and_beyond")

    from wdmt.proxy import paint_lesions

    size = 192
    yy, xx = np.mgrid[:size, :size]
    fov = (yy - 96) ** 2 + (xx - 96) ** 2 < 88**2
    rng = np.random.default_rng(0)
    rgb = np.where(fov[..., None], (rng.random((size, size, 3)) * 30 + [150, 70, 30]), 0).astype(np.uint8)
    out, mask = beyond_training(rgb, fov, np.random.default_rng(1))
    again, _ = beyond_training(rgb, fov, np.random.default_rng(1))
    assert np.array_equal(out, again)
    assert mask.any() and not (mask & ~fov).any() and not (out[~fov] != rgb[~fov]).any()
    assert 0.004 < mask.sum() / fov.sum() < 0.08  # 0.5-4 % of the FOV, widened by the feathering
    assert (np.abs(out.astype(int) - rgb).max(axis=2) > 0)[mask].mean() > 0.9
    _, painted_mask = paint_lesions(rgb, fov, np.random.default_rng(2))
    _, both = painter_and_beyond(rgb, fov, np.random.default_rng(2))
    assert (both >= painted_mask).all() and both.sum() > painted_mask.sum()


def test_predict_speed_measures_every_figure_it_promises(tiny_run, tmp_path):
    """A smoke run of benchmarks/predict_speed.py on the tiny run: every figure is there and sane."""
    shared_dataset("idrid")
    out = tmp_path / "speed.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "predict_speed.py"), "--run", str(tiny_run), "--n", "2",
                    "--memory", "2", "3", "--size", "400", "300", "--work", str(tmp_path / "w"), "--save", str(out)],
                   check=True, capture_output=True, text=True)
    r = json.loads(out.read_text())
    assert r["cpu"] and r["model_only"]["photos_per_s"] > 0 and r["serial_score_max_diff"] == 0.0
    for k in ("streaming", "streaming_draft", "serial"):
        assert r[k]["n"] == 2 and r[k]["failed"] == 0 and set(r[k]["stage_seconds_per_photo"]) == {
            "decode", "prepare", "overlay_base", "model", "write"}
    assert [m["n"] for m in r["memory"]] == [2, 3] and all(m["scored"] == m["n"] for m in r["memory"])
    assert r["ratios"]["peak_memory_largest_over_smallest"] > 0
