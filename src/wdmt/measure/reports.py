"""The command line of the per-run report scripts (benchmarks/lesion_kinds.py and the studies' scripts):
``--runs RUN [RUN ...]``, ``--save CSV``; rows from each run, written atomically and printed as a markdown table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from wdmt.atomic import write_csv_atomic
from wdmt.benchmark.tables import markdown


def runs_parser(description: str) -> argparse.ArgumentParser:
    """``--runs`` and ``--save``; a script with options of its own adds them here and calls :func:`report_runs`
    with the parsed arguments."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, type=Path)
    ap.add_argument("--save", type=Path)
    return ap


def report_runs(description: str, run_rows: Callable[[Path], list[dict]],
                args: argparse.Namespace | None = None) -> None:
    a = args if args is not None else runs_parser(description).parse_args()
    rows = [row for run in a.runs for row in run_rows(run)]
    if a.save:
        write_csv_atomic(a.save, rows)
    print(markdown(rows), end="")
