"""One-epoch end-to-end train / test / predict on tiny synthetic data, and the run directory's contracts."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import wdmt
from wdmt import WdmtError, api
from wdmt.api import predict, train
from wdmt.cli import main
from wdmt.config import resolve_config
from wdmt.rundir import RunDir, load_checkpoint


@pytest.fixture
def run(tiny_run):
    return tiny_run


def test_run_directory_contents(run):
    for f in ("config.json", "env.json", "data.json", "log.csv", "summary.json", "calibration.json",
              "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / f).is_file(), f
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 5 and env["torch"] == torch.__version__
    root = Path(wdmt.__file__).resolve().parents[2]
    if (root / ".git").exists() and shutil.which("git"):  # a checkout: the run names its commit
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert env["source"]["commit"] == head.strip() and isinstance(env["source"]["dirty"], bool)
    else:
        assert env["source"] is None
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == 2 and {"loss", "recon", "hog", "alpha", "val_error", "tiles_per_s"} <= set(rows[0])
    st = load_checkpoint(run / "checkpoints" / "last.pt")
    assert st["epoch"] == 2 and "alpha" in "".join(st["model"])


def test_test_writes_metrics_predictions_pictures(run):
    """The numbers in metrics.json are the ones scikit-learn computes from the same maps and scores."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from wdmt.evaluate import infer
    from wdmt.pipeline import load_samples

    r = api.test(run, progress=False, n_boot=50, pictures=2)
    m = json.loads((run / "eval-test" / "metrics.json").read_text())
    rd = RunDir(run)
    model, cfg = rd.load_model()
    idx, _ = rd.dataset()
    res = infer(model, load_samples(idx.split("test"), cfg.preprocess, None, progress=False), cfg)
    annotated = [x for x in res if x.item.sample.label == 1 and x.item.prepared.lesion is not None]
    assert cfg.eval.fov == "inside"  # the default: pixels inside the field of view; all pixels beside them
    s = np.concatenate([x.map(cfg.eval)[x.item.prepared.fov] for x in annotated])
    y = np.concatenate([x.item.prepared.lesion[x.item.prepared.fov] for x in annotated])
    assert m["pixel"]["n_pixels"] == s.size < m["pixel_all_pixels"]["n_pixels"] == len(annotated) * 96 * 96
    assert m["pixel"]["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert m["pixel"]["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-6)
    lo, hi = m["pixel"]["auroc_ci95"]
    assert lo < m["pixel"]["auroc"] < hi
    labels = np.array([x.item.sample.label for x in res])
    assert m["image"]["auroc"] == pytest.approx(roc_auc_score(labels, [x.score(cfg.eval) for x in res]), abs=1e-6)
    assert m["pixel"]["protocol"] == "paper" and "Youden" in m["pixel"]["threshold_rule"]
    assert set(m["pixel_auroc_by_fov"]) == {"none", "zero", "inside"}
    rows = list(csv.DictReader(open(run / "eval-test" / "predictions.csv")))
    assert len(rows) == r["image"]["n_images"] and {"id", "label", "score", "decision"} <= set(rows[0])
    assert (run / "eval-test" / "roc.png").is_file()
    assert len(list((run / "eval-test" / "pictures").glob("*.png"))) == 2


def test_strict_protocol_uses_validation_threshold(run, tmp_path):
    """The strict thresholds are the stated quantiles of the validation normals, recomputed here from their maps."""
    import numpy as np

    from wdmt.evaluate import infer
    from wdmt.pipeline import load_samples

    r = api.test(run, protocol="strict", out=tmp_path / "strict", progress=False, n_boot=20, pictures=0)
    rd = RunDir(run)
    model, cfg = rd.load_model()
    idx, _ = rd.dataset()
    val = infer(model, load_samples(idx.split("val"), cfg.preprocess, None, progress=False), cfg)
    pix = np.concatenate([v.map(cfg.eval)[v.item.prepared.fov] for v in val])
    assert r["pixel"]["threshold"] == pytest.approx(np.quantile(pix, cfg.eval.pixel_quantile), rel=1e-6)
    scores = [v.score(cfg.eval) for v in val]
    assert r["image"]["threshold"] == pytest.approx(np.quantile(scores, cfg.eval.image_quantile), rel=1e-6)
    assert "validation" in r["pixel"]["threshold_rule"] and r["calibration"]["n_images"] == len(val)


