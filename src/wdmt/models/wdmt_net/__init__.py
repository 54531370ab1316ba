"""WDMT-Net (Zhang, Sun, Li et al., MICCAI 2022) and the five other rows of its Table 1."""

from wdmt.models.wdmt_net.torch_model import WDMTConfig, WDMTNet

__all__ = ["WDMTConfig", "WDMTNet"]
