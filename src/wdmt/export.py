"""``wdmt export``: a run's model as ONNX (dynamic batch, fixed tile size) with its preprocessing and thresholds.

The graph maps tiles (B, C, t, t) in [0, 1] to (anomaly map (B, 1, t, t), reconstruction). Everything a deployment
needs besides the graph travels in the file's ``metadata_props`` under the key ``wdmt`` (JSON): model name,
preprocessing, tiling, evaluation settings and the strict-protocol thresholds. Parity with the torch model is
checked at export time when onnxruntime is installed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wdmt import __version__
from wdmt.atomic import atomic_path
from wdmt.errors import WdmtError
from wdmt.preprocess import resolve_tiling
from wdmt.rundir import RunDir

METADATA_KEY = "wdmt"
OPSET = 17


class _Maps(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.maps(tiles)


def export_onnx(run: str | Path, out: str | Path, which: str = "best", check: bool = True,
                tuned: bool = False) -> dict[str, Any]:
    """Write ``out`` (.onnx); returns the metadata and, with ``check``, the max |torch - onnxruntime| of the maps.
    ``tuned``: the evaluation and thresholds ``wdmt tune`` chose travel with the graph instead of the run's own."""
    try:
        import onnx  # noqa: F401 - refuse before any calibration runs, not after
    except ImportError as e:
        raise WdmtError(None, "ONNX export needs the onnx package: pip install 'wdmt[onnx]'") from e
    from wdmt.calibration import decision_settings
    from wdmt.tune import tuned_eval

    run, out = Path(run), Path(out)
    model, cfg = RunDir(run).load_model(which)
    if not model.exportable:
        raise WdmtError(run, f"model {cfg.model} scores by optimisation at test time and cannot be exported to ONNX")
    ev = tuned_eval(run)[0] if tuned else cfg.eval
    if ev.score in ("model", "gatingano"):  # refused before any calibration runs
        raise WdmtError(run, f"image score {ev.score!r} needs outputs the ONNX graph does not carry (it exports "
                        "the map and the reconstruction); use topk or max")
    ev, cal = decision_settings(run, ev, which, tuned)
    # the graph takes what the run's tiling feeds the model: tiles, or the whole picture (tiling resolved here, so
    # the deployment never needs to know the model)
    ev = replace(ev, tiling=resolve_tiling(ev.tiling, model.info.input_size))
    t = cfg.preprocess.size if ev.tiling == "whole" else cfg.preprocess.tile_size
    example = torch.rand(2, cfg.preprocess.in_channels, t, t, generator=torch.Generator().manual_seed(0))
    meta = {
        "wdmt_version": __version__, "model": cfg.model, "run": str(run), "checkpoint": which,
        "preprocess": asdict(cfg.preprocess), "eval": asdict(ev), "tile_size": t,
        "thresholds": {"pixel_threshold": cal["pixel_threshold"], "image_threshold": cal["image_threshold"],
                       "rule": cal.get("rule")},
    }
    write_onnx(model, example, out, meta)
    result: dict[str, Any] = {"path": str(out), "metadata": meta}
    if check:
        result["max_abs_diff"] = parity(model, out, cfg.preprocess.in_channels, t)
    return result


def write_onnx(model: nn.Module, example: torch.Tensor, out: str | Path, meta: dict[str, Any]) -> None:
    """The graph ``tiles -> (anomaly_map, recon)`` of ``model.maps`` (batch left free) with ``meta`` as the wdmt
    metadata ``wdmt.deploy`` reads, written atomically."""
    import onnx

    with atomic_path(Path(out)) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape checks that are constant for a fixed tile size
            torch.onnx.export(_Maps(model).eval(), (example,), str(tmp), input_names=["tiles"],
                              output_names=["anomaly_map", "recon"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"tiles": {0: "batch"}, "anomaly_map": {0: "batch"}, "recon": {0: "batch"}})
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))


def parity(model: nn.Module, path: Path, channels: int, t: int, batch: int = 3) -> float | None:
    """Max |map_torch - map_onnxruntime| on random tiles of a batch size the export never saw."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = torch.rand(batch, channels, t, t, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model.maps(x)[0].numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["anomaly_map"], {"tiles": x.numpy()})[0]
    return float(np.abs(ref - got).max())


class RuntimeModel:
    """A run's model exported to ONNX and run by onnxruntime or OpenVINO, behind the torch model's ``predict``, so
    that ``wdmt test --backend`` scores the runtime's maps with the same metrics as torch's. The graph carries the
    map and the reconstruction only: the per-tile score is the map's top 1 %, not the model's own score."""

    def __init__(self, det: Any, info: Any) -> None:
        from dataclasses import replace as _replace

        self.det = det
        self.info = _replace(info, own_score="not carried by an exported graph: the mean of the top 1 % of the map")

    def to(self, *args: Any, **kwargs: Any) -> RuntimeModel:
        return self

    def eval(self) -> RuntimeModel:
        return self

    def predict(self, x: torch.Tensor, with_latent: bool = False) -> Any:
        from wdmt.models.base import ModelOutput, topk_mean

        m, r = self.det.session.run(["anomaly_map", "recon"], {"tiles": np.ascontiguousarray(x.float().cpu().numpy())})
        amap = torch.from_numpy(np.asarray(m))
        return ModelOutput(recon=torch.from_numpy(np.asarray(r)), anomaly_map=amap, score=topk_mean(amap))


def runtime_model(run: str | Path, which: str, backend: str, ev: Any) -> RuntimeModel:
    """The run's model as ``backend`` runs it: exported to a temporary file, loaded, the file removed. ``ev`` must
    tile as the run does (the graph's input size is fixed at export)."""
    import tempfile

    from wdmt.deploy import OnnxDetector
    from wdmt.models import MODELS

    cfg = RunDir(run).config()
    info = MODELS[cfg.model].info
    if resolve_tiling(ev.tiling, info.input_size) != resolve_tiling(cfg.eval.tiling, info.input_size):
        raise WdmtError(run, f"--backend {backend} runs the run's own tiling ({cfg.eval.tiling}), not {ev.tiling}")
    with tempfile.TemporaryDirectory() as d:
        export_onnx(run, Path(d) / "model.onnx", which, check=False)
        det = OnnxDetector.load(Path(d) / "model.onnx", backend)
    return RuntimeModel(det, info)