def test_calibration_applies_the_quantile_rule_over_images_and_fov():
    """The rule itself, on maps whose quantiles are known (the tiny fixture has one validation image, too few to
    tell a quantile from a maximum)."""
    from types import SimpleNamespace

    import numpy as np

    from wdmt.config import EvalConfig
    from wdmt.evaluate import ImageResult, calibrate

    rng = np.random.default_rng(0)
    fov = np.zeros((20, 20), bool)
    fov[2:18, 2:18] = True
    results = [ImageResult(item=SimpleNamespace(prepared=SimpleNamespace(fov=fov)), raw_map=rng.random((20, 20)),
                           recon=None, hog=None, latent=None, tile_scores=rng.random(9)) for _ in range(20)]
    for fov_mode in ("none", "inside"):
        ev = EvalConfig(fov=fov_mode, pixel_quantile=0.9, image_quantile=0.75)
        cal = calibrate(results, ev)
        pix = np.concatenate([x.raw_map[fov] if fov_mode == "inside" else x.raw_map.ravel() for x in results])
        assert cal["pixel_threshold"] == pytest.approx(np.quantile(pix, 0.9))
        k = 3 if fov_mode == "inside" else 4  # the top 1 %: of 256 pixels inside the FOV, of all 400
        tops = [np.sort((x.raw_map[fov] if fov_mode == "inside" else x.raw_map).ravel())[-k:].mean() for x in results]
        assert cal["image_threshold"] == pytest.approx(np.quantile(tops, 0.75))
        assert cal["own_image_threshold"] == pytest.approx(np.quantile([x.tile_scores.max() for x in results], 0.75))
        assert cal["image_threshold"] < max(tops)  # a quantile, not the maximum


def test_paper_epoch_choice_scores_every_kept_epoch_on_test(tiny_synth, tmp_path, capsys):
    out = tmp_path / "kept"
    train(tiny_synth, resolve_config("tiny", model="wdmt", epochs=3, keep_epochs=2), out, progress=False)
    kept = sorted(p.name for p in (out / "checkpoints").glob("epoch-*.pt"))
    assert kept == ["epoch-002.pt", "epoch-003.pt"]  # every 2nd, and the last
    assert main(["test", "--run", str(out), "--checkpoint", "paper", "--pictures", "0", "--quiet"]) == 0
    assert "chosen by test pixel AUROC" in capsys.readouterr().out
    ev_dir = out / "eval-test-paper"  # beside, not over, the default evaluation
    rows = list(csv.DictReader(open(ev_dir / "epochs.csv")))
    assert [int(r["epoch"]) for r in rows] == [2, 3]
    log = {r["epoch"]: r for r in csv.DictReader(open(out / "log.csv"))}
    assert all(float(r["val_error"]) == pytest.approx(float(log[r["epoch"]]["val_error"])) for r in rows)
    m = json.loads((ev_dir / "metrics.json").read_text())
    winner = max(rows, key=lambda r: float(r["test_pixel_auroc"]))
    assert m["epoch_choice"]["epoch"] == int(winner["epoch"]) and m["checkpoint"] == f"epoch-{int(winner['epoch']):03d}"
    # the full evaluation ran on the chosen epoch's weights: its AUROC is the one that won
    assert m["pixel"]["auroc"] == pytest.approx(float(winner["test_pixel_auroc"]), abs=1e-9)
    assert "test data" in m["epoch_choice"]["rule"] and (ev_dir / "epochs.png").is_file()
    assert m["epoch_choice"]["ours"] == load_checkpoint(out / "checkpoints" / "best.pt")["epoch"]


