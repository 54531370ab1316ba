"""The model registry: every method under a stable name, with its config dataclass and what it needs.

Each model's package registers itself when imported (``wdmt.models`` imports them all); ``create_model(name,
**overrides)`` builds one and ``MODELS`` lists them for the CLI and the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wdmt.errors import WdmtError
from wdmt.models.base import AnomalyModel, ModelInfo

# The recipes of the models that fit statistics instead of training (feature models, the contrast map) and of the
# lesion segmenter. They keep the black surround and the plain loss: every figure of docs/methods.md and the shipped
# model were measured so, and the cpu preset's filled surround has not been measured for them.
AS_MEASURED = {"fov_loss": False}
# ImageNet features of an offline backbone: one pass over whole RGB pictures, no gradient step; these settings
# replace a preset's unless asked.
FEATURE_FIT = {
    "epochs": 1,
    "batch_size": 4,
    "tile_repeats": 1,
    "blur_sigma": [0.0, 0.0],
    "preprocess": {"channels": "rgb", "tiles": 1, "surround": "black"},
    **AS_MEASURED,
}
# Statistics per place (PaDiM's Gaussians, the contrast map's cells): a flipped picture puts the disc and arcades
# where no photograph has them, so these fit the photographs as they are (chosen on the proxy set:
# studies/2026-11-contrast-prior).
PER_PLACE_FIT = {**FEATURE_FIT, "flips": False}


@dataclass(frozen=True)
class ModelEntry:
    info: ModelInfo
    config_cls: type
    defaults: dict[str, Any]
    build: Callable[[Any], AnomalyModel]


MODELS: dict[str, ModelEntry] = {}


def register_model(info: ModelInfo, config_cls: type, build: Callable[[Any], AnomalyModel], **defaults: Any) -> None:
    if info.name in MODELS:
        raise ValueError(f"model {info.name!r} registered twice")
    MODELS[info.name] = ModelEntry(info, config_cls, defaults, build)


def model_config(name: str, **overrides: Any) -> Any:
    """The resolved config dataclass of a model: registry defaults, then ``overrides``."""
    if name not in MODELS:
        raise WdmtError(None, f"unknown model {name!r}; known: {', '.join(MODELS)}")
    entry = MODELS[name]
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise WdmtError(
            None, f"model {name}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}"
        )
    base = entry.config_cls(**entry.defaults)
    # a tuple read back from a run's JSON config is a list
    fixed = {k: tuple(v) if isinstance(v, list) and isinstance(getattr(base, k), tuple) else v
             for k, v in overrides.items()}
    return dataclasses.replace(base, **fixed)


def full_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every option of a model, the defaults written out: what a run records, so that a default changed in a later
    wdmt does not silently change a model already trained (its fitted statistics belong to the old value)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(model_config(name, **options)).items()}


def takes_option(name: str, option: str) -> bool:
    """Whether a registered model's config has ``option`` (``pretrained``: the models with an ImageNet backbone)."""
    return option in MODELS[name].config_cls.__dataclass_fields__


def create_model(name: str, **overrides: Any) -> AnomalyModel:
    """Build a registered model; ``overrides`` are fields of its config dataclass."""
    cfg = model_config(name, **overrides)
    model = MODELS[name].build(cfg)
    model.info = MODELS[name].info
    return model


def run_options(cfg: Any) -> dict[str, Any]:
    """The options a :class:`~wdmt.config.TrainConfig`'s model is built with: its own, and its input channels from
    the preprocessing unless it names them."""
    return {"in_channels": cfg.preprocess.in_channels, **cfg.model_options}


def build_from_config(cfg: Any, for_loading: bool = False) -> AnomalyModel:
    """The model a :class:`~wdmt.config.TrainConfig` describes (its input channels from the preprocessing).
    ``for_loading``: its weights are about to be loaded from a checkpoint, so a pretrained backbone is not read from
    the ``wdmt[features]`` extra (a run or the shipped model then scores without it)."""
    opts = run_options(cfg)
    if for_loading and takes_option(cfg.model, "pretrained"):
        opts["pretrained"] = False
    return create_model(cfg.model, **opts)


__all__ = ["AS_MEASURED", "FEATURE_FIT", "MODELS", "PER_PLACE_FIT", "ModelEntry", "ModelInfo", "build_from_config",
           "create_model", "full_options", "model_config", "register_model", "run_options", "takes_option"]
