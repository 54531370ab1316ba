"""MemAE (Gong et al., ICCV 2019), 2D adaptation of the official 3D video network (method-spec 2.2).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.memae.torch_model import MemAE, MemAEConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "memae",
        "Gong et al., ICCV 2019 (MemAE)",
        None,
        description="autoencoder whose bottleneck is rebuilt from a memory of 500 normal prototypes",
    ),
    MemAEConfig,
    MemAE,
)

__all__ = ["MemAE", "MemAEConfig"]
