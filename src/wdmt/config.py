"""Run configuration: dataclasses that mirror the constructors, presets, and strict loading from YAML/JSON.

A config file is read with ``yaml.safe_load`` and validated: an unknown key or a value of the wrong type is a
one-line error naming the file and the key, never a silent default.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from wdmt.errors import WdmtError
from wdmt.preprocess import PreprocessConfig


@dataclass(frozen=True)
class EvalConfig:
    """How maps become scores and decisions.

    Args:
        fov: ``none`` (every pixel, as the paper; the ``paper`` preset's), ``zero`` (map set to 0 outside the field
            of view, all pixels counted) or ``inside`` (the default: only pixels inside the field of view are
            counted, and the image score comes from them; ``metrics.json`` keeps the all-pixel numbers beside them,
            ``pixel_all_pixels``).
        smooth_sigma: Gaussian smoothing of the stitched map in pixels (0: none, as the paper).
        score: image score: ``topk`` (mean of the top ``topk_fraction`` of the map), ``max``, ``gatingano``
            (sample std over tiles of the bottleneck distance, GatingAno) or ``model`` (the method's own score as its
            paper defines it, e.g. GANomaly's latent distance, per tile, and the highest tile's for the image; see
            ``wdmt models``). ``wdmt test`` reports the ``model`` score beside whichever is chosen here.
        topk_fraction: share of map pixels averaged by ``topk``.
        pixel_quantile: strict protocol: the pixel threshold is this quantile of the validation normals' pixels.
        image_quantile: strict protocol: the image threshold is this quantile of the validation normals' scores.
        tiling: ``grid`` (the n x n tiles of training, as the paper; the ``paper`` preset's), ``overlap`` (the
            default: tiles at half-tile strides, (2n-1)^2 of them, blended with a window falling toward tile edges;
            2.8x the forward passes; the only tiling whose seam ratio met the 5 % target on all four runs measured on
            validation normals, studies/2026-12-fill-and-fov-loss),
            ``whole`` (the whole picture in one pass: fully convolutional models only) or ``auto`` (whole where the
            model allows it, overlap where it has a fixed input size).
        precision: arithmetic of the forward pass at inference: ``fp32`` (exact, the default) or ``bf16`` (autocast;
            faster on CPUs with AMX or AVX512-BF16; its speed and its effect on the metrics are measured in
            docs/performance.md). Part of the evaluation, so thresholds are calibrated under the same arithmetic.
    """

    fov: Literal["none", "zero", "inside"] = "inside"
    smooth_sigma: float = 0.0
    score: Literal["topk", "max", "gatingano", "model"] = "topk"
    topk_fraction: float = 0.01
    pixel_quantile: float = 0.99
    image_quantile: float = 0.95
    tiling: Literal["grid", "overlap", "whole", "auto"] = "overlap"
    precision: Literal["fp32", "bf16"] = "fp32"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (the resolved copy is written to the run directory).

    Args:
        model: registered model name (``wdmt models`` lists them).
        model_options: fields of the model's config dataclass (e.g. ``width``, ``delta``).
        preprocess: see :class:`wdmt.preprocess.PreprocessConfig`.
        epochs, batch_size, lr, weight_decay: Adam(amsgrad) with cosine annealing per iteration.
        tile_repeats: each training tile appears this many times per epoch (official: 3, once per HOG target).
        blur_sigma, blur_kernel: Gaussian blur of the input (official: U[0.1, 5], 5 x 9); blur_sigma (0, 0) = off.
        flips: paired horizontal and vertical flips of each training picture, p = 0.5 each (official); off by
            default for the models that fit statistics per place (``wdmt.models._PER_PLACE_FIT`` says why).
        recon_target: ``augmented`` (the blurred input itself, official) or ``clean`` (the unblurred tile).
        seed: fixes a CPU run bit for bit (official: 5).
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        amp: bfloat16 autocast on CUDA where supported.
        cpu_bf16: bfloat16 autocast on CPU as well (faster training on CPUs with AMX; docs/performance.md).
            Off by default: the presets' results were measured in float32.
        channels_last: NHWC memory format (faster convolutions on CPU and GPU).
        fov_loss: count only pixels inside the field of view in the reconstruction losses (the paper: every pixel,
            the black surround included).
        synth_lesions: paste synthetic lesions into half the training tiles (:mod:`wdmt.lesion_synth`): the
            batch then carries their masks, and the reconstruction target is the tile without them (a
            reconstruction model learns to remove lesions; a segmentation model learns to find them).
        synth_style: how those lesions look (:mod:`wdmt.lesion_synth`): ``generic`` (DRAEM-like, the first style),
            ``fundus`` (red lesions about as dark as a vessel, in fundus colours and shapes) or ``fundus-wide``
            (the same, with red lesions up to a disc diameter and fainter).
        keep_epochs: also keep the weights of every k-th epoch (and the last) as ``checkpoints/epoch-NNN.pt``;
            0 keeps none. Training is unchanged. Only the paper's epoch choice (``wdmt test --checkpoint paper``)
            needs them: it scores every kept epoch on the test set.
        eval: see :class:`EvalConfig`.
    """

    model: str = "wdmt"
    model_options: dict[str, Any] = field(default_factory=dict)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 5e-5
    tile_repeats: int = 3
    blur_sigma: tuple[float, float] = (0.1, 5.0)
    blur_kernel: tuple[int, int] = (5, 9)
    flips: bool = True
    recon_target: Literal["augmented", "clean"] = "augmented"
    seed: int = 5
    device: str = "auto"
    amp: bool = True
    cpu_bf16: bool = False
    channels_last: bool = True
    fov_loss: bool = False
    synth_lesions: bool = False
    synth_style: Literal["generic", "fundus", "fundus-wide"] = "generic"
    keep_epochs: int = 0
    eval: EvalConfig = field(default_factory=EvalConfig)


