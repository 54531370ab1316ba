"""What the adversarial baselines share: DCGAN encoders/decoders, weight init, [-1, 1] scaling, two optimisers.

GANs do their own step (``training_step``): the generator is updated, then the discriminator, each with its own
Adam (betas (0.5, 0.999) as DCGAN, at the run's ``lr``: DCGAN's 2e-4 unless ``--lr`` asks otherwise, see
:func:`wdmt.config.resolve_config`), so the shared loop stays free of GAN branches. ``loss`` returns the
generator and discriminator losses summed over one graph (the discriminator sees detached fakes), which is what the
gradient tests check: every parameter of both networks learns from it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.base import Batch, StepResult, optimizer_step
from wdmt.models.common import ReconstructionModel


def dcgan_init(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales (applied with ``.apply``, unlike anomalib's
    no-op)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANEncoder(nn.Module):
    """isize -> 4 x 4 by stride-2 4x4 convs (first without BN), then a valid 4x4 conv to ``nz`` channels at 1 x 1."""

    def __init__(self, isize: int, nz: int, nc: int, ndf: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        size, c = isize // 2, ndf
        while size > 4:
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            size, c = size // 2, 2 * c
        self.features = nn.Sequential(*layers)
        self.final = nn.Conv2d(c, nz, 4, 1, 0, bias=False)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.features(x))


class DCGANDecoder(nn.Module):
    """``nz`` x 1 x 1 -> isize, transposed convs with BN and ReLU, tanh output."""

    def __init__(self, isize: int, nz: int, nc: int, ngf: int) -> None:
        super().__init__()
        c, t = ngf // 2, 4
        while t != isize:
            c, t = c * 2, t * 2
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(True),
            *upsample_pyramid(c, nc, isize),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def upsample_pyramid(c: int, nc: int, isize: int) -> list[nn.Module]:
    """4 x 4 x c -> isize x isize x nc: stride-2 transposed convs halving the channels (BN, ReLU), tanh at the end."""
    layers: list[nn.Module] = []
    size = 4
    while size < isize // 2:
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        c, size = c // 2, size * 2
    return layers + [nn.ConvTranspose2d(c, nc, 4, 2, 1, bias=False), nn.Tanh()]


def to_pm1(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def from_pm1(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


class AdversarialModel(ReconstructionModel):
    """A reconstruction model with a generator part (``generator_parameters``) and a discriminator (``disc``)."""

    betas: tuple[float, float] = (0.5, 0.999)
    disc: nn.Module

    def generator_parameters(self) -> list[nn.Parameter]:
        disc = {id(p) for p in self.disc.parameters()}
        return [p for p in self.parameters() if id(p) not in disc]

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """Generator and discriminator at the same rate and weight decay."""
        return [
            torch.optim.Adam(self.generator_parameters(), lr=lr, betas=self.betas, weight_decay=weight_decay),
            torch.optim.Adam(self.disc.parameters(), lr=lr, betas=self.betas, weight_decay=weight_decay),
        ]

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], Any]:
        raise NotImplementedError

    def discriminator_loss(self, batch: Batch, cache: Any) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        g, glogs, cache = self.generator_loss(batch)
        d, dlogs = self.discriminator_loss(batch, cache)
        return g + d, {**glogs, **dlogs}

    uses_default_step = False

    def training_step(
        self, batch: Batch, optimizers: list[torch.optim.Optimizer], autocast: Any, loss_fn: Any = None
    ) -> StepResult:
        opt_g, opt_d = optimizers
        g, glogs, cache = optimizer_step(opt_g, autocast, "generator loss", lambda: self.generator_loss(batch))
        d, dlogs = optimizer_step(opt_d, autocast, "discriminator loss", lambda: self.discriminator_loss(batch, cache))
        self.after_discriminator_step(float(d.detach()))
        return StepResult({"loss": float(g.detach()), "d_loss": float(d.detach()), **glogs, **dlogs})

    def after_discriminator_step(self, d_loss: float) -> None:
        """Hook, e.g. GANomaly re-initialises a discriminator that has won outright."""


def bce(logits_or_probs: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy(logits_or_probs, torch.full_like(logits_or_probs, target))
