"""GANomaly (Akcay et al., ACCV 2018), after the official PyTorch code (method-spec 2.7).

Generator = encoder -> decoder -> encoder (DCGAN blocks); discriminator = the same encoder with a sigmoid head.
Generator loss: w_adv * feature matching on the discriminator's features + w_con * L1(x, x_hat) + w_enc * L2(z, z_hat)
with weights 1 / 50 / 1; discriminator loss: BCE on real and fake, averaged, re-initialised if it drops below 1e-5.
Runs at 64 px (tiles are area-downsampled; the residual map is up-sampled back) in [-1, 1] with a tanh output,
mapped back to [0, 1] before the residual so maps compare with the other models'. GANomaly has no native pixel
map; we use |x - x_hat| as the WDMT authors presumably did. Its image score is its own mean (z - z_hat)^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.base import Batch, ModelOutput, recon_error, residual_map
from wdmt.models.gan import AdversarialModel, DCGANDecoder, DCGANEncoder, bce, dcgan_init, from_pm1, to_pm1


@dataclass(frozen=True)
class GanomalyConfig:
    in_channels: int = 1
    width: int = 64  # ngf = ndf
    nz: int = 100
    native: int = 64
    w_adv: float = 1.0
    w_con: float = 50.0
    w_enc: float = 1.0


class Discriminator(nn.Module):
    def __init__(self, isize: int, nc: int, ndf: int) -> None:
        super().__init__()
        enc = DCGANEncoder(isize, 1, nc, ndf)
        self.features = enc.features
        self.classifier = nn.Sequential(enc.final, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.classifier(f).flatten(), f


class Ganomaly(AdversarialModel):
    def __init__(self, cfg: GanomalyConfig = GanomalyConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.native = cfg.native
        self.encoder1 = DCGANEncoder(cfg.native, cfg.nz, cfg.in_channels, cfg.width)
        self.decoder = DCGANDecoder(cfg.native, cfg.nz, cfg.in_channels, cfg.width)
        self.encoder2 = DCGANEncoder(cfg.native, cfg.nz, cfg.in_channels, cfg.width)
        self.disc = Discriminator(cfg.native, cfg.in_channels, cfg.width)
        self.apply(dcgan_init)

    def generate(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = to_pm1(self.to_native(x01))
        z = self.encoder1(x)
        fake = self.decoder(z)
        return fake, z, self.encoder2(fake)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fake, _, _ = self.generate(x)
        return from_pm1(fake), {}

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], Any]:
        real = to_pm1(self.to_native(batch.target))
        fake, z, zh = self.generate(batch.image)
        _, f_real = self.disc(real)
        _, f_fake = self.disc(fake)
        adv = F.mse_loss(f_fake, f_real.detach())
        con = recon_error(fake, real, self.native_fov(batch), "l1")
        enc = F.mse_loss(zh, z)
        g = self.cfg.w_adv * adv + self.cfg.w_con * con + self.cfg.w_enc * enc
        return g, {"recon": float(con.detach()), "adv": float(adv.detach()), "enc": float(enc.detach())}, (real, fake)

    def discriminator_loss(self, batch: Batch, cache: Any) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake = cache
        p_real, _ = self.disc(real)
        p_fake, _ = self.disc(fake.detach())
        return 0.5 * (bce(p_real, 1.0) + bce(p_fake, 0.0)), {}

    def after_discriminator_step(self, d_loss: float) -> None:
        if d_loss < 1e-5:  # the official code re-initialises a discriminator that has won outright
            self.disc.apply(dcgan_init)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        fake, z, zh = self.generate(x)
        recon = self.from_native(from_pm1(fake).float(), x.shape[-2:])
        amap = residual_map(x.float(), recon)
        return ModelOutput(recon=recon, anomaly_map=amap, score=((z - zh) ** 2).flatten(1).mean(1).float())