# The paper preset is the official recipe. The cpu preset keeps the paper's 768 / 256 geometry and is sized to about
# 20 minutes a run on 2 cores (width 16, 40 epochs; docs/performance.md). Its delta is scaled by 200 / 40 so that the
# skips close at 10 % of training, as in the paper (epoch 20 of 200); docs/usage.md, "Presets", says what the
# paper's rate did at 40 epochs.
# The paper's evaluation (method-spec 1.7): its 3 x 3 grid over every pixel, the black surround included. The
# defaults are the honest ones (overlapping tiles, FOV pixels); the paper preset and every paper-protocol column pin
# these.
PAPER_EVAL: dict[str, Any] = {"tiling": "grid", "fov": "none"}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 200, "batch_size": 32, "lr": 1e-4, "tile_repeats": 3, "model_options": {"width": 64},
              "eval": dict(PAPER_EVAL)},
    # The field of view everywhere: the retina extended past its rim before a network sees it and losses over FOV
    # pixels only, so that the rim is no edge to reconstruct (chosen on validation data alone:
    # studies/2026-12-fill-and-fov-loss). The feature models and the lesion segmenter keep the black surround (their
    # ModelInfo.config_defaults). configs/black-surround.yaml gives the black surround to every model, as Tables 1-3
    # of docs/results.md were run.
    "cpu": {
        "epochs": 40,
        "batch_size": 8,
        "lr": 1e-3,
        "tile_repeats": 1,
        "model_options": {"width": 16, "delta": 0.25},
        "preprocess": {"surround": "fill"},
        "fov_loss": True,
    },
    # for tests and the smallest demos: tiny pictures, a few steps
    "tiny": {
        "epochs": 1,
        "batch_size": 4,
        "lr": 1e-3,
        "tile_repeats": 1,
        "model_options": {"width": 4},
        "preprocess": {"size": 96, "tiles": 3},
    },
}


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Validate (and gently convert: list -> tuple, int -> float) one value against a type hint."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise WdmtError(None, f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise WdmtError(None, f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check_type(v, a, where) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise WdmtError(None, f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp in _SCALARS:
        accepts, convert, expected = _SCALARS[tp]
        if not accepts(value):
            raise WdmtError(None, f"{where}: expected {expected}, got {value!r}")
        return convert(value)
    return value


