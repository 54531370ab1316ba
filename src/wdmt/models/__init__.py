"""The model registry: every method under a stable name, with its config dataclass and what it needs.

``create_model(name, **overrides)`` builds one; ``MODELS`` lists them for the CLI and the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wdmt.errors import WdmtError
from wdmt.models.base import AnomalyModel, Batch, ModelInfo, ModelOutput, StepResult
from wdmt.models.wdmt_net import WDMTConfig, WDMTNet


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
        raise WdmtError(None, f"model {name}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
    return entry.config_cls(**{**entry.defaults, **overrides})


def create_model(name: str, **overrides: Any) -> AnomalyModel:
    """Build a registered model; ``overrides`` are fields of its config dataclass."""
    cfg = model_config(name, **overrides)
    model = MODELS[name].build(cfg)
    model.info = MODELS[name].info
    return model


_PAPER = "Zhang, Sun, Li et al., MICCAI 2022 (WDMT-Net), Table 1"
for _name, _skip, _hog, _desc in (
    ("ae", "off", "none", "autoencoder: the WDMT backbone with skips removed (alpha = 0)"),
    ("unet", "on", "none", "U-Net: the official module with skips on (alpha = 1), no decay"),
    ("wdmt-nohog", "decay", "none", "WDMT-Net without the HOG head: decaying skips"),
    ("ae-hog", "off", "multi", "autoencoder + HOG head"),
    ("unet-hog", "on", "multi", "U-Net + HOG head"),
    ("wdmt", "decay", "multi", "WDMT-Net: decaying skips + HOG head (three cell sizes)"),
):
    register_model(
        ModelInfo(name=_name, paper=_PAPER, input_size=None, needs_hog=_hog != "none", description=_desc),
        WDMTConfig,
        WDMTNet,
        skip=_skip,
        hog=_hog,
    )

__all__ = ["MODELS", "AnomalyModel", "Batch", "ModelInfo", "ModelOutput", "StepResult", "create_model", "model_config",
           "register_model"]
