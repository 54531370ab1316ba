"""The models ``wdmt predict`` scores with: a trained run under torch, or an exported ONNX graph.

Both take prepared pictures (:class:`wdmt.preprocess.Prepared`) and give back the evaluated map at S x S and the
image score, so the streaming loop, the Ray actors and ``wdmt serve`` never ask which one they hold. An
:class:`EngineSpec` is what travels to a Ray worker: paths and settings, from which the worker loads its own copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from wdmt.config import EvalConfig
from wdmt.errors import WdmtError
from wdmt.preprocess import Prepared, PreprocessConfig

DEVICES = ("auto", "cpu", "cuda")


class Engine(Protocol):
    preprocess: PreprocessConfig
    ev: EvalConfig
    thresholds: dict[str, Any]
    photos_per_batch: int

    source: Path  # the run directory or model file, recorded beside the identity

    def identity(self) -> dict[str, Any]:
        """Everything that decides the scores (not where the model lies): a rerun into the same output must match
        it to resume."""

    def score(self, pictures: list[Prepared]) -> list[tuple[np.ndarray, float]]:
        """(map after post-processing at S x S, image score) for each prepared picture."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine, in plain values (picklable). ``run`` None with ``onnx`` None: the shipped model."""

    run: str | None = None
    onnx: str | None = None
    backend: str = "onnxruntime"
    checkpoint: str = "best"
    tuned: bool = False
    eval: dict[str, Any] | None = None  # EvalConfig fields to change (a run's own evaluation otherwise)
    device: str = "auto"
    photos_per_batch: int | None = None  # None: 1 on a CPU, 8 on a GPU

    def build(self) -> Engine:
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise WdmtError(None, f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.onnx is not None:
            if self.device.startswith("cuda"):
                raise WdmtError(None, "--device cuda scores a --run model; an --onnx model runs on the CPU here")
            return OnnxEngine(self)
        return TorchEngine(self)


def _torch_device(name: str) -> Any:
    import torch

    from wdmt.runtime import pick_device

    dev = pick_device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WdmtError(None, "--device cuda: this torch sees no CUDA GPU (torch.cuda.is_available() is False)")
    return dev


class TorchEngine:
    """A run directory's model (default: the shipped one), its evaluation and its decision thresholds."""

    def __init__(self, spec: EngineSpec) -> None:
        from wdmt.calibration import decision_settings
        from wdmt.rundir import RunDir, checkpoint_file
        from wdmt.runtime import to_device
        from wdmt.shipped import shipped_run

        self.run = Path(spec.run) if spec.run is not None else shipped_run()
        self.source = self.run.resolve()
        rd = RunDir(self.run)
        self.model, self.cfg = rd.load_model(spec.checkpoint)
        ev = replace(self.cfg.eval, **(spec.eval or {}))
        self.ev, self.thresholds = decision_settings(self.run, ev, spec.checkpoint, spec.tuned)
        self.device = _torch_device(spec.device)
        self.photos_per_batch = spec.photos_per_batch or (8 if self.device.type == "cuda" else 1)
        to_device(self.model, self.device, self.cfg.channels_last)
        self.preprocess: PreprocessConfig = self.cfg.preprocess
        self.weights = checkpoint_file(rd.checkpoint_path(spec.checkpoint))
        self.spec = spec

    def identity(self) -> dict[str, Any]:
        return {"engine": "torch", "model": self.cfg.model,
                "checkpoint": self.spec.checkpoint, "weights_sha256": sha256(self.weights),
                "tuned": self.spec.tuned, "eval": asdict(self.ev), "preprocess": asdict(self.preprocess),
                "thresholds": _thresholds(self.thresholds)}

    def score(self, pictures: list[Prepared]) -> list[tuple[np.ndarray, float]]:
        from wdmt.datasets import Sample
        from wdmt.evaluate import infer
        from wdmt.pipeline import PreparedSample

        items = [PreparedSample(Sample(id=str(i), image=Path(str(i)), label=-1), p) for i, p in enumerate(pictures)]
        results = infer(self.model, items, self.cfg, self.ev, self.device, photos=self.photos_per_batch)
        return [(r.map(self.ev), r.score(self.ev)) for r in results]


class OnnxEngine:
    """An exported model (``wdmt export``) under onnxruntime or OpenVINO: no torch on this path."""

    def __init__(self, spec: EngineSpec) -> None:
        from wdmt.deploy import OnnxDetector

        self.det = OnnxDetector.load(spec.onnx, spec.backend)
        self.path = Path(spec.onnx)
        self.source = self.path.resolve()
        self.preprocess = self.det.preprocess
        self.thresholds = self.det.thresholds
        self.ev = self.det.eval
        self.photos_per_batch = 1
        self.spec = spec

    def identity(self) -> dict[str, Any]:
        return {"engine": "onnx", "model_sha256": sha256(self.path),
                "backend": self.spec.backend, "eval": asdict(self.det.eval), "preprocess": asdict(self.preprocess),
                "thresholds": _thresholds(self.thresholds)}

    def score(self, pictures: list[Prepared]) -> list[tuple[np.ndarray, float]]:
        from wdmt.scoring import image_score

        out = []
        for p in pictures:
            amap = self.det.map_of(p)
            out.append((amap, image_score(amap, p.fov, self.det.eval)))
        return out


def _thresholds(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t.get(k) for k in ("pixel_threshold", "image_threshold", "rule")}
