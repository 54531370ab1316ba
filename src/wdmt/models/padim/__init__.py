"""PaDiM (Defard et al., ICPR 2021) on a frozen ImageNet EfficientNet-Lite0, adapted to fundus photographs.

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.padim.torch_model import PaDiM, PaDiMConfig
from wdmt.models.registry import PER_PLACE_FIT, ModelInfo, register_model

register_model(
    ModelInfo(
        "padim",
        "Defard et al., ICPR 2021 (PaDiM); not in the WDMT-Net paper",
        None,
        memory_bank=True,
        config_defaults=PER_PLACE_FIT,
        description="a Gaussian of ImageNet EfficientNet-Lite0 patch features per cell of a 24 x 24 lattice, "
        "Mahalanobis distance",
        own_score="the maximum of the smoothed Mahalanobis-distance map (PaDiM's score)",
    ),
    PaDiMConfig,
    PaDiM,
)

__all__ = ["PaDiM", "PaDiMConfig"]
