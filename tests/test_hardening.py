"""Crash safety, numerics and bad input at every verb: one-line errors, exit status 2, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from wdmt import WdmtError
from wdmt.api import train
from wdmt.cli import main
from wdmt.config import resolve_config
from wdmt.rundir import load_checkpoint


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wdmt", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tiny_synth, tmp_path):
    args = ["train", "--data", str(tiny_synth), "--model", "wdmt-nohog", "--preset", "tiny", "--epochs", "6", "--quiet"]
    ref = _cli(*args, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "wdmt", *args, "--out", str(tmp_path / "killed")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not (last.exists() and load_checkpoint(last)["epoch"] >= 2):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # a real kill, somewhere in epoch 3 or later
    p.wait()
    assert load_checkpoint(last)["epoch"] < 6
    res = _cli(*args, "--out", str(tmp_path / "killed"), "--resume")
    assert res.returncode == 0, res.stderr
    a = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    import csv

    epochs = [int(r["epoch"]) for r in csv.DictReader(open(tmp_path / "killed" / "log.csv"))]
    assert epochs == [1, 2, 3, 4, 5, 6]  # no epoch logged twice
    ma = (tmp_path / "ref" / "calibration.json").read_text()
    mb = (tmp_path / "killed" / "calibration.json").read_text()
    assert ma == mb


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tiny_synth, tmp_path, monkeypatch):
    from wdmt.models.wdmt_net.torch_model import WDMTNet

    real = WDMTNet.loss
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        loss, logs = real(self, batch)
        return (loss * float("nan"), logs) if calls["n"] > 12 else (loss, logs)

    monkeypatch.setattr(WDMTNet, "loss", poisoned)
    with pytest.raises(WdmtError, match="diverged"):
        train(tiny_synth, resolve_config("tiny", model="wdmt", epochs=5), tmp_path / "r", progress=False)
    st = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert 1 <= st["epoch"] < 5 and all(
        torch.isfinite(v).all() for v in st["model"].values() if v.dtype.is_floating_point
    )


@pytest.mark.parametrize("case", ["text_jpg", "missing", "empty", "tiny", "black"])
def test_predict_bad_photo_one_line_no_output(tiny_run, tmp_path, case, capsys):
    import numpy as np
    from PIL import Image

    from wdmt.archive import SOME_FAILED

    p = tmp_path / "photo.jpg"
    if case == "text_jpg":
        p.write_text("not a photo")
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "tiny":
        Image.new("RGB", (1, 1), (200, 90, 20)).save(p)
    elif case == "black":
        Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(p)
    out = tmp_path / "out"
    assert main(["predict", "--run", str(tiny_run), str(p), "--out", str(out), "--quiet", "--fail-fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0] and "Traceback" not in err[0]
    assert not out.exists()
    # without --fail-fast the photograph is listed in errors.csv, with one line of reason, and the exit code says so
    assert main(["predict", "--run", str(tiny_run), str(p), "--out", str(out), "--quiet"]) == SOME_FAILED
    errors = (out / "errors.csv").read_text().splitlines()
    assert len(errors) == 2 and errors[1].startswith(str(p)) and "Traceback" not in errors[1]
    assert (out / "predictions.csv").read_text().count("\n") == 1  # the header alone


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(WdmtError, match="not a run directory"):
        main(["--debug", "test", "--run", str(tmp_path / "nope")])


@pytest.mark.parametrize(
    "args,needle",
    [
        (["test", "--run", "{tmp}/not-a-run"], "not a run directory"),
        (["train", "--data", "{tmp}/nodata", "--out", "{tmp}/r"], "dataset folder not found"),
        (["train", "--data", "{synth}", "--out", "{tmp}/r", "--preset", "nope"], "unknown preset"),
        (["train", "--data", "{synth}", "--out", "{tmp}/r", "--model", "nope"], "unknown model"),
        (["train", "--data", "{synth}", "--out", "{tmp}/r", "--set", "widht=3"], "unknown option"),
        (["train", "--data", "{synth}", "--out", "{tmp}/r", "--fold", "6/5"], "fold 6/5"),
        (["train", "--data", "{synth}", "--out", "{tmp}/r", "--config", "{tmp}/bad.yaml"], "unknown key"),
        (["predict", "--onnx", "{tmp}/bad.onnx", "{synth}/normal/synth_normal_000.jpg", "--out", "{tmp}/o"], "ONNX"),
    ],
)
def test_cli_errors_are_one_line_exit_2(args, needle, tiny_synth, tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("epoch: 3\n")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    argv = [a.format(tmp=tmp_path, synth=tiny_synth) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_train_refuses_data_without_normal_images(tmp_path, capsys):
    from wdmt.synth import generate

    d = generate(tmp_path / "d", normal=0, abnormal=2, size=64, seed=1, progress=False)
    assert main(["train", "--data", str(d), "--preset", "tiny", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "no normal training image" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _fundus(path, size=(120, 90), mode="RGB"):
    import numpy as np
    from PIL import Image

    a = np.zeros((size[1], size[0], 3), np.uint8)
    yy, xx = np.mgrid[: size[1], : size[0]]
    a[(xx - size[0] / 2) ** 2 + (yy - size[1] / 2) ** 2 < (size[1] / 2.2) ** 2] = (150, 75, 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).convert(mode).save(path)
    return a


def _base(root):
    import numpy as np
    from PIL import Image

    for i in range(4):
        _fundus(root / "normal" / f"n{i}.png")
    _fundus(root / "abnormal" / "a0.png")
    m = np.zeros((90, 120), np.uint8)
    m[40:45, 50:55] = 255
    (root / "masks" / "lesion_union").mkdir(parents=True)
    Image.fromarray(m).save(root / "masks" / "lesion_union" / "a0.png")
    return root


def _make(case, root):
    """Build one bad-input case; return (expected exit status, text expected in the output)."""
    import io as pyio

    import numpy as np
    from PIL import Image

    if case == "missing_folder":
        return 2, "dataset folder not found"
    if case == "empty_folders":
        (root / "normal").mkdir(parents=True)
        return 2, "no images found"
    _base(root)
    n0 = root / "normal" / "n0.png"
    if case == "empty_file":
        n0.write_bytes(b"")
        return 2, "file is empty"
    if case == "truncated_jpeg":
        buf = pyio.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
        n0.unlink()
        (root / "normal" / "n0.jpg").write_bytes(buf.getvalue()[:3000])
        return 2, "truncated"
    if case == "text_as_jpg":
        (root / "normal" / "x.jpg").write_text("hello")
        return 2, "not an image file"
    if case == "png_16bit":
        a = _fundus(n0)
        Image.fromarray(a[..., 0].astype(np.uint16) * 257).save(n0)
        return 0, "usable"
    if case in ("rgba", "palette", "grey"):
        _fundus(n0, mode={"rgba": "RGBA", "palette": "P", "grey": "L"}[case])
        return 0, "usable"
    if case == "cmyk_jpeg":
        n0.unlink()
        _fundus(root / "normal" / "n0.jpg", mode="CMYK")
        return 0, "usable"
    if case == "one_pixel":
        Image.new("RGB", (1, 1), (200, 100, 20)).save(n0)
        return 2, "too small"
    if case == "decompression_bomb":
        Image.new("L", (9000, 9000)).save(n0)
        return 2, "over the 64 MP limit"
    if case == "all_black":
        Image.new("RGB", (120, 90)).save(n0)
        return 2, "no field of view"
    if case == "mask_size":
        Image.new("L", (60, 45)).save(root / "masks" / "lesion_union" / "a0.png")
        return 2, "mask is 60 x 45"
    if case == "mask_values":
        m = np.zeros((90, 120), np.uint8)
        m[40:45, 50:55] = 128
        Image.fromarray(m).save(root / "masks" / "lesion_union" / "a0.png")
        return 0, "grey values"
    if case == "mask_without_image":
        Image.new("L", (120, 90)).save(root / "masks" / "lesion_union" / "ghost.png")
        return 0, "mask without an image"
    if case == "image_without_mask":
        _fundus(root / "abnormal" / "a1.png")
        return 0, "usable"  # an image-level label only, as HRF
    if case == "duplicate_stems":
        _fundus(root / "abnormal" / "n0.png")
        return 2, "share the name"
    if case == "non_utf8_name":
        os.rename(root / "normal" / "n1.png", os.path.join(os.fsencode(root / "normal"), b"caf\xe9.png"))
        return 0, "usable"
    if case == "manifest_escape":
        (root / "manifest.csv").write_text("file,label\n../../etc/passwd,0\n")
        return 2, "escapes the dataset root"
    if case == "no_normal_training_image":
        import shutil

        shutil.rmtree(root / "normal")
        return 0, "only be used for evaluation"
    raise AssertionError(case)


BAD_CASES = [
    "missing_folder",
    "empty_folders",
    "empty_file",
    "truncated_jpeg",
    "text_as_jpg",
    "png_16bit",
    "rgba",
    "palette",
    "grey",
    "cmyk_jpeg",
    "one_pixel",
    "decompression_bomb",
    "all_black",
    "mask_size",
    "mask_values",
    "mask_without_image",
    "image_without_mask",
    "duplicate_stems",
    "non_utf8_name",
    "manifest_escape",
    "no_normal_training_image",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_data_check_bad_input(case, tmp_path):
    root = tmp_path / "d"
    status, needle = _make(case, root)
    p = subprocess.run(
        [sys.executable, "-m", "wdmt", "data", "check", os.fsdecode(root), "--quiet"],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=300,
    )
    assert p.returncode == status, p.stdout + p.stderr
    assert needle in p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    if status == 2:
        problems = [line for line in p.stderr.splitlines() if line.startswith("wdmt: problem:")]
        assert problems and all(len(line) < 400 for line in problems)