# A scalar type hint: what it accepts (Python's True is an int; a flag is never taken for a number), how the value is
# converted, and what the error message says was expected.
_SCALARS: dict[type, tuple[Callable[[Any], bool], Callable[[Any], Any], str]] = {
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float, "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), lambda v: v, "an integer"),
    bool: (lambda v: isinstance(v, bool), lambda v: v, "true or false"),
    str: (lambda v: isinstance(v, str), lambda v: v, "a string"),
}


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and wrong types."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise WdmtError(None, f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise WdmtError(None, f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except WdmtError as e:
        raise WdmtError(None, f"{where}: {e.reason}") from e


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "model_options" else v
        )
        if k == "model_options" and isinstance(v, dict):
            out[k] = {**base.get(k, {}), **v}
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise WdmtError(path, "config file not found") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise WdmtError(path, f"not valid YAML: {str(e).splitlines()[0]}") from e
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise WdmtError(path, "config must be a mapping of keys to values")
    return loaded


def resolve_config(preset: str = "cpu", file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the preset, then a YAML/JSON file, then command-line overrides (None: not given).

    What a user asks for (the file and the overrides) applies to every model; what a preset sets is a default that
    gives way to a model's own needs: model options the model does not have are dropped, and a model with a learning
    rate of its own (``ModelInfo.lr``, the GANs) keeps it, with weight decay 0, unless lr or weight_decay are asked;
    so do the settings a model needs (``ModelInfo.config_defaults``)."""
    if preset not in PRESETS:
        raise WdmtError(None, f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    data = _merge(to_dict(TrainConfig()), PRESETS[preset])
    asked: dict[str, Any] = {}
    if file is not None:
        path = Path(file)
        asked = _read_file(path)
        try:
            data = _merge(data, asked)
            from_dict(TrainConfig, data)
        except WdmtError as e:
            raise WdmtError(path, e.reason) from e
    given = {k: v for k, v in overrides.items() if v is not None}
    data = _merge(data, given)
    asked = _merge(asked, given)
    data["model_options"] = _applicable(data, PRESETS[preset].get("model_options", {}), asked.get("model_options"))
    data = _merge(data, _model_defaults(data.get("model", ""), asked))
    return from_dict(TrainConfig, data)


def _applicable(data: dict[str, Any], preset_opts: dict[str, Any], asked: Any) -> dict[str, Any]:
    """Preset model options are defaults for the models that have them (delta means nothing to MemAE); options a
    user asked for stay, so a wrong one is still an error."""
    from wdmt.models import MODELS

    entry = MODELS.get(data.get("model", ""))
    if entry is None:
        return data["model_options"]
    fields = set(entry.config_cls.__dataclass_fields__)
    asked = set(asked) if isinstance(asked, dict) else set()
    return {k: v for k, v in data["model_options"].items() if k in fields or k in asked or k not in preset_opts}


def _model_defaults(model: str, asked: dict[str, Any]) -> dict[str, Any]:
    """What a model sets over a preset (see :func:`resolve_config`): its own learning rate with weight decay 0 (the
    GANs), and its ``ModelInfo.config_defaults`` (a memory-bank model's one epoch over whole RGB pictures), each key
    only where the user asked for nothing."""
    from wdmt.models import MODELS

    entry = MODELS.get(model)
    if entry is None:
        return {}
    own: dict[str, Any] = dict(entry.info.config_defaults)
    if entry.info.lr is not None:
        own.update(lr=entry.info.lr, weight_decay=0.0)
    out: dict[str, Any] = {}
    for k, v in own.items():
        if isinstance(v, dict):
            mine = asked.get(k) if isinstance(asked.get(k), dict) else {}
            out[k] = {kk: vv for kk, vv in v.items() if kk not in mine}
        elif k not in asked:
            out[k] = v
    return out


def literal_choices(cls: type, name: str) -> list[str]:
    """The allowed values of a ``Literal`` field of a config dataclass (the CLI offers exactly these)."""
    return list(typing.get_args(typing.get_type_hints(cls)[name]))


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))
