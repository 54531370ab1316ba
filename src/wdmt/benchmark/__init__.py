"""``wdmt benchmark``: the paper's three tables on any dataset, one run per (model, setting, seed), resumable.

Writes to OUT: ``runs/<run>/`` (each a normal run directory with its evaluations) and, per suite,
``results-<suite>.csv`` (one row per run), ``table-<suite>.md`` / ``.csv`` laid out like the paper's tables,
``roc-<suite>.png``, ``bars-<suite>.png``, ``curves-<suite>.png``, ``maps-<suite>.png`` and one self-contained
``report-<suite>.html``. A killed benchmark, started again, skips finished runs and resumes a half-trained one from
its last epoch.

The package's layers: :mod:`~wdmt.benchmark.suites` (what to run, and the paper's numbers),
:mod:`~wdmt.benchmark.runner` (training and evaluating one run, :class:`RunResult`), :mod:`~wdmt.benchmark.tables`
(statistics over seeds, column definitions) and :mod:`~wdmt.benchmark.report` (figures and the HTML page).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from wdmt.benchmark.parallel import train_in_parallel
from wdmt.benchmark.report import figures, html_report
from wdmt.benchmark.runner import RunResult, finished, plan, run_one
from wdmt.benchmark.suites import (
    PAPER,
    SUITES,
    Config,
    PaperResult,
    Setting,
    normalise,
    reference_setting,
    runs_of,
    seed_list,
    suite_settings,
)
from wdmt.benchmark.tables import aggregate, recipe, write_results, write_table
from wdmt.rundir import RunDir


def benchmark(suite: str, data: str | Path, out: str | Path, *, preset: str = "cpu", seeds: int = 1, fmt: str = "auto",
              models: list[str] | None = None, progress: bool = True, maps: bool = True,
              epochs: int | None = None, report_only: bool = False, keep_epochs: int = 0,
              config: Config = None, archive: str | Path | None = None, jobs: int = 1) -> dict[str, Any]:
    """Run a suite (see the module docstring); returns the aggregated rows per suite and the report's path.
    ``epochs`` overrides the preset's for every run (a smaller budget, e.g. on synthetic data); decay rates follow it.
    ``report_only`` trains and evaluates nothing: the tables and report cover the finished runs and name the missing
    ones, so a long benchmark can be read while it runs. ``keep_epochs`` makes new runs keep every k-th epoch's weights,
    and every run that kept them is also evaluated under the paper's epoch choice, reported in columns of its own.
    ``config`` is a file of config keys applied to every run after the preset, as ``wdmt train --config``.
    ``archive`` receives a copy of every finished run without its weights (:meth:`RunDir.copy_results`), into
    ``archive/runs/``: a benchmark longer than one machine's life is rebuilt from it with ``--report-only --out``.
    ``jobs`` > 1 trains that many runs at once, each in its own process (:mod:`wdmt.benchmark.parallel`), before
    the evaluations."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suites = suite_settings(suite, models, preset=preset, epochs=epochs, config=config)
    if jobs > 1 and not report_only:
        train_in_parallel(_to_train(suites, seeds, preset, out, config), jobs, data, preset, out, fmt, epochs,
                          keep_epochs, config, progress)
    done: dict[str, RunResult] = {}
    missing: list[str] = []
    all_rows: list[RunResult] = []
    sections = []
    for name, settings in suites.items():
        rows = []
        for s, seed, key in runs_of(settings, seeds, preset, config):
            if report_only and key not in done and not finished(RunDir(out / "runs" / key)):
                missing.append(key)
                continue
            if key not in done:
                done[key] = run_one(s, seed, data, preset, out, fmt, progress, epochs, keep_epochs, config)
            rows.append(replace(done[key], row=s.label))
        all_rows += rows
        table = aggregate(rows, settings, reference_setting(settings, preset, config))
        write_table(out, name, table)
        sections.append((f"{name} ({recipe(preset, config)}, {len(seed_list(seeds))} seed(s))", table,
                         figures(out, name, rows, settings, maps, data)))
    write_results(out / f"results-{suite}.csv", all_rows)
    meta: dict[str, Any] = {"data": str(data), "preset": preset, "config": str(config) if config else None,
                            "epochs": epochs, "seeds": seed_list(seeds), "suite": suite}
    if report_only:
        meta["runs not finished (left out)"] = missing
    report = html_report(out, sections, meta)
    if archive is not None and Path(archive).resolve() != out.resolve():  # after the figures: the grid cached its maps
        for key in done:
            RunDir(out / "runs" / key).copy_results(Path(archive) / "runs" / key)
    return {"tables": {name: aggregate(all_rows, st, reference_setting(st, preset, config))
                       for name, st in suites.items()},
            "report": str(report)}


def _to_train(suites: dict[str, list[Setting]], seeds: int, preset: str, out: Path, config: Config
              ) -> list[tuple[Setting, int]]:
    """Each run not finished training, once (rows sharing a run share it)."""
    todo: dict[str, tuple[Setting, int]] = {}
    for settings in suites.values():
        for s, seed, key in runs_of(settings, seeds, preset, config):
            if key not in todo and not RunDir(out / "runs" / key).finished_training:
                todo[key] = (s, seed)
    return list(todo.values())


__all__ = ["PAPER", "SUITES", "PaperResult", "RunResult", "Setting", "benchmark", "normalise", "plan",
           "suite_settings"]
