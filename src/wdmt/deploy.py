"""Score photographs with an exported ONNX model and no torch: numpy, Pillow, SciPy and an ONNX runtime only.

``wdmt predict --onnx model.onnx photo.jpg --out DIR [--backend onnxruntime|openvino]`` runs this path.
Preprocessing, tiling, scoring and the overlay are the same functions the torch path uses (they import no torch),
so every backend gives the same numbers up to float rounding. The backends run the same exported graph:

* ``onnxruntime`` (``pip install onnxruntime``): the default;
* ``openvino`` (``pip install openvino onnx``): Intel's runtime reads the ONNX file and compiles it for the CPU,
  fusing convolutions with their activations; float32 inference precision is asked for explicitly (on CPUs with
  AMX or AVX512-BF16 its default would be bfloat16).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wdmt.config import EvalConfig
from wdmt.errors import WdmtError
from wdmt.preprocess import Prepared, PreprocessConfig, prepare, tiling_functions
from wdmt.scoring import postprocess_map

METADATA_KEY = "wdmt"


BACKENDS = ("onnxruntime", "openvino")


class _OpenVinoSession:
    """The one call of onnxruntime's session this module makes (``run(names, feeds)``), on an OpenVINO model."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        res = self.request.infer(feeds)
        return [np.asarray(res[self.compiled.output(n)]) for n in names]


def _onnxruntime_session(path: Path) -> tuple[Any, str | None]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise WdmtError(None, "ONNX prediction needs onnxruntime: pip install onnxruntime") from e
    try:
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")  # see wdmt.runtime: subnormals are slow
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for corrupt files
        raise WdmtError(path, f"not a loadable ONNX model ({str(e).splitlines()[0][:160]})") from e
    return sess, sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)


def _openvino_session(path: Path, precision: str = "f32") -> tuple[Any, str | None]:
    try:
        import onnx
        import openvino as ov
    except ImportError as e:
        raise WdmtError(None, "the openvino backend needs openvino and onnx: pip install openvino onnx") from e
    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    except Exception as e:  # noqa: BLE001 - protobuf and OpenVINO errors alike: one line
        raise WdmtError(path, f"not a loadable ONNX model ({str(e).splitlines()[0][:160]})") from e
    return _OpenVinoSession(compiled), meta.get(METADATA_KEY)


@dataclass
class OnnxDetector:
    """An exported model plus the settings that travelled with it."""

    session: Any
    preprocess: PreprocessConfig
    eval: EvalConfig
    thresholds: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, backend: str = "onnxruntime", openvino_precision: str = "f32") -> OnnxDetector:
        """``openvino_precision``: OpenVINO's inference precision hint (``f32``, the default here, or ``bf16``)."""
        if backend not in BACKENDS:
            raise WdmtError(None, f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        path = Path(path)
        if not path.is_file():
            raise WdmtError(path, "ONNX model not found")
        if backend == "onnxruntime":
            sess, meta = _onnxruntime_session(path)
        else:
            sess, meta = _openvino_session(path, openvino_precision)
        if meta is None:
            raise WdmtError(path, "ONNX model has no wdmt metadata (export it with 'wdmt export')")
        m = json.loads(meta)
        return cls(sess, PreprocessConfig(**m["preprocess"]), EvalConfig(**m["eval"]), m["thresholds"])

    def anomaly_map(self, rgb: np.ndarray, source: str | None = None) -> tuple[np.ndarray, Prepared]:
        """(map at S x S after post-processing, the prepared picture: its FOV and geometry) for one RGB photograph."""
        p = prepare(rgb, self.preprocess, source=source)
        return self.map_of(p), p

    def map_of(self, p: Prepared) -> np.ndarray:
        """The map after post-processing, at S x S, of a picture already prepared under :attr:`preprocess`."""
        img = p.image[None] if p.image.ndim == 2 else p.image.transpose(2, 0, 1)
        cut, join = tiling_functions(self.eval.tiling)
        tiles = cut(img.astype(np.float32) / 255.0, self.preprocess.tiles)
        maps = self.session.run(["anomaly_map"], {"tiles": np.ascontiguousarray(tiles)})[0]
        raw = join(maps, self.preprocess.tiles)[0]
        return postprocess_map(raw, p.fov, self.eval)


def predict_onnx(model: str | Path, images: list[str | Path], out: str | Path,
                 backend: str = "onnxruntime", **archive: Any) -> list[dict[str, Any]]:
    """Score photographs with an exported model: overlay PNGs plus predictions.jsonl / predictions.csv in ``out``,
    streamed and resumable as :func:`wdmt.archive.score_archive` (whose options ``archive`` takes)."""
    from wdmt.archive import EngineSpec, score_archive

    return score_archive(EngineSpec(onnx=str(model), backend=backend), images, out, **archive)["rows"]
