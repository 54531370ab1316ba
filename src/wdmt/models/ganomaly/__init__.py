"""GANomaly (Akcay et al., ACCV 2018), after the official PyTorch code (method-spec 2.7).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.ganomaly.torch_model import Ganomaly, GanomalyConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "ganomaly",
        "Akcay et al., ACCV 2018 (GANomaly)",
        64,
        adversarial=True,
        lr=2e-4,
        description="encoder-decoder-encoder GAN at 64 px; map |x - x_hat| up-sampled to the tile",
        own_score="mean (z - z_hat)^2 of the two encoders' latent codes (GANomaly's score)",
    ),
    GanomalyConfig,
    Ganomaly,
)

__all__ = ["Ganomaly", "GanomalyConfig"]
