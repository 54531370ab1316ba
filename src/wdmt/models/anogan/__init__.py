"""AnoGAN (Schlegl et al., IPMI 2017): a DCGAN of normal tiles, and test-time search for the latent code.

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.anogan.torch_model import AnoGAN, AnoGANConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "anogan",
        "Schlegl et al., IPMI 2017 (AnoGAN)",
        64,
        adversarial=True,
        lr=2e-4,
        description="DCGAN at 64 px; test-time latent search (500 Adam steps) per tile",
        own_score="the latent search's final loss, 0.9 residual + 0.1 feature distance (AnoGAN's score)",
    ),
    AnoGANConfig,
    AnoGAN,
)

__all__ = ["AnoGAN", "AnoGANConfig"]
