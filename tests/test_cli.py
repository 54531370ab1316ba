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
