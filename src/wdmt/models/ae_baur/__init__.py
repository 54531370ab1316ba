"""Dense autoencoder in the style of Baur et al. (BrainLes 2018) and their comparative-study code (method-spec 2.1).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.ae_baur.torch_model import BaurAE, BaurAEConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "ae-baur",
        "Baur et al., BrainLes 2018 (dense autoencoder)",
        128,
        description="dense-bottleneck autoencoder at 128 px, the literature variant of the autoencoder row",
    ),
    BaurAEConfig,
    BaurAE,
)

__all__ = ["BaurAE", "BaurAEConfig"]
