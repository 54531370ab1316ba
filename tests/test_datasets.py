from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_dataset
from wdmt import WdmtError
from wdmt.datasets import open_dataset


def _img(p: Path, value: int = 120, size=(40, 30)) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[5:-5, 5:-5] = (value, value // 2, 10)
    Image.fromarray(a).save(p)


def _mask(p: Path, lesion_value: int = 255, bg: int = 0, size=(40, 30)) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((size[1], size[0]), bg, np.uint8)
    a[10:14, 10:14] = lesion_value
    Image.fromarray(a).save(p)


@pytest.fixture
def fake_idrid(tmp_path: Path) -> Path:
    """The official IDRiD archive layout, in miniature: 6 seg train, 4 seg test, 10 + 5 graded images."""
    r = tmp_path / "IDRiD"
    seg = r / "A. Segmentation"
    for part, ids in (("a. Training Set", range(1, 7)), ("b. Testing Set", range(55, 59))):
        for i in ids:
            _img(seg / "1. Original Images" / part / f"IDRiD_{i:02d}.jpg")
            for k, sub in (("MA", "1. Microaneurysms"), ("HE", "2. Haemorrhages"), ("OD", "5. Optic Disc")):
                _mask(seg / "2. All Segmentation Groundtruths" / part / sub / f"IDRiD_{i:02d}_{k}.tif")
    gr = r / "B. Disease Grading"
    rows = {
        "a": [
            (1, 0, 0),
            (2, 0, 0),
            (3, 0, 1),
            (4, 2, 0),
            (5, 0, 0),
            (6, 0, 0),
            (7, 3, 2),
            (8, 0, 0),
            (9, 0, 0),
            (10, 0, 0),
        ],
        "b": [(1, 0, 0), (2, 1, 0), (3, 0, 0), (4, 0, 0), (5, 4, 2)],
    }
    for key, part, label_csv, offset in (
        ("a", "a. Training Set", "a. IDRiD_Disease Grading_Training Labels.csv", 0),
        ("b", "b. Testing Set", "b. IDRiD_Disease Grading_Testing Labels.csv", 100),
    ):
        (gr / "2. Groundtruths").mkdir(parents=True, exist_ok=True)
        with open(gr / "2. Groundtruths" / label_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Image name", "Retinopathy grade", "Risk of macular edema "])
            for n, dr, dme in rows[key]:
                name = f"IDRiD_{n + offset:03d}"
                w.writerow([name, dr, dme])
                _img(gr / "1. Original Images" / part / f"{name}.jpg")
    return r


def test_fake_idrid_counts_and_splits(fake_idrid):
    idx = open_dataset(fake_idrid)  # format detected
    assert idx.format == "idrid"
    c = idx.counts()
    # train grading: grade 0 & DME 0 -> 1,2,5,6,8,9,10 = 7; one goes to val
    assert c["train"] == {"normal": 6, "abnormal": 0, "masks": 0}
    assert c["val"] == {"normal": 1, "abnormal": 0, "masks": 0}
    # test: 4 seg test images (abnormal) + grading test grade 0 & DME 0: 101, 103, 104
    assert c["test"] == {"normal": 3, "abnormal": 4, "masks": 4}
    ab = [s for s in idx.samples if s.label == 1]
    assert all(len(s.masks) == 2 and not any("_OD" in m.name for m in s.masks) for s in ab)


def test_fake_idrid_switches(fake_idrid):
    idx = open_dataset(fake_idrid, "idrid", test_abnormal="all", require_dme0=False, include_optic_disc=True)
    c = idx.counts()
    assert c["test"]["abnormal"] == 10 and c["train"]["normal"] + c["val"]["normal"] == 8
    assert all(len(s.masks) == 3 for s in idx.samples if s.label == 1)
    assert open_dataset(fake_idrid, "idrid", train_pool="all").counts()["test"]["normal"] == 0


@pytest.fixture
def fake_adam(tmp_path: Path) -> Path:
    r = tmp_path / "ADAM"
    for i in range(1, 5):
        _img(r / "Training400" / "AMD" / f"A{i:04d}.jpg")
    for i in range(1, 9):
        _img(r / "Training400" / "Non-AMD" / f"N{i:04d}.jpg")
    masks = r / "Training400-Lesion" / "Lesion_Masks"
    _mask(masks / "drusen" / "A0001.bmp", lesion_value=0, bg=255)
    _mask(masks / "scar" / "A0001.bmp", lesion_value=0, bg=255)
    _mask(masks / "exudate" / "A0002.bmp", lesion_value=0, bg=255)
    _mask(masks / "others" / "N0003.bmp", lesion_value=0, bg=255)
    return r


def test_fake_adam_paper_protocol(fake_adam):
    idx = open_dataset(fake_adam)
    assert idx.format == "adam"
    c = idx.counts()
    assert c["test"] == {"normal": 0, "abnormal": 3, "masks": 3}
    assert c["train"]["normal"] + c["val"]["normal"] == 9 and c["val"]["normal"] == 1
    s = next(s for s in idx.samples if s.id == "A0001")
    assert len(s.masks) == 2 and s.masks_inverted


def test_fake_adam_amd_protocol(fake_adam):
    c = open_dataset(fake_adam, "adam", protocol="amd").counts()
    assert c["total"] == {"normal": 8, "abnormal": 4, "masks": 3}
    assert c["test"]["abnormal"] == 4 and c["test"]["normal"] >= 1


def test_folder_stem_matching_and_union_dir(tmp_path):
    r = tmp_path / "d"
    for i in range(10):
        _img(r / "normal" / f"n{i}.png")
    _img(r / "abnormal" / "sub" / "a1.png")
    _img(r / "abnormal" / "a2.png")
    _mask(r / "masks" / "MA" / "a1_MA.png")
    _mask(r / "masks" / "HE" / "a1_HE.png")
    _mask(r / "masks" / "OD" / "a1_OD.png")
    _mask(r / "masks" / "lesion_union" / "a2.png")
    _mask(r / "masks" / "MA" / "a2_MA.png")
    _mask(r / "masks" / "MA" / "ghost_MA.png")
    idx = open_dataset(r)
    a1 = next(s for s in idx.samples if s.id == "a1")
    a2 = next(s for s in idx.samples if s.id == "a2")
    assert sorted(m.name for m in a1.masks) == ["a1_HE.png", "a1_MA.png"]
    assert [m.name for m in a2.masks] == ["a2.png"]
    assert any("ghost_MA.png: mask without an image" in w for w in idx.warnings)
    c = idx.counts()
    assert (
        c["train"]["normal"] == 7 and c["val"]["normal"] == 1 and c["test"] == {"normal": 2, "abnormal": 2, "masks": 2}
    )


def test_split_is_seeded_and_order_free(tmp_path):
    r = tmp_path / "d"
    for i in range(20):
        _img(r / "normal" / f"n{i:02d}.png")
    a = {s.id: s.split for s in open_dataset(r, seed=1).samples}
    assert a == {s.id: s.split for s in open_dataset(r, seed=1).samples}
    assert a != {s.id: s.split for s in open_dataset(r, seed=2).samples}


def test_folds_test_every_normal_once_with_the_usual_train_and_val_sizes(tmp_path):
    from wdmt.datasets import assign_fold

    r = tmp_path / "d"
    for i in range(20):
        _img(r / "normal" / f"n{i:02d}.png")
    _img(r / "abnormal" / "a0.png")
    samples = open_dataset(r, seed=1).samples
    tested: list[str] = []
    for k in range(1, 6):
        folds = assign_fold(samples, k, 5, seed=1)
        split = {s.id: s.split for s in folds}
        assert split["a0"] == "test" and sum(v == "val" for v in split.values()) == 2  # 10 % of 20, as usual
        tested += [s.id for s in folds if s.label == 0 and s.split == "test"]
    assert sorted(tested) == sorted(s.id for s in samples if s.label == 0)  # each normal tested exactly once
    assert {s.id: s.split for s in assign_fold(samples, 2, 5, seed=1)} != {
        s.id: s.split for s in assign_fold(samples, 2, 5, seed=2)}
    with pytest.raises(WdmtError, match="fold 6/5"):
        assign_fold(samples, 6, 5)


def test_manifest_split_column_holds_and_escape_refused(tmp_path):
    r = tmp_path / "d"
    _img(r / "normal" / "x.png")
    _img(r / "normal" / "y.png")
    (r / "manifest.csv").write_text("file,label,split\nnormal/x.png,0,val\nnormal/y.png,0,train\n")
    assert {s.id: s.split for s in open_dataset(r).samples} == {"x": "val", "y": "train"}
    (r / "manifest.csv").write_text("file,label\n../../etc/passwd,0\n")
    with pytest.raises(WdmtError, match="escapes the dataset root"):
        open_dataset(r)


def test_duplicate_stems_are_a_problem(tmp_path):
    r = tmp_path / "d"
    _img(r / "normal" / "same.png")
    _img(r / "abnormal" / "same.jpg")
    assert any("share the name 'same'" in p for p in open_dataset(r).problems)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "normal").mkdir()
    with pytest.raises(WdmtError, match="no images"):
        open_dataset(tmp_path)


def test_shared_idrid_counts():
    idx = open_dataset(shared_dataset("idrid"))
    assert idx.counts()["total"] == {"normal": 45, "abnormal": 10, "masks": 10}
    assert idx.counts()["test"]["abnormal"] == 10


def test_shared_hrf_counts():
    c = open_dataset(shared_dataset("hrf")).counts()["total"]
    assert (c["normal"], c["abnormal"]) == (15, 30)
