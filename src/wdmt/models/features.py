"""What the feature-embedding models share: a frozen ImageNet backbone, locally aware patch features, a fit that
collects patches in one pass with no gradient step, and maps made of patch distances.

A subclass says how patches are remembered (:meth:`FeatureModel.fit_batch`, :meth:`FeatureModel.fit_end`) and how far
a patch is from them (:meth:`FeatureModel.distances`); the rest is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from wdmt.models.backbone import block_channels, frozen_lite0, imagenet_normalise
from wdmt.models.base import AnomalyModel, Batch, ModelOutput, StepResult


@dataclass(frozen=True)
class FeatureConfig:
    """The fields every feature model has; each model's config adds its own."""

    in_channels: int = 3
    blocks: tuple[int, int] = (4, 10)  # 40 channels at 1/8 and 112 at 1/16 of the picture
    neighbourhood: int = 3  # "locally aware": each feature averaged over this square
    scale: float = 1.0  # the picture is resized by this before the backbone (2: patches of 4 px at 768)
    smooth_sigma: float = 4.0  # px, of the map (the PatchCore paper's 4)
    pretrained: bool = True  # False: random weights (tests that only check shapes and plumbing)
    seed: int = 0  # of the model's random choices (PatchCore's pool and projection, PaDiM's channels)


def smooth(amap: torch.Tensor, sigma: float, zero_pad: bool = False) -> torch.Tensor:
    """Gaussian smoothing of (B, 1, H, W) maps with a kernel fixed at trace time (ONNX needs a constant kernel;
    :func:`wdmt.augment.gaussian_blur` builds one per sample). The picture is extended by reflection, or with
    ``zero_pad`` by zeros (what a convolution normalised by the blurred FOV needs: zeros are "no retina"; the kernel
    then keeps its full size on any picture, where reflection needs it shorter than the side)."""
    if sigma <= 0:
        return amap
    k = 2 * int(4 * sigma + 0.5) + 1
    if not zero_pad:
        k = min(k, 2 * (min(amap.shape[-2:]) // 2) - 1)
    t = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = (g / g.sum()).to(amap)
    y = F.pad(amap, [k // 2] * 4, mode="constant" if zero_pad else "reflect")
    return F.conv2d(F.conv2d(y, g.view(1, 1, 1, k)), g.view(1, 1, k, 1))


def cell_index(h: int, w: int, grid: int) -> torch.Tensor:
    """(h * w,) cell of each position of an h x w grid in a ``grid`` x ``grid`` lattice over it, row-major."""
    rows = torch.arange(h) * grid // h
    cols = torch.arange(w) * grid // w
    return (rows[:, None] * grid + cols[None, :]).reshape(-1)


class FeatureModel(AnomalyModel):
    """The backbone, patch features and maps of a :class:`FeatureConfig`."""

    uses_default_step = False

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = frozen_lite0(cfg.pretrained, max(cfg.blocks))
        self.feature_dim = sum(block_channels(b) for b in cfg.blocks)

    def train(self, mode: bool = True) -> FeatureModel:
        super().train(mode)
        self.backbone.eval()  # frozen: ImageNet statistics, whatever the loop asks
        return self

    def fold_for_inference(self) -> None:
        """Nothing to fold: the frozen backbone's batch norm costs little beside the distance computation."""

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        return []

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pictures in [0, 1] -> (B, feature_dim, H/s, W/s) float32 patch features: each block's output
        averaged over its ``neighbourhood`` ("locally aware"), coarser ones up-sampled to the finest grid."""
        if self.cfg.scale != 1:  # finer patches for lesions of a few pixels, at scale^2 the cost
            x = F.interpolate(x, scale_factor=float(self.cfg.scale), mode="bilinear", align_corners=False)
        feats = self.backbone.features(imagenet_normalise(x), tuple(self.cfg.blocks))
        k = self.cfg.neighbourhood
        feats = [F.avg_pool2d(f.float(), k, 1, k // 2, count_include_pad=False) for f in feats]
        size = feats[0].shape[-2:]
        return torch.cat([f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear",
                                                                        align_corners=False) for f in feats], 1)

    def fit_batch(self, feats: torch.Tensor) -> None:
        """Remember one batch of patch features (B, feature_dim, h, w)."""
        raise NotImplementedError

    def fit_end(self) -> None:
        """Turn what was remembered into the fitted state (buffers, so that checkpoints carry it)."""
        raise NotImplementedError

    def distances(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim, h, w) -> (B, 1, h, w) distance of each patch from the normal ones, in float32."""
        raise NotImplementedError

    def training_step(self, batch: Batch, optimizers: list[torch.optim.Optimizer], autocast: Any,
                      loss_fn: Any = None) -> StepResult:
        """Collect the batch's patches (of the clean target: augmentation would put blur among the normals)."""
        with torch.no_grad(), autocast():
            self.fit_batch(self.embed(batch.target))
        return StepResult({"loss": 0.0})

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        if epoch == epochs:
            self.fit_end()

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.embed(x)
        with torch.autocast(x.device.type, enabled=False):  # distances cancel large terms: bf16 would drown them
            dist = self.distances(f.float())
        amap = F.interpolate(dist, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return smooth(amap, self.cfg.smooth_sigma), x

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon = self.maps(x)
        return ModelOutput(recon=recon.float(), anomaly_map=amap, score=amap.flatten(1).amax(1))
