"""Add finished runs to a benchmark whose other runs are no longer on disk, and rebuild its table and report.

    python studies/2026-12-adding-a-seed/benchmark_add_runs.py --out docs/benchmarks/idrid-cpu --suite beyond \
        --preset cpu \
        --config configs/black-surround.yaml --runs RUN [RUN ...]

``wdmt benchmark --report-only`` rebuilds a table from the runs under ``OUT/runs`` (or an ``--archive`` of them).
A benchmark made before archives existed keeps only ``results-SUITE.csv``; this reads its rows from there, adds each
run (evaluated as ``wdmt benchmark`` evaluates, e.g. by :func:`wdmt.benchmark.runner.run_one` with another ``--out``),
replacing a row of the same setting and seed, and rewrites ``results-SUITE.csv``, ``table-SUITE.{md,csv}``, the bar
chart (every seed) and the report. The ROC, curves and maps figures show each row's first seed: they are kept as
they are, and the report says so. A run is matched to its row by name, as the benchmark names runs, so a run of
another preset or config is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from wdmt.benchmark.report import bars_figure, html_report
from wdmt.benchmark.runner import finished, read_result
from wdmt.benchmark.suites import Setting, normalise, reference_setting, suite_settings
from wdmt.benchmark.tables import aggregate, markdown, read_results, recipe, write_results, write_table
from wdmt.rundir import RunDir

KEPT_FIGURES = ("roc", "curves", "maps")  # first seed of each row: unchanged by a later seed


def setting_of(run: Path, settings: list[Setting], preset: str, config: str | None) -> tuple[Setting, int]:
    rd = RunDir(run)
    if not finished(rd):
        sys.exit(f"{run}: not finished (trained and evaluated as the benchmark evaluates)")
    seed = rd.config().seed
    for s in settings:
        if normalise(s, preset, config).run_name(seed) == run.name:
            return s, seed
    sys.exit(f"{run}: no row of this suite, preset and config names its runs so")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="the benchmark's folder (results-SUITE.csv)")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--config", default=None)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    a = ap.parse_args()
    settings = suite_settings(a.suite, preset=a.preset, config=a.config)[a.suite]
    rows = read_results(a.out / f"results-{a.suite}.csv")
    added = []
    for run in a.runs:
        s, seed = setting_of(run, settings, a.preset, a.config)
        rows = [r for r in rows if (r.row, r.seed) != (s.label, seed)]
        added.append(read_result(RunDir(run), s, seed))
    order = {s.label: i for i, s in enumerate(settings)}
    rows = sorted(rows + added, key=lambda r: (order[r.row], r.seed))
    table = aggregate(rows, settings, reference_setting(settings, a.preset, a.config))
    write_results(a.out / f"results-{a.suite}.csv", rows)
    write_table(a.out, a.suite, table)
    pics = [bars_figure(a.out, a.suite, rows, settings)]
    pics += [p for k in KEPT_FIGURES if (p := a.out / f"{k}-{a.suite}.png").exists()]
    seeds = sorted({r.seed for r in rows})
    meta = {"preset": a.preset, "config": a.config, "seeds": seeds, "suite": a.suite,
            "rebuilt by": "studies/2026-12-adding-a-seed/benchmark_add_runs.py, from results-" + a.suite
                          + ".csv and the runs " + ", ".join(Path(r.run).name for r in added),
            "figures": "the bars cover every seed; ROC, curves and maps show each row's first seed, as first made"}
    html_report(a.out, [(f"{a.suite} ({recipe(a.preset, a.config)}, seeds {seeds})", table, pics)], meta)
    print(json.dumps({"rows": len(rows), "added": [asdict(r) | {"roc": None} for r in added]}, indent=1)[:2000])
    print(markdown(table))


if __name__ == "__main__":
    main()
