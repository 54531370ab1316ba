"""Sparse-GAN (Zhou et al., ISBI 2020). No public code: the architecture follows the abstract (method-spec 2.8).

Registers the model; the module, its loss and its anomaly map are in ``torch_model``."""

from wdmt.models.registry import ModelInfo, register_model
from wdmt.models.sparse_gan.torch_model import SparseGAN, SparseGANConfig

register_model(
    ModelInfo(
        "sparse-gan",
        "Zhou et al., ISBI 2020 (Sparse-GAN)",
        64,
        adversarial=True,
        lr=2e-4,
        description="image-to-image GAN with a sparsity-regularised latent map (our reading: no public code)",
        own_score="mean (z_s - z_hat)^2 of the sparse and re-encoded latent maps (Sparse-GAN's score)",
    ),
    SparseGANConfig,
    SparseGAN,
)

__all__ = ["SparseGAN", "SparseGANConfig"]
