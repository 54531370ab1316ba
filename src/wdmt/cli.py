"""The ``wdmt`` command: every verb is a thin wrapper over a plain function.

Errors in user input print one line (``wdmt: error: <file>: <reason>``) and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from wdmt.errors import WdmtError


def _cmd_synth(a: argparse.Namespace) -> int:
    from wdmt.synth import generate, montage

    if a.out is None and a.montage is None:
        raise WdmtError(None, "synth: give --out DIR, --montage FILE or both")
    if a.out is not None:
        out = generate(a.out, a.normal, a.abnormal, size=a.size, seed=a.seed, progress=not a.quiet)
        print(f"wrote {a.normal} normal and {a.abnormal} abnormal images to {out}")
    if a.montage is not None:
        print(f"wrote {montage(a.montage, size=min(a.size, 320), seed=a.seed)}")
    return 0


def _cmd_data_check(a: argparse.Namespace) -> int:
    from wdmt.check import check_dataset, format_report

    report = check_dataset(a.dir, format=a.format, seed=a.seed, progress=not a.quiet and not a.json)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    for p in report["problems"]:
        print(f"wdmt: problem: {p}", file=sys.stderr)
    return 0 if report["usable"] else 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wdmt", description="Unsupervised lesion detection in fundus photographs.")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="verb", required=True)

    s = sub.add_parser("synth", help="write a synthetic fundus dataset (folder layout)")
    s.add_argument("--out", help="dataset folder to create")
    s.add_argument("--normal", type=int, default=40)
    s.add_argument("--abnormal", type=int, default=10)
    s.add_argument("--size", type=int, default=768)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--montage", help="also write a grid picture of synthetic images to this PNG")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_synth)

    d = sub.add_parser("data", help="inspect datasets")
    dsub = d.add_subparsers(dest="data_verb", required=True)
    c = dsub.add_parser("check", help="counts, sizes, mask coverage and problems of a dataset")
    c.add_argument("dir")
    c.add_argument("--format", default="auto", choices=["auto", "folder", "idrid", "adam"])
    c.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split of normal images")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_cmd_data_check)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WdmtError as e:
        if args.debug:
            raise
        print(f"wdmt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wdmt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
