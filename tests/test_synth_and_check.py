from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_dataset
from wdmt.check import check_dataset
from wdmt.cli import main
from wdmt.datasets import open_dataset
from wdmt.synth import render


def test_render_is_deterministic_and_masks_exact():
    a = render(128, np.random.default_rng([5, 1, 0]), abnormal=True)
    b = render(128, np.random.default_rng([5, 1, 0]), abnormal=True)
    assert np.array_equal(a.image, b.image) and a.lesions.keys() == b.lesions.keys()
    assert a.lesion_union.any() and not (a.lesion_union & ~a.fov).any()
    n = render(128, np.random.default_rng([5, 0, 0]), abnormal=False)
    assert not n.lesions


def test_lesions_change_the_picture_where_the_mask_is():
    """The mask is exact: lesion pixels differ from the lesion-free rendering, distant pixels do not."""
    rng_seed = [9, 1, 2]
    abn = render(128, np.random.default_rng(rng_seed), abnormal=True)
    m = abn.lesion_union
    assert m.sum() > 5
    # lesion pixels have a colour unlike the local retina: far from the median of FOV pixels
    fov_pixels = abn.image[abn.fov & ~m].astype(float)
    med = np.median(fov_pixels, axis=0)
    assert np.abs(abn.image[m].astype(float) - med).sum(axis=1).mean() > np.abs(fov_pixels - med).sum(axis=1).mean()


def test_fundus_like_statistics():
    f = render(256, np.random.default_rng(0), abnormal=False)
    inside = f.image[f.fov].astype(float)
    outside = f.image[~f.fov].astype(float)
    assert outside.mean() < 10  # black surround
    r, g, b = inside.mean(axis=0)
    assert r > g > b  # orange-red retina


def test_generate_writes_folder_layout(tiny_synth):
    idx = open_dataset(tiny_synth)
    assert idx.counts()["total"] == {"normal": 8, "abnormal": 4, "masks": 4}
    assert (tiny_synth / "masks" / "lesion_union").is_dir()
    report = check_dataset(tiny_synth, progress=False)
    assert report["usable"] and not report["problems"]


def test_cli_data_check_json(tiny_synth, capsys):
    assert main(["data", "check", str(tiny_synth), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["counts"] == {"normal": 8, "abnormal": 4, "masks": 4} and r["problems"] == []


def test_cli_data_check_reports_broken_image(tiny_synth, tmp_path, capsys):
    import shutil

    d = tmp_path / "broken"
    shutil.copytree(tiny_synth, d)
    (d / "normal" / "synth_normal_000.jpg").write_text("not a jpeg")
    assert main(["data", "check", str(d), "--json"]) == 2
    cap = capsys.readouterr()
    r = json.loads(cap.out)
    assert len(r["problems"]) == 1 and "synth_normal_000.jpg" in r["problems"][0]
    assert "Traceback" not in cap.err


def test_cli_missing_folder_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset folder not found" in err[0]


def test_cli_synth_refuses_existing(tiny_synth, capsys):
    assert main(["synth", "--out", str(tiny_synth), "--normal", "1", "--abnormal", "0", "--size", "64", "--quiet"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err


@pytest.mark.parametrize("name,counts", [("idrid", (45, 10, 10)), ("hrf", (15, 30, 0))])
def test_shared_data_check(name, counts):
    r = check_dataset(shared_dataset(name), progress=False)
    assert r["usable"], r["problems"]
    assert (r["counts"]["normal"], r["counts"]["abnormal"], r["counts"]["masks"]) == counts


def test_tiny_image_is_a_problem(tmp_path):
    import shutil

    from PIL import Image

    d = tmp_path / "d"
    (d / "normal").mkdir(parents=True)
    Image.new("RGB", (1, 1), (200, 100, 20)).save(d / "normal" / "x.png")
    r = check_dataset(d, progress=False)
    assert not r["usable"] and "too small" in r["problems"][0]
    shutil.rmtree(d)
