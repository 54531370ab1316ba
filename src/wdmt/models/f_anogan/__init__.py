"""f-AnoGAN (Schlegl et al., MedIA 2019), after the official TF code (method-spec 2.6), at 64 px.

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.f_anogan.torch_model import FAnoGAN, FAnoGANConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "f-anogan",
        "Schlegl et al., MedIA 2019 (f-AnoGAN)",
        64,
        adversarial=True,
        lr=1e-4,
        description="WGAN-GP at 64 px, then an encoder x -> z trained with G and critic frozen (two stages)",
        own_score="izi_f: image MSE + kappa x critic-feature MSE of x and G(E(x)) (f-AnoGAN's score)",
    ),
    FAnoGANConfig,
    FAnoGAN,
)

__all__ = ["FAnoGAN", "FAnoGANConfig"]
