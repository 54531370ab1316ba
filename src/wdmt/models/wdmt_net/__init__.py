"""WDMT-Net (Zhang, Sun, Li et al., MICCAI 2022) and the five other rows of its Table 1, and WDMT-Net taught to
remove pasted lesions.

Registers the models; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.registry import ModelInfo, register_model
from wdmt.models.wdmt_net.torch_model import WDMTConfig, WDMTNet

_PAPER = "Zhang, Sun, Li et al., MICCAI 2022 (WDMT-Net), Table 1"
for _name, _skip, _hog, _desc in (
    ("ae", "off", "none", "autoencoder: the WDMT backbone with skips removed (alpha = 0)"),
    ("unet", "on", "none", "U-Net: the official module with skips on (alpha = 1), no decay"),
    ("wdmt-nohog", "decay", "none", "WDMT-Net without the HOG head: decaying skips"),
    ("ae-hog", "off", "multi", "autoencoder + HOG head"),
    ("unet-hog", "on", "multi", "U-Net + HOG head"),
    ("wdmt", "decay", "multi", "WDMT-Net: decaying skips + HOG head (three cell sizes)"),
):
    register_model(
        ModelInfo(name=_name, paper=_PAPER, input_size=None, needs_hog=_hog != "none", description=_desc),
        WDMTConfig,
        WDMTNet,
        skip=_skip,
        hog=_hog,
    )
register_model(
    ModelInfo(
        "wdmt-synth",
        "WDMT-Net trained to remove pasted lesions (the cheap synthetic-lesion variant); not in the paper",
        None,
        needs_hog=True,
        config_defaults={"synth_lesions": True},
        description="WDMT-Net whose input has synthetic lesions pasted in and whose target is the tile without them",
    ),
    WDMTConfig,
    WDMTNet,
    skip="decay",
    hog="multi",
)

__all__ = ["WDMTConfig", "WDMTNet"]
