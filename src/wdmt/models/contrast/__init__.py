"""Local colour contrast: how much darker (or brighter) each pixel is than the retina around it (not in the paper).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.contrast.torch_model import ContrastConfig, LocalContrast
from wdmt.models.registry import PER_PLACE_FIT, ModelInfo, register_model

register_model(
    ModelInfo(
        "contrast",
        "local green-channel contrast against the retina around it, standardised per cell; not in the paper",
        None,
        memory_bank=True,
        config_defaults=PER_PLACE_FIT,
        description="how much darker than its surroundings each pixel is (the red-lesion cue), per-cell z-score; "
        "no backbone, fits in one pass",
        own_score="the maximum of the smoothed contrast map",
    ),
    ContrastConfig,
    LocalContrast,
)

__all__ = ["ContrastConfig", "LocalContrast"]
