"""The command line: options defined once, choices in step with the code that checks them, causes kept for --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wdmt.cli import BENCHMARK_SUITES, build_parser, main


def _subparsers(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_shared_options_reach_every_verb_that_needs_them():
    from wdmt.datasets import FORMATS

    verbs = _subparsers(build_parser())
    for verb in ("train", "test", "benchmark"):
        fmt = next(a for a in verbs[verb]._actions if "--format" in a.option_strings)
        assert list(fmt.choices) == ["auto", *FORMATS], verb
    for verb in ("synth", "train", "test", "predict", "benchmark", "demo"):
        assert any("--quiet" in a.option_strings for a in verbs[verb]._actions), verb


def test_benchmark_suites_are_the_benchmarks_own():
    from wdmt.benchmark import SUITES

    assert BENCHMARK_SUITES == (*SUITES, "all")


def test_parsing_imports_no_torch():
    """``wdmt predict --onnx`` must work where torch is absent: building the parser may not import it."""
    code = "import sys; from wdmt.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_debug_shows_the_cause_and_plain_runs_print_one_line(tmp_path, capsys):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"not a jpeg at all")
    run = tmp_path / "run"
    assert main(["predict", "--run", str(run), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run) in err[0]
    from wdmt import WdmtError
    from wdmt.io import read_image

    with pytest.raises(WdmtError) as info:
        read_image(bad)
    assert info.value.__cause__ is not None  # the decoder's own error travels with ours, for --debug


def _verbs(parser, prefix="wdmt"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, verb in action.choices.items():
                yield f"{prefix} {name}", verb
                yield from _verbs(verb, f"{prefix} {name}")


def test_every_option_has_help_every_verb_an_example_and_results_have_json():
    parser = build_parser()
    import argparse

    missing = [(verb, a.option_strings or a.dest) for verb, p in _verbs(parser) for a in p._actions
               if not a.help and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    assert not missing, missing
    verbs = dict(_verbs(parser))
    leaves = {k: v for k, v in verbs.items() if not any(o.startswith(k + " ") for o in verbs)}
    assert all("example:" in (v.epilog or "") for v in leaves.values()), [k for k, v in leaves.items() if not v.epilog]
    for verb in ("synth", "data check", "train", "test", "tune", "fuse", "export", "models", "demo", "benchmark"):
        assert any("--json" in a.option_strings for a in verbs[f"wdmt {verb}"]._actions), verb
    assert "(default: 2048)" in verbs["wdmt predict"].format_help()  # defaults are shown


def test_version_and_one_meaning_per_flag(capsys):
    import wdmt

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"wdmt {wdmt.__version__}"
    formats = [v for v, p in _verbs(build_parser()) for a in p._actions if "--format" in a.option_strings]
    assert "wdmt export" not in formats  # --format is a dataset layout wherever it appears
