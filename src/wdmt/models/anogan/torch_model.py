"""AnoGAN (Schlegl et al., IPMI 2017): a DCGAN of normal tiles, and test-time search for the latent code.

No official code (method-spec 2.5). Training: a DCGAN at 64 px (G: z in U[-1, 1]^100 -> 64 x 64 tanh; D: the mirror
with a sigmoid), non-saturating BCE, Adam 2e-4 / beta1 0.5. Inference: for every tile, z starts at random and
``latent_steps`` Adam steps (lr ``latent_lr``, z clipped to the prior's box) minimise
(1 - lambda) * |x - G(z)|_1 + lambda * |f(x) - f(G(z))|_1 with f = D's last feature map and lambda = 0.1, batched over
tiles (the losses are per sample, so one Adam over the batch is exact). Pixel map |x - G(z*)| up-sampled to the
tile; image score the final search loss. Our choices: Adam lr 0.05 for z; 500 steps as the paper (``latent_steps``
can be lowered to trade accuracy for speed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wdmt.models.base import Batch, ModelOutput, residual_map
from wdmt.models.gan import AdversarialModel, DCGANDecoder, DCGANEncoder, bce, dcgan_init, from_pm1, to_pm1


@dataclass(frozen=True)
class AnoGANConfig:
    in_channels: int = 1
    width: int = 64
    nz: int = 100
    native: int = 64
    lam: float = 0.1
    latent_steps: int = 500
    latent_lr: float = 0.05


class AnoGAN(AdversarialModel):
    exportable = False  # scoring is an optimisation over z, not a forward pass
    def __init__(self, cfg: AnoGANConfig = AnoGANConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.native = cfg.native
        self.generator = DCGANDecoder(cfg.native, cfg.nz, cfg.in_channels, cfg.width)
        enc = DCGANEncoder(cfg.native, 1, cfg.in_channels, cfg.width)
        self.disc = nn.ModuleDict({"features": enc.features, "head": nn.Sequential(enc.final, nn.Sigmoid())})
        self.apply(dcgan_init)

    def _d(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.disc["features"](x)
        return self.disc["head"](f).flatten(), f

    def _z(self, n: int, device: torch.device, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, self.cfg.nz, 1, 1, generator=gen).to(device) * 2 - 1

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], Any]:
        real = to_pm1(self.to_native(batch.image))
        fake = self.generator(self._z(real.shape[0], real.device))
        p_fake, _ = self._d(fake)
        g = bce(p_fake, 1.0)
        return g, {"g_adv": float(g.detach())}, (real, fake)

    def discriminator_loss(self, batch: Batch, cache: Any) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake = cache
        p_real, _ = self._d(real)
        p_fake, _ = self._d(fake.detach())
        return 0.5 * (bce(p_real, 1.0) + bce(p_fake, 0.0)), {}

    def search(self, x01: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent search for a batch of tiles; returns (G(z*) in [0, 1] at native size, per-tile final loss)."""
        cfg = self.cfg
        x = to_pm1(self.to_native(x01.float()))
        gen = torch.Generator().manual_seed(0)  # the search starts from a fixed draw: scores are reproducible
        z = self._z(x.shape[0], x.device, gen).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=cfg.latent_lr)
        for p in self.parameters():
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                _, f_x = self._d(x)
                for _ in range(cfg.latent_steps if steps is None else steps):
                    opt.zero_grad(set_to_none=True)
                    g = self.generator(z)
                    _, f_g = self._d(g)
                    per = (1 - cfg.lam) * (x - g).abs().flatten(1).sum(1) + cfg.lam * (f_x - f_g).abs().flatten(1).sum(
                        1
                    )
                    per.sum().backward()
                    opt.step()
                    with torch.no_grad():
                        z.clamp_(-1, 1)
            with torch.no_grad():
                g = self.generator(z)
                _, f_g = self._d(g)
                per = (1 - cfg.lam) * (x - g).abs().flatten(1).sum(1) + cfg.lam * (f_x - f_g).abs().flatten(1).sum(1)
        finally:
            for p in self.parameters():
                p.requires_grad_(True)
        return from_pm1(g), per

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g, _ = self.search(x)
        return g, {}

    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        g, per = self.search(x)
        recon = self.from_native(g.detach().float(), x.shape[-2:])
        amap = residual_map(x.float(), recon)
        return ModelOutput(recon=recon, anomaly_map=amap, score=per.detach())
