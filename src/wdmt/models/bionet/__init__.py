"""BiO-Net (Xiang et al., MICCAI 2020) as a reconstruction network, after the official PyTorch model (method-spec 2.3).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.bionet.torch_model import BiONet, BiONetConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "bionet",
        "Xiang et al., MICCAI 2020 (BiO-Net)",
        None,
        description="bi-directional O-shaped U-Net, 2 recurrent passes, sigmoid output",
    ),
    BiONetConfig,
    BiONet,
)

__all__ = ["BiONet", "BiONetConfig"]
