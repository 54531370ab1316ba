"""Pieces several baselines share: a plain reconstruction model, native-resolution wrapping, memory addressing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.base import AnomalyModel, Batch, ModelOutput, recon_error, residual_map, topk_mean


class ReconstructionModel(AnomalyModel):
    """A model whose whole job is x -> x_hat, trained with MSE, scored by |x - x_hat|.

    ``native`` (the model's own input side, e.g. 64 or 128 for DCGAN-style nets) makes it run on area-downsampled
    tiles; its reconstruction is up-sampled bilinearly to the tile before the residual is taken, so its maps have the
    same size and value range as every other model's.
    """

    native: int | None = None

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x at native size -> (x_hat, extra loss terms)."""
        raise NotImplementedError

    def to_native(self, x: torch.Tensor) -> torch.Tensor:
        if self.native is None or x.shape[-1] == self.native:
            return x
        return F.interpolate(x, size=(self.native, self.native), mode="area")

    def from_native(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if x.shape[-2:] == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def native_fov(self, batch: Batch) -> torch.Tensor | None:
        """The batch's FOV weights at the model's native size (area-averaged: border pixels weigh in part)."""
        return None if batch.fov is None else self.to_native(batch.fov)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        recon, extra = self.reconstruct(self.to_native(batch.image))
        rec = recon_error(recon.float(), self.to_native(batch.target), self.native_fov(batch))
        total = rec + sum(extra.values()) if extra else rec
        return total, {"recon": float(rec.detach()), **{k: float(v.detach()) for k, v in extra.items()}}

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon, _ = self.reconstruct(self.to_native(x))
        recon = self.from_native(recon.float(), x.shape[-2:])
        return residual_map(x.float(), recon), recon

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon = self.maps(x)
        return ModelOutput(recon=recon, anomaly_map=amap, score=topk_mean(amap))


class MemoryModule(nn.Module):
    """MemAE's memory (Gong et al., ICCV 2019): each feature vector is rebuilt from a few learned prototypes.

    Addressing w = softmax(q M^T) over the slots, hard shrinkage ReLU(w - lambda) w / (|w - lambda| + eps),
    L1 renormalisation; output w M. ``entropy`` of the sparse weights is returned for the loss.
    """

    def __init__(self, slots: int, dim: int, shrink: float) -> None:
        super().__init__()
        bound = 1.0 / dim**0.5
        self.memory = nn.Parameter(torch.empty(slots, dim).uniform_(-bound, bound))
        self.shrink = shrink

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = z.shape
        q = z.permute(0, 2, 3, 1).reshape(-1, c)
        att = F.softmax(q @ self.memory.t(), dim=1)
        if self.shrink > 0:
            att = F.relu(att - self.shrink) * att / ((att - self.shrink).abs() + 1e-12)
            att = att / att.sum(dim=1, keepdim=True).clamp_min(1e-12)
        out = (att @ self.memory).reshape(b, h, w, c).permute(0, 3, 1, 2)
        entropy = (-att * torch.log(att + 1e-12)).sum(dim=1).mean()
        return out, entropy
