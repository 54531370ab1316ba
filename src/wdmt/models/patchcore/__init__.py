"""PatchCore (Roth et al., CVPR 2022) on a frozen ImageNet EfficientNet-Lite0, for whole fundus photographs.

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.patchcore.torch_model import PatchCore, PatchCoreConfig
from wdmt.models.registry import FEATURE_FIT, ModelInfo, register_model

register_model(
    ModelInfo(
        "patchcore",
        "Roth et al., CVPR 2022 (PatchCore); not in the WDMT-Net paper",
        None,
        memory_bank=True,
        config_defaults=FEATURE_FIT,
        description="memory bank of ImageNet EfficientNet-Lite0 patch features (coreset), nearest-neighbour distance",
        own_score="the maximum of the smoothed patch-distance map (PatchCore's score, without its reweighting)",
    ),
    PatchCoreConfig,
    PatchCore,
)

__all__ = ["PatchCore", "PatchCoreConfig"]