def test_paper_epoch_choice_without_kept_epochs_is_a_clear_error(run, capsys):
    assert main(["test", "--run", str(run), "--checkpoint", "paper", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "--keep-epochs" in err and not (run / "eval-test-paper").exists()


def test_bf16_inference_is_close_and_calibrated_on_its_own(run, tmp_path):
    from dataclasses import replace

    ev = RunDir(run).config().eval
    a = api.test(run, protocol="strict", out=tmp_path / "fp32", progress=False, n_boot=10, pictures=0)
    b = api.test(run, protocol="strict", ev=replace(ev, precision="bf16"), out=tmp_path / "bf16", progress=False,
                 n_boot=10, pictures=0)
    assert a["pixel"]["auroc"] != b["pixel"]["auroc"]  # the arithmetic really changed ...
    assert abs(a["pixel"]["auroc"] - b["pixel"]["auroc"]) < 0.02  # ... and not the result
    keys = [c["key"]["precision"] for c in json.loads((run / "calibration.json").read_text())]
    assert "bf16" in keys and "fp32" in keys  # thresholds are never shared between arithmetics


def test_predict_flags_an_obvious_lesion(run, tmp_path):
    """A normal photograph with a large bright lesion painted in scores well above every normal one and is called
    abnormal; each decision is the stated rule, score >= threshold."""
    from PIL import Image, ImageDraw

    idx, _ = RunDir(run).dataset()
    normals = [s.image for s in idx.samples if s.label == 0 and s.split in ("val", "test")]
    painted = Image.open(normals[0]).convert("RGB")
    ImageDraw.Draw(painted).ellipse([30, 30, 60, 60], fill=(255, 255, 120))
    painted.save(tmp_path / "lesion.png")
    rows = predict(run, [*normals, tmp_path / "lesion.png"], tmp_path / "pred", progress=False)
    *normal_rows, lesion = rows
    assert lesion["decision"] == "abnormal" and lesion["score"] > 1.1 * max(r["score"] for r in normal_rows)
    assert all(r["decision"] == ("abnormal" if r["score"] >= r["threshold"] else "normal") for r in rows)
    assert all(Path(r["overlay"]).is_file() and r["overlay"].endswith(f"{Path(r['image']).stem}_overlay.jpg")
               for r in rows)
    lines = (tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["image"] for x in lines] == [r["image"] for r in rows]


def test_existing_run_not_overwritten(run, tiny_synth):
    with pytest.raises(WdmtError, match="--resume"):
        train(tiny_synth, resolve_config("tiny"), run, progress=False)


def test_seeded_runs_identical_and_resume_matches_uninterrupted(tiny_synth, tmp_path, monkeypatch):
    import wdmt.train as T

    cfg = resolve_config("tiny", model="wdmt-nohog", epochs=2)
    train(tiny_synth, cfg, tmp_path / "a", progress=False)
    train(tiny_synth, cfg, tmp_path / "b", progress=False)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # two seeded CPU runs: bit for bit

    real = T.validation_error
    calls = {"n": 0}

    def dies_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed at the end of epoch 2, before its checkpoint
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "validation_error", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_synth, cfg, tmp_path / "c", progress=False)
    assert load_checkpoint(tmp_path / "c" / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(T, "validation_error", real)
    # a resume keeps the splits the run started with, even asked for another split seed
    log = tmp_path / "c" / "log.csv"
    rows = list(csv.DictReader(open(log)))
    rows[0]["seconds"] = "1000.0"  # as if the first sitting's epoch had been slow, to see it counted
    with open(log, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = train(tiny_synth, cfg, tmp_path / "c", resume=True, split_seed=7, progress=False)
    assert summary["resumed_at_epoch"] == 1
    assert 1000 <= summary["train_seconds"] < 1000 + 600  # the earlier sitting's epoch counts too
    c = load_checkpoint(tmp_path / "c" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert len(list(csv.DictReader(open(tmp_path / "c" / "log.csv")))) == 2


def test_crafted_pickle_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"model": Evil()}, f, protocol=2)
    with pytest.raises(WdmtError, match="unsafe to load|not a wdmt checkpoint"):
        load_checkpoint(p)
    assert not marker.exists()


def test_cli_train_test_predict(tiny_synth, tmp_path, capsys):
    out = tmp_path / "cli-run"
    args = ["train", "--data", str(tiny_synth), "--model", "ae", "--preset", "tiny", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(["test", "--run", str(out), "--json", "--quiet", "--pictures", "0"]) == 0
    text = capsys.readouterr().out
    m = json.loads(text[text.index("{") :])
    assert "auroc" in m["pixel"] and m["model"] == "ae"
    img = sorted((tiny_synth / "normal").glob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["predict", "--run", str(out), str(img), "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert (
        main(["predict", "--run", str(out), str(img), "--out", str(tmp_path / "p16"), "--quiet", "--precision", "bf16"])
        == 0
    )
    fp32, bf16 = (json.loads(line) for line in capsys.readouterr().out.splitlines())  # one JSON row per photograph
    assert fp32["image"] == bf16["image"] == str(img) and Path(fp32["overlay"]).is_file()
    assert fp32["score"] != bf16["score"] and bf16["score"] == pytest.approx(fp32["score"], rel=0.05)


def test_config_file_validation(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("epochs: ten\n")
    with pytest.raises(WdmtError, match="expected an integer"):
        resolve_config("tiny", bad)
    bad.write_text("epoch: 3\n")
    with pytest.raises(WdmtError, match="unknown key"):
        resolve_config("tiny", bad)
    bad.write_text("preprocess: {size: 100, tiles: 3}\n")
    with pytest.raises(WdmtError, match="multiple"):
        resolve_config("tiny", bad)
    good = tmp_path / "g.yaml"
    good.write_text("epochs: 3\nmodel_options: {delta: 0.1}\neval: {fov: zero}\n")
    cfg = resolve_config("tiny", good)
    assert (
        cfg.epochs == 3
        and cfg.model_options["delta"] == 0.1
        and cfg.model_options["width"] == 4
        and cfg.eval.fov == "zero"
    )


@pytest.mark.parametrize(
    "name", ["ae-baur", "memae", "bionet", "attn-unet", "anogan", "f-anogan", "ganomaly", "sparse-gan", "proxyano"]
)
@pytest.mark.slow
def test_every_baseline_trains_and_tests_through_the_loop(name, tiny_synth, tmp_path):
    opts = {"latent_steps": 5} if name == "anogan" else {}
    cfg = resolve_config("tiny", model=name, epochs=2, model_options=opts)
    train(tiny_synth, cfg, tmp_path / name, progress=False)
    with open(tmp_path / name / "log.csv", newline="") as f:
        header, *lines = list(csv.reader(f))
    assert all(len(line) == len(header) for line in lines)  # no row shifted under another row's header
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    assert len(rows) == 2 and all(float(r["loss"]) == float(r["loss"]) for r in rows)  # no NaN
    assert all(0 < float(r["seconds"]) < 600 and float(r["tiles_per_s"]) > 0 for r in rows)
    if name == "f-anogan":  # the stages switch inside epoch 2: its row has both stages' keys, each in its column
        assert [r["stage"] for r in rows] == ["1.0", "2.0"] and rows[0]["recon"] == "" and rows[1]["recon"] != ""
    r = api.test(tmp_path / name, progress=False, n_boot=10, pictures=1)
    # every pixel of the 4 abnormal 96 px images was scored (the headline counts those inside the FOV), and the map
    # is not a constant (AUROC exactly 0.5)
    assert (
        r["pixel"]["n_pixels"] < r["pixel_all_pixels"]["n_pixels"] == 4 * 96 * 96
        and r["pixel"]["auroc"] != 0.5
        and r["pixel"]["auroc"] == r["pixel"]["auroc"]
    )


def test_log_keeps_each_value_under_its_own_column_when_keys_change(tmp_path):
    rd = RunDir(tmp_path)
    path = rd.log_path
    rd.append_log({"epoch": 1, "loss": 0.5, "critic": -3.0, "seconds": 7.0})
    rd.append_log({"epoch": 2, "loss": 0.2, "recon": 0.1, "seconds": 4.0})
    rd.append_log({"epoch": 3, "loss": 0.1, "seconds": 3.0})
    rows = list(csv.DictReader(open(path)))
    assert [r["seconds"] for r in rows] == ["7.0", "4.0", "3.0"]
    assert [r["critic"] for r in rows] == ["-3.0", "", ""] and [r["recon"] for r in rows] == ["", "0.1", ""]


def test_onnx_export_parity_and_torch_free_predict(run, tiny_synth, tmp_path):
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    from wdmt.export import export_onnx

    r = export_onnx(run, tmp_path / "m.onnx")
    assert r["max_abs_diff"] is not None and r["max_abs_diff"] <= 1e-4
    assert r["metadata"]["thresholds"]["image_threshold"] is not None
    img = sorted((tiny_synth / "abnormal").glob("*.jpg"))[0]
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any torch import now fails
        "from wdmt.cli import main\n"
        f"sys.exit(main(['predict', '--onnx', {str(tmp_path / 'm.onnx')!r}, {str(img)!r}, '--out', "
        f"{str(tmp_path / 'o')!r}]))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    onnx_row = json.loads((tmp_path / "o" / "predictions.jsonl").read_text().splitlines()[0])
    torch_row = predict(run, [img], tmp_path / "t", progress=False)[0]
    assert onnx_row["score"] == pytest.approx(torch_row["score"], abs=1e-4)
    assert onnx_row["decision"] == torch_row["decision"]


def test_openvino_backend_gives_the_onnxruntime_numbers(run, tiny_synth, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from wdmt.cli import BACKENDS as CLI_BACKENDS
    from wdmt.deploy import BACKENDS, predict_onnx
    from wdmt.export import export_onnx

    assert tuple(CLI_BACKENDS) == BACKENDS
    export_onnx(run, tmp_path / "m.onnx")
    imgs = sorted((tiny_synth / "abnormal").glob("*.jpg"))[:2]
    ort_rows = predict_onnx(tmp_path / "m.onnx", imgs, tmp_path / "ort")
    ov_rows = predict_onnx(tmp_path / "m.onnx", imgs, tmp_path / "ov", backend="openvino")
    for a, b in zip(ort_rows, ov_rows, strict=True):
        assert b["score"] == pytest.approx(a["score"], abs=1e-4) and b["decision"] == a["decision"]
    with pytest.raises(WdmtError, match="unknown backend"):
        predict_onnx(tmp_path / "m.onnx", imgs, tmp_path / "x", backend="tensorrt")
    # wdmt test scores the runtime's maps with torch's metrics: the same numbers up to float rounding
    ref = api.test(run, protocol="strict", out=tmp_path / "t-torch", progress=False, n_boot=10, pictures=0)
    for backend in ("onnxruntime", "openvino"):
        got = api.test(run, protocol="strict", out=tmp_path / f"t-{backend}", progress=False, n_boot=10, pictures=0,
                       backend=backend)
        assert got["pixel"]["auroc"] == pytest.approx(ref["pixel"]["auroc"], abs=1e-4)
        assert got["image"]["auroc"] == pytest.approx(ref["image"]["auroc"], abs=1e-4)


def test_cpu_preset_options_apply_where_they_mean_something():
    assert resolve_config("cpu", model="wdmt").model_options == {"width": 16, "delta": 0.25}
    assert resolve_config("cpu", model="memae").model_options == {"width": 16}  # delta is not MemAE's
    assert resolve_config("cpu", model="wdmt", model_options={"delta": 0.1}).model_options["delta"] == 0.1
    from wdmt.models import model_config

    with pytest.raises(WdmtError, match="unknown option"):  # asked for explicitly: still an error
        model_config("memae", **resolve_config("cpu", model="memae", model_options={"delta": 0.1}).model_options)


def test_cpu_bf16_training_runs_and_is_recorded(tiny_synth, tmp_path):
    a, b = tmp_path / "fp32", tmp_path / "bf16"
    api.train(tiny_synth, resolve_config("tiny", model="ae"), a, progress=False)
    api.train(tiny_synth, resolve_config("tiny", model="ae", cpu_bf16=True), b, progress=False)
    assert json.loads((b / "config.json").read_text())["cpu_bf16"] is True
    wa, wb = (load_checkpoint(r / "checkpoints" / "last.pt")["model"] for r in (a, b))
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # the arithmetic was really bf16 ...
    assert all(torch.isfinite(v).all() for v in wb.values() if v.dtype.is_floating_point)
    assert all(v.dtype == wa[k].dtype for k, v in wb.items())  # ... while the weights stay float32


def test_overlapping_tiles_in_torch_and_onnx(run, tiny_synth, tmp_path):
    from dataclasses import replace

    ev = replace(RunDir(run).config().eval, tiling="overlap")
    r = api.test(run, protocol="strict", ev=ev, out=tmp_path / "ov", progress=False, n_boot=10, pictures=0)
    grid = api.test(run, protocol="strict", ev=replace(ev, tiling="grid"), out=tmp_path / "grid", progress=False,
                    n_boot=10, pictures=0)
    assert r["pixel"]["auroc"] != grid["pixel"]["auroc"]  # the tiling really changed the maps
    assert "overlap" in [c["key"]["tiling"] for c in json.loads((run / "calibration.json").read_text())]
    pytest.importorskip("onnxruntime")
    from wdmt.deploy import OnnxDetector
    from wdmt.export import export_onnx
    from wdmt.io import read_image
    from wdmt.scoring import image_score

    export_onnx(run, tmp_path / "m.onnx")
    det = replace(OnnxDetector.load(tmp_path / "m.onnx"), eval=ev)
    img = sorted((tiny_synth / "abnormal").glob("*.jpg"))[0]
    onnx_map, prep = det.anomaly_map(read_image(img))
    torch_rows = predict(run, [img], tmp_path / "t", progress=False, ev=ev)
    assert image_score(onnx_map, prep.fov, ev) == pytest.approx(torch_rows[0]["score"], abs=1e-4)


def test_a_models_own_image_score_reaches_metrics_and_predictions(tiny_synth, tmp_path):
    """GANomaly's latent distance (not the map's top 1 %) is evaluated, thresholded on validation normals and
    written per image: if any step dropped it, the recomputed values below would not match."""
    from dataclasses import replace

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from wdmt.pipeline import load_samples
    from wdmt.preprocess import tile, to_tensor

    run = tmp_path / "ganomaly"
    train(tiny_synth, resolve_config("tiny", model="ganomaly", epochs=1), run, progress=False)
    r = api.test(run, protocol="strict", progress=False, n_boot=10, pictures=0)
    rows = list(csv.DictReader(open(run / "eval-test" / "predictions.csv")))
    own = np.array([float(x["own_score"]) for x in rows])
    labels = np.array([int(x["label"]) for x in rows])
    assert not np.allclose(own, [float(x["score"]) for x in rows])  # a score of its own, not the map's
    m = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert m["image_own"]["auroc"] == pytest.approx(roc_auc_score(labels, own), abs=1e-9)
    assert "latent" in m["image_own"]["definition"] and r["image_own"]["protocol"] == "strict"
    # the per-image value is GANomaly's own mean (z - z_hat)^2, highest over the image's tiles
    rd = RunDir(run)
    model, cfg = rd.load_model()
    idx, _ = rd.dataset()
    first = next(s for s in idx.split("test") if s.id == rows[0]["id"])
    item = load_samples([first], cfg.preprocess, None, progress=False)[0]
    with torch.no_grad():
        tiles = model.predict(tile(to_tensor(item.prepared.image), cfg.preprocess.tiles))
    assert float(rows[0]["own_score"]) == pytest.approx(float(tiles.score.max()), rel=1e-4)
    # its strict threshold is the quantile rule over the validation normals' own scores
    from wdmt.evaluate import infer

    val = infer(model, load_samples(idx.split("val"), cfg.preprocess, None, progress=False), cfg)
    own_ev = replace(cfg.eval, score="model")
    expected = np.quantile([v.score(own_ev) for v in val], cfg.eval.image_quantile)
    assert m["calibration"]["own_image_threshold"] == pytest.approx(expected, rel=1e-6)
    assert float(rows[0]["own_threshold"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("score", ["model", "gatingano"])
def test_scores_that_need_the_torch_model_fail_loudly_without_it(score):
    """The ONNX path carries only the map: these scores used to come back as a silent 0.0 for every image."""
    import numpy as np

    from wdmt.config import EvalConfig
    from wdmt.scoring import image_score

    with pytest.raises(WdmtError, match=score):
        image_score(np.ones((8, 8), np.float32), np.ones((8, 8), bool), EvalConfig(score=score))


@pytest.mark.parametrize("name", ["ganomaly", "anogan", "sparse-gan", "f-anogan"])
def test_adversarial_models_keep_their_own_rate_unless_lr_is_asked(name, tmp_path):
    """--lr and weight_decay used to be ignored by these models (their optimisers read class attributes)."""
    own = {"f-anogan": 1e-4}.get(name, 2e-4)
    cfg = resolve_config("cpu", model=name)
    assert (cfg.lr, cfg.weight_decay) == (own, 0.0)  # the preset's 1e-3 is a default they do not take
    assert resolve_config("cpu", model=name, lr=3e-5).lr == 3e-5
    f = tmp_path / "c.yaml"
    f.write_text("weight_decay: 0.01\n")
    asked = resolve_config("cpu", f, model=name)
    assert (asked.lr, asked.weight_decay) == (own, 0.01)
    from wdmt.models import build_from_config

    opts = build_from_config(asked).configure_optimizers(asked.lr, asked.weight_decay)
    assert [g["weight_decay"] for o in opts for g in o.param_groups] == [0.01] * len(opts)
    rates = [g["lr"] for o in opts for g in o.param_groups]
    assert rates == ([own, own, own / 2] if name == "f-anogan" else [own, own])  # f-AnoGAN: encoder at half


def test_cli_lr_reaches_a_gans_optimisers(tiny_synth, tmp_path):
    out = tmp_path / "g"
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny_synth),
                "--model",
                "ganomaly",
                "--preset",
                "tiny",
                "--lr",
                "3e-5",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "config.json").read_text())["lr"] == 3e-5
    st = load_checkpoint(out / "checkpoints" / "last.pt")
    assert [o["param_groups"][0]["initial_lr"] for o in st["optimizers"]] == [3e-5, 3e-5]


def test_the_shipped_map_config_resolves():
    from tests.conftest import REPO

    cfg = resolve_config("cpu", REPO / "configs" / "fill-fov.yaml")
    assert cfg.preprocess.surround == "fill" and cfg.fov_loss and cfg.epochs == resolve_config("cpu").epochs


@pytest.mark.parametrize("model", ["wdmt", "ae", "memae", "ganomaly", "wdmt-synth"])
def test_cpu_preset_fills_the_surround_and_counts_fov_pixels(model):
    from tests.conftest import REPO

    cfg = resolve_config("cpu", model=model)
    assert cfg.preprocess.surround == "fill" and cfg.fov_loss
    assert resolve_config("cpu", REPO / "configs" / "fill-fov.yaml", model=model) == cfg
    former = resolve_config("cpu", REPO / "configs" / "black-surround.yaml", model=model)
    assert former.preprocess.surround == "black" and not former.fov_loss
    assert former == replace(cfg, preprocess=replace(cfg.preprocess, surround="black"), fov_loss=False)
    paper = resolve_config("paper", model=model)
    assert paper.preprocess.surround == "black" and not paper.fov_loss  # the paper's pipeline


@pytest.mark.parametrize("model", ["padim", "patchcore", "contrast", "synth-seg"])
def test_issue_15_models_keep_the_surround_they_were_measured_with(model):
    from tests.conftest import REPO

    cfg = resolve_config("cpu", model=model)
    assert cfg.preprocess.surround == "black" and not cfg.fov_loss
    asked = resolve_config("cpu", REPO / "configs" / "fill-fov.yaml", model=model)
    assert asked.preprocess.surround == "fill" and asked.fov_loss  # asked for, given
