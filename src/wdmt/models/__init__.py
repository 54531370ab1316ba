"""Every model wdmt has, registered by importing its package: ``MODELS`` lists them in this order (the paper's
Table 1, its Table 3 baselines, then the methods beyond the paper), ``create_model`` builds one.
"""

from __future__ import annotations

import importlib

from wdmt.models.base import AnomalyModel, Batch, ModelInfo, ModelOutput, StepResult
from wdmt.models.registry import (
    MODELS,
    ModelEntry,
    build_from_config,
    create_model,
    full_options,
    model_config,
    register_model,
    run_options,
    takes_option,
)

# The registry fills as each package is imported, in this order: what `wdmt models` lists.
PACKAGES = ("wdmt_net", "ae_baur", "memae", "bionet", "attn_unet", "ganomaly", "anogan", "f_anogan", "sparse_gan",
            "proxyano", "patchcore", "padim", "contrast", "synth_seg", "fusion")
for _package in PACKAGES:
    importlib.import_module(f"wdmt.models.{_package}")

__all__ = [
    "MODELS",
    "AnomalyModel",
    "Batch",
    "ModelEntry",
    "ModelInfo",
    "ModelOutput",
    "StepResult",
    "build_from_config",
    "create_model",
    "full_options",
    "model_config",
    "register_model",
    "run_options",
    "takes_option",
]
