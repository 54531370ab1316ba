"""A lesion segmenter's map laid over a feature model's: the two fitted runs that ``wdmt fuse`` joins
(not in the paper).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.fusion.torch_model import Fusion, FusionConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "fusion",
        "the lesion segmenter over a feature model (wdmt fuse); not in the paper",
        None,
        composite=True,
        description="a segmenter's lesion probability plus a small, proxy-chosen share of a feature model's distance",
        own_score="the maximum of the fused map averaged over 21 x 21 px",
    ),
    FusionConfig,
    Fusion,
)

__all__ = ["Fusion", "FusionConfig"]
