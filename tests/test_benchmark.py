from __future__ import annotations

import csv
import json

import pytest

import wdmt.api as api_mod
from wdmt.benchmark import benchmark, suite_settings
from wdmt.cli import main


def test_suites_cover_the_paper_tables():
    s = suite_settings("all", preset="paper")
    assert [x.model for x in s["ablation"]] == ["ae", "unet", "wdmt-nohog", "ae-hog", "unet-hog", "wdmt"]
    assert [x.options["delta"] for x in s["decay"]] == [0.005, 0.01, 0.025, 0.05, 0.1]
    assert s["decay"][3].label == "wdmt delta=0.05"
    assert len(s["sota"]) == 11  # the paper's ten rows plus ae-baur, the literature autoencoder


def test_decay_rates_follow_the_training_length():
    # 40 epochs instead of 200: each delta x5, so the skips close at the same fraction of training as in the paper.
    d = suite_settings("decay", preset="cpu")["decay"]
    assert [x.options["delta"] for x in d] == [0.025, 0.05, 0.125, 0.25, 0.5]
    assert d[0].label == "wdmt delta=0.005 (run as wdmt delta=0.025)"
    assert [x.options["delta"] for x in suite_settings("decay", preset="cpu", epochs=20)["decay"]][3] == 0.5


@pytest.mark.slow
def test_benchmark_resumes_without_redoing_runs(tiny_synth, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    real_train = api_mod.train
    trained = []

    def counting_train(*a, **k):
        trained.append(a[2])
        if len(trained) == 2 and not k.get("resume"):
            raise KeyboardInterrupt  # killed while starting the second run
        return real_train(*a, **k)

    monkeypatch.setattr(api_mod, "train", counting_train)
    with pytest.raises(KeyboardInterrupt):
        benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae", "wdmt"], progress=False, maps=False)
    assert len(trained) == 2
    trained.clear()
    partial = benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae", "wdmt"], progress=False, maps=False,
                        report_only=True)  # read while it runs: trains nothing, reports what is finished
    assert trained == [] and [r["method"] for r in partial["tables"]["ablation"]] == ["ae"]
    assert "wdmt-s5" in (out / "report-ablation.html").read_text()  # named as missing
    r = benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae", "wdmt"], progress=False, maps=True)
    assert [p.name for p in trained] == ["wdmt-s5"]  # ae was finished: not trained again
    for f in ("table-ablation.md", "table-ablation.csv", "roc-ablation.png", "bars-ablation.png", "maps-ablation.png",
              "curves-ablation.png", "report-ablation.html", "results-ablation.csv"):
        assert (out / f).is_file(), f
    rows = list(csv.DictReader(open(out / "table-ablation.csv")))
    assert [r["method"] for r in rows] == ["ae", "wdmt"] and rows[1]["paper IDRiD"] == "0.748/0.694/0.711"
    assert "AUC, paper's epoch choice" not in rows[0]  # no run kept its epochs: no column of dashes
    res = {r["model"]: float(r["auc"]) for r in csv.DictReader(open(out / "results-ablation.csv"))}
    assert rows[0]["AUC - wdmt"].startswith(f"{res['ae'] - res['wdmt']:+.3f}") and rows[1]["AUC - wdmt"] == "-"
    html = (out / "report-ablation.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html  # roc, bars, curves, maps
    assert r["report"].endswith("report-ablation.html")


@pytest.mark.slow
def test_an_archive_without_weights_rebuilds_the_tables(tiny_synth, tmp_path):
    # A benchmark outlives the machine that trains it: its finished runs, copied without weights, give the same rows.
    out, kept = tmp_path / "bench", tmp_path / "kept"
    benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, archive=kept)
    run = kept / "runs" / "ae-s5"
    assert (run / "summary.json").is_file() and (run / "eval-test-inside" / "metrics.json").is_file()
    assert not (run / "checkpoints").exists() and not list(run.rglob("*.png"))
    assert sum(f.stat().st_size for f in run.rglob("*")) < 200_000
    info = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**info, "root": "/another/machine/data"}))  # copied elsewhere
    cmd = ["benchmark", "--quiet", "--suite", "ablation", "--models", "ae", "--preset", "tiny",
           "--data", str(tiny_synth), "--out", str(kept), "--report-only"]
    assert main(cmd) == 0
    trained, rebuilt = (list(csv.DictReader(open(d / "results-ablation.csv"))) for d in (out, kept))
    assert [{k: v for k, v in row.items() if k != "run"} for row in rebuilt] == [
        {k: v for k, v in row.items() if k != "run"} for row in trained]
    assert rebuilt[0]["cpu"].endswith(" thread(s)")  # what trained it, beside its training minutes
    assert rebuilt[0]["run"] == str(run) and (kept / "table-ablation.md").read_text() == (
        out / "table-ablation.md").read_text()
    # the grid of heat maps comes from the maps the run cached while it had its weights, the same picture
    assert (kept / "maps-ablation.png").read_bytes() == (out / "maps-ablation.png").read_bytes()
    (run / "grid-maps.npz").unlink()
    (kept / "maps-ablation.png").unlink()
    assert main(cmd) == 0 and not (kept / "maps-ablation.png").exists()  # neither weights nor maps: no column
    assert (kept / "table-ablation.md").is_file()


