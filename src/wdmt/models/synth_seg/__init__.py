"""A lesion segmenter trained on normal photographs with synthetic lesions pasted in (not in the paper).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.registry import AS_MEASURED, ModelInfo, register_model
from wdmt.models.synth_seg.torch_model import SynthSeg, SynthSegConfig

register_model(
    ModelInfo(
        "synth-seg",
        "DRAEM-style (Zavrtanik et al., ICCV 2021): its discriminative half, ImageNet encoder; not in the paper",
        None,
        config_defaults={"synth_lesions": True, "blur_sigma": [0.0, 0.0],
                         "preprocess": {"channels": "rgb", "surround": "black"}, **AS_MEASURED},
        description="lesion segmenter (frozen ImageNet EfficientNet-Lite0, U-Net decoder) trained on pasted lesions",
        own_score="the maximum of the lesion probability averaged over 21 x 21 px (DRAEM's score)",
    ),
    SynthSegConfig,
    SynthSeg,
)

__all__ = ["SynthSeg", "SynthSegConfig"]
