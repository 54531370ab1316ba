"""Sparse-GAN (Zhou et al., ISBI 2020). No public code: the architecture follows the abstract (method-spec 2.8).

Our choices, written here because the paper's details are unknown to us:
- 64 px, DCGAN blocks. The generator encoder G_E maps a tile to a 4 x 4 x 8w latent map z.
- The Sparsity Regularization Net (conv-BN-ReLU-conv-ReLU) turns z into a non-negative z_s that an L1 penalty keeps
  sparse.
- The decoder G_D reconstructs x_hat, and a second encoder maps x_hat back to z_hat.
- A DCGAN discriminator judges images with the non-saturating BCE loss (EdgeConnect "nsgan", as the authors' P-Net
  code).
- Generator loss: 1 * adversarial + 50 * L1(x, x_hat) + 1 * MSE(z_s, z_hat) + ``w_sparse`` * mean|z_s|. We start from
  GANomaly's weights (1, 50, 1); w_sparse = 0.1 is unvalidated.
- Image score: mean (z_s - z_hat)^2, the paper's latent-space score.
- Pixel map: ``map = residual`` (|x - x_hat|, the default, comparable with the other models) or ``aam`` (the anomaly
  activation map: channel mean of |z_s - z_hat| up-sampled to the tile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.base import Batch, ModelOutput, recon_error, residual_map
from wdmt.models.gan import AdversarialModel, DCGANEncoder, bce, dcgan_init, from_pm1, to_pm1, upsample_pyramid


@dataclass(frozen=True)
class SparseGANConfig:
    in_channels: int = 1
    width: int = 64
    native: int = 64
    w_adv: float = 1.0
    w_con: float = 50.0
    w_lat: float = 1.0
    w_sparse: float = 0.1
    map: str = "residual"


class SparseGAN(AdversarialModel):
    def __init__(self, cfg: SparseGANConfig = SparseGANConfig()) -> None:
        super().__init__()
        if cfg.map not in ("residual", "aam"):
            raise ValueError("map must be residual or aam")
        self.cfg = cfg
        self.native = cfg.native
        e1 = DCGANEncoder(cfg.native, 1, cfg.in_channels, cfg.width)
        c = e1.out_channels
        self.encoder = e1.features
        self.srn = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, c, 3, 1, 1), nn.ReLU()
        )
        self.decoder = nn.Sequential(*upsample_pyramid(c, cfg.in_channels, cfg.native))
        self.encoder2 = DCGANEncoder(cfg.native, 1, cfg.in_channels, cfg.width).features
        d = DCGANEncoder(cfg.native, 1, cfg.in_channels, cfg.width)
        self.disc = nn.Sequential(d.features, d.final, nn.Sigmoid())
        self.apply(dcgan_init)

    def generate(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = to_pm1(self.to_native(x01))
        zs = self.srn(self.encoder(x))
        fake = self.decoder(zs)
        return fake, zs, self.encoder2(fake)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fake, _, _ = self.generate(x)
        return from_pm1(fake), {}

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], Any]:
        c = self.cfg
        real = to_pm1(self.to_native(batch.target))
        fake, zs, zh = self.generate(batch.image)
        adv = bce(self.disc(fake).flatten(), 1.0)
        con = recon_error(fake, real, self.native_fov(batch), "l1")
        lat = F.mse_loss(zh, zs)
        sp = zs.abs().mean()
        g = c.w_adv * adv + c.w_con * con + c.w_lat * lat + c.w_sparse * sp
        return (
            g,
            {
                "recon": float(con.detach()),
                "adv": float(adv.detach()),
                "lat": float(lat.detach()),
                "sparsity": float(sp.detach()),
            },
            (real, fake),
        )

    def discriminator_loss(self, batch: Batch, cache: Any) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake = cache
        return 0.5 * (bce(self.disc(real).flatten(), 1.0) + bce(self.disc(fake.detach()).flatten(), 0.0)), {}

    def _maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fake, zs, zh = self.generate(x)
        recon = self.from_native(from_pm1(fake).float(), x.shape[-2:])
        diff = (zs - zh).float()
        if self.cfg.map == "aam":
            amap = F.interpolate(
                diff.abs().mean(1, keepdim=True), size=x.shape[-2:], mode="bilinear", align_corners=False
            )
        else:
            amap = residual_map(x.float(), recon)
        return amap, recon, diff

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        amap, recon, _ = self._maps(x)
        return amap, recon

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon, diff = self._maps(x)
        return ModelOutput(recon=recon, anomaly_map=amap, score=(diff**2).flatten(1).mean(1))