@pytest.mark.slow
def test_decay_suite_reuses_the_default_wdmt_run(tiny_synth, tmp_path):
    out = tmp_path / "b"
    assert main(["benchmark", "--suite", "ablation", "--data", str(tiny_synth), "--preset", "tiny", "--models", "wdmt",
                 "--out", str(out), "--quiet"]) == 0
    from wdmt.benchmark import Setting, normalise, plan

    p = plan("ablation", out, preset="tiny", seeds=2, models=["wdmt"])  # trains nothing
    assert [(e["seed"], e["state"]) for e in p] == [(5, "done"), (6, "to train")]
    assert (
        p[0]["minutes_left"] == 0
        and p[1]["epochs_left"] > 0
        and p[1]["minutes_left"] > 0
        and not (out / "runs" / "wdmt-s6").exists()
    )

    assert normalise(Setting("wdmt", {"delta": 0.05}), "tiny").run_name(5) == "wdmt-s5"  # tiny keeps the model's 0.05
    assert normalise(Setting("wdmt", {"delta": 0.25}), "cpu").run_name(5) == "wdmt-s5"  # the cpu preset's own delta
    assert normalise(Setting("wdmt", {"delta": 0.05}), "cpu").run_name(5) == "wdmt_delta0.05-s5"
    # the suite's own rows, which carry the paper's delta as their label: the preset's row is Table 1's run
    names = [normalise(s, "cpu").run_name(5) for s in suite_settings("decay", preset="cpu")["decay"]]
    assert names == ["wdmt_delta0.025-s5", "wdmt_delta0.05-s5", "wdmt_delta0.125-s5", "wdmt-s5", "wdmt_delta0.5-s5"]


@pytest.mark.slow
def test_a_finished_run_with_another_config_is_refused(tiny_synth, tmp_path):
    out = tmp_path / "b"
    benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, maps=False)
    from wdmt.errors import WdmtError

    with pytest.raises(WdmtError, match="another config"):
        benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, maps=False, epochs=2)


@pytest.mark.slow
def test_a_config_file_applies_to_every_run_and_reuses_runs_trained_with_it(tiny_synth, tmp_path):
    """Table 1 under other training defaults (configs/fill-fov.yaml) is trained run by run with wdmt train --config,
    then gathered by the benchmark with the same file: the runs are reused, not retrained, and without the file the
    benchmark refuses them rather than mixing two recipes in one table."""
    cfg = tmp_path / "fill.yaml"
    cfg.write_text("preprocess: {surround: fill}\nfov_loss: true\n")
    out = tmp_path / "b"
    assert main(["train", "--data", str(tiny_synth), "--model", "ae", "--preset", "tiny", "--seed", "5",
                 "--config", str(cfg), "--out", str(out / "runs" / "ae-s5"), "--quiet"]) == 0
    before = (out / "runs" / "ae-s5" / "summary.json").stat().st_mtime_ns
    from wdmt.benchmark import plan

    assert [e["state"] for e in plan("ablation", out, preset="tiny", models=["ae"], config=cfg)] == [
        "trained, to evaluate"]
    assert plan("ablation", out, preset="tiny", models=["ae"])[0]["state"].startswith("refused")
    benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, maps=False, config=cfg)
    assert (out / "runs" / "ae-s5" / "summary.json").stat().st_mtime_ns == before
    run_cfg = json.loads((out / "runs" / "ae-s5" / "config.json").read_text())
    assert run_cfg["preprocess"]["surround"] == "fill" and run_cfg["fov_loss"] is True
    assert "fill.yaml" in (out / "report-ablation.html").read_text()


