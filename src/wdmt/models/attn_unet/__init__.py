"""Attention U-Net (Oktay et al., MIDL 2018) as a reconstruction network (method-spec 2.4).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.attn_unet.torch_model import AttnUNet, AttnUNetConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "attn-unet",
        "Oktay et al., MIDL 2018 (Attention U-Net)",
        None,
        description="U-Net with additive attention gates on every skip",
    ),
    AttnUNetConfig,
    AttnUNet,
)

__all__ = ["AttnUNet", "AttnUNetConfig"]
