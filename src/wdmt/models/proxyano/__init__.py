"""ProxyAno (Zhou et al., IEEE TMI 2021). No public code: built from the paper's abstract (method-spec 2.9).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.proxyano.torch_model import ProxyAno, ProxyAnoConfig
from wdmt.models.registry import ModelInfo, register_model

register_model(
    ModelInfo(
        "proxyano",
        "Zhou et al., IEEE TMI 2021 (ProxyAno)",
        128,
        description="image -> superpixel proxy (with memory) -> image; pseudo-anomalies (our reading: no public code)",
    ),
    ProxyAnoConfig,
    ProxyAno,
)

__all__ = ["ProxyAno", "ProxyAnoConfig"]
