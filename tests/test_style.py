"""House rules that a reviewer should not have to check by eye."""

from __future__ import annotations

import ast
import shutil
import subprocess

import pytest

from tests.conftest import REPO

MAX_FUNCTION_LINES = 60


def test_no_function_in_src_or_benchmarks_is_longer_than_a_screen():
    long = []
    for path in sorted([*(REPO / "src").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "split these (timm's train.py is the model): " + "; ".join(long)


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed (pip install -e '.[test]' brings it)")
    r = subprocess.run([ruff, "check", "--no-cache", str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_no_script_edits_sys_path():
    """Scripts import the installed package; shared helpers live in it (wdmt.measure), never in each other."""
    hits = [str(p.relative_to(REPO)) for p in [*(REPO / "benchmarks").glob("*.py"), *(REPO / "studies").rglob("*.py"),
                                               *(REPO / "scripts").glob("*.py")]
            if "sys.path.insert" in p.read_text(encoding="utf-8")]
    assert not hits, hits
