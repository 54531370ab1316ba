"""The model shipped inside the package (issue 16): it loads, scores a photograph without --run, and its card tells
the truth."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, shared_dataset
from wdmt.shipped import DEFAULT, MAX_BYTES, card, render_card, shipped_run


def test_shipped_weights_are_safetensors_small_and_load_strictly():
    from wdmt.rundir import RunDir

    run = shipped_run()
    weights = run / "checkpoints" / "best.safetensors"
    assert weights.stat().st_size <= MAX_BYTES
    assert not (run / "checkpoints" / "best.pt").exists()  # no pickle ships
    model, cfg = RunDir(run).load_model()  # load_state_dict is strict
    assert cfg.model == card()["model"] and cfg.eval.fov == "inside"


def test_predict_without_run_uses_the_shipped_model_and_says_so(tmp_path):
    from wdmt.synth import render

    photo = tmp_path / "eye.png"
    Image.fromarray(render(512, np.random.default_rng(1), abnormal=True).image).save(photo)
    p = subprocess.run([sys.executable, "-m", "wdmt", "predict", str(photo), "--out", str(tmp_path / "o"), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    notes = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and "shipped model" in notes[0] and DEFAULT in notes[0]
    row = json.loads(p.stdout.splitlines()[0])
    assert row["decision"] in ("normal", "abnormal") and np.isfinite(row["score"])
    assert row["threshold"] == pytest.approx(card()["thresholds"]["image_threshold"])
    assert (tmp_path / "o" / "eye_overlay.jpg").is_file()  # named after the photograph's path from here


def test_the_card_is_rendered_from_its_numbers_and_its_thresholds_are_the_runs():
    run = shipped_run()
    c = card()
    assert (run / "MODEL_CARD.md").read_text() == render_card(c)
    cal = json.loads((run / "calibration.json").read_text())
    used = [e for e in cal if e["key"]["fov"] == "inside"]
    assert any(e["pixel_threshold"] == c["thresholds"]["pixel_threshold"] for e in used)
    assert "python scripts/build_shipped_model.py" in c["command"]
    assert (REPO / "scripts" / "build_shipped_model.py").is_file()


@pytest.mark.slow
def test_the_cards_accuracy_is_what_its_command_reproduces(tmp_path):
    """The card's command, run on the real data: the same pixel metrics on IDRiD's annotated test photographs."""
    from wdmt import api

    idrid = shared_dataset("idrid")
    m = api.test(shipped_run(), idrid, protocol="strict", out=tmp_path / "eval", pictures=0, progress=False)
    values = card()["metrics"]["values"]
    assert m["pixel"]["n_images"] == card()["metrics"]["n_images"]
    assert m["pixel"]["auroc"] == pytest.approx(values["pixel AUROC inside the FOV"], abs=1e-6)
    assert m["pixel"]["ap"] == pytest.approx(values["pixel AP inside the FOV"], abs=1e-6)
    assert m["pixel_all_pixels"]["auroc"] == pytest.approx(values["pixel AUROC, all pixels (the paper's protocol)"],
                                                           abs=1e-6)


def test_a_fitted_feature_model_scores_without_the_weights_package(without_weights_package):
    """Its checkpoint carries the backbone: scoring must not need ``wdmt[features]``."""
    import torch

    from wdmt.rundir import RunDir

    model, cfg = RunDir(shipped_run()).load_model()
    out = model.predict(torch.rand(1, 3, 96, 96))  # 96: the fusion's segmenter cuts 3 x 3 overlapping tiles
    assert torch.isfinite(out.anomaly_map).all()