@pytest.mark.slow
def test_kept_epochs_add_the_papers_epoch_choice_beside_ours(tiny_synth, tmp_path):
    out = tmp_path / "b"
    benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, maps=False, epochs=2)
    before = (out / "runs" / "ae-s5" / "summary.json").stat().st_mtime_ns
    r = benchmark(
        "ablation",
        tiny_synth,
        out,
        preset="tiny",
        models=["ae", "wdmt"],
        progress=False,
        maps=False,
        epochs=2,
        keep_epochs=1,
    )
    # the run trained without kept epochs is reused as it is (keeping changes no arithmetic), not refused or retrained
    assert (out / "runs" / "ae-s5" / "summary.json").stat().st_mtime_ns == before
    assert not (out / "runs" / "ae-s5" / "eval-test-paper").exists()
    chosen = json.loads((out / "runs" / "wdmt-s5" / "eval-test-paper" / "metrics.json").read_text())
    res = {x["model"]: x for x in csv.DictReader(open(out / "results-ablation.csv"))}
    assert int(res["wdmt"]["epoch_paper_choice"]) == chosen["epoch_choice"]["epoch"] in (1, 2)
    assert float(res["wdmt"]["auc_paper_choice"]) == pytest.approx(chosen["pixel"]["auroc"])
    rows = {x["method"]: x for x in r["tables"]["ablation"]}
    assert rows["ae"]["AUC, paper's epoch choice"] == "-" and rows["ae"]["epoch, ours / paper's"].endswith("/-")
    assert rows["wdmt"]["AUC, paper's epoch choice"] == f"{chosen['pixel']['auroc']:.3f}"
    assert rows["wdmt"]["epoch, ours / paper's"] == f"{res['wdmt']['epoch']}/{chosen['epoch_choice']['epoch']}"
    assert "AUC, paper's epoch choice" in (out / "table-ablation.md").read_text()


def test_seam_free_tiling_is_the_default_and_the_papers_grid_stays_by_name():
    from wdmt.benchmark.runner import EVALUATIONS
    from wdmt.config import resolve_config

    assert resolve_config("cpu", model="wdmt").eval.tiling == "overlap"
    assert resolve_config("paper", model="wdmt").eval.tiling == "grid"
    # the tables mean the same for runs of either default: every evaluation names its tiling
    assert all("tiling" in changes for _, changes, _ in EVALUATIONS.values())
    assert EVALUATIONS["eval-test"][1]["tiling"] == "grid"


@pytest.mark.slow
def test_jobs_train_runs_side_by_side_with_the_same_numbers(tiny_synth, tmp_path, capsys):
    import torch

    from wdmt.benchmark.parallel import threads_per_job
    from wdmt.benchmark.runner import train_run
    from wdmt.benchmark.suites import suite_settings

    out = tmp_path / "bench"
    r = benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae", "wdmt"], progress=True, maps=False, jobs=2)
    assert [row["method"] for row in r["tables"]["ablation"]] == ["ae", "wdmt"]
    assert "2 at a time" in capsys.readouterr().out
    for run in ("ae-s5", "wdmt-s5"):
        env = json.loads((out / "runs" / run / "env.json").read_text())
        assert env["threads"] == threads_per_job(2)  # trained in a worker process with its share of the cores
    # A run trained in a worker is the run this process trains with the same threads: same losses, epoch by epoch.
    s = suite_settings("ablation", ["wdmt"], preset="tiny")["ablation"][0]
    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_job(2))
    try:
        train_run(s, 5, tiny_synth, "tiny", tmp_path / "here", "auto", False)
    finally:
        torch.set_num_threads(before)

    def losses(p):
        return [{k: v for k, v in row.items() if k not in ("seconds", "tiles_per_s")}
                for row in csv.DictReader(open(p / "log.csv"))]

    assert losses(tmp_path / "here" / "runs" / "wdmt-s5") == losses(out / "runs" / "wdmt-s5")


@pytest.mark.slow
def test_a_later_seed_joins_a_benchmark_whose_runs_are_gone(tiny_synth, tmp_path):
    """The adding-a-seed study's script: a benchmark made before archives kept only results-SUITE.csv; a seed trained
    later elsewhere joins its rows, the earlier rows read back unchanged, and the table is rebuilt over both seeds."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from wdmt.benchmark import Setting
    from wdmt.benchmark.runner import run_one

    out, later = tmp_path / "bench", tmp_path / "later"
    benchmark("ablation", tiny_synth, out, preset="tiny", models=["ae"], progress=False, maps=False)
    first = list(csv.DictReader(open(out / "results-ablation.csv")))
    shutil.rmtree(out / "runs")  # the machine that trained them is gone
    run_one(Setting("ae"), 6, tiny_synth, "tiny", later, "auto", False)
    script = Path(__file__).resolve().parents[1] / "studies" / "2026-12-adding-a-seed" / "benchmark_add_runs.py"
    cmd = [sys.executable, str(script), "--out", str(out), "--suite", "ablation", "--preset", "tiny", "--runs"]
    subprocess.run(cmd + [str(later / "runs" / "ae-s6")], check=True, capture_output=True)
    rows = list(csv.DictReader(open(out / "results-ablation.csv")))
    assert [r["seed"] for r in rows] == ["5", "6"] and rows[0] == first[0]
    table = list(csv.DictReader(open(out / "table-ablation.csv")))
    aucs = [float(r["auc"]) for r in rows]
    assert table[0]["seeds"] == "2" and table[0]["AUC"].startswith(f"{sum(aucs) / 2:.3f}")
    assert "benchmark_add_runs.py" in (out / "report-ablation.html").read_text()
    bad = subprocess.run(cmd + [str(later / "runs")], capture_output=True, text=True)  # not a run
    assert bad.returncode != 0 and "not finished" in bad.stderr
