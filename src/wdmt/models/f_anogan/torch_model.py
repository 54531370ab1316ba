"""f-AnoGAN (Schlegl et al., MedIA 2019), after the official TF code (method-spec 2.6), at 64 px.

Two stages, declared here and not in the loop: for the first ``gan_fraction`` of the training iterations a WGAN-GP
trains (gradient penalty 10, the generator updated every ``n_critic`` = 5 critic steps, Adam 1e-4 / betas (0, 0.9));
then G and the critic are frozen and the encoder (izi_f) learns x -> z with MSE(x, G(E(x))) + kappa * MSE(f(x),
f(G(E(x)))), kappa = 1 (RMSprop 5e-5 as the code). Residual networks: G = Linear -> 4 x 4 x 8D -> 4 up-blocks
(BN-ReLU-conv, nearest x2; the code uses depth-to-space) -> BN-ReLU-conv3x3 -> tanh; critic = conv3x3 -> 4 down-blocks
with LayerNorm, ReLU and mean-pool -> Linear; its feature f is the flattened 4 x 4 x 8D map. The encoder is the
critic's layout with BatchNorm ending in Linear -> tanh. Score: image MSE_img + kappa * MSE_feat; pixel |x - G(E(x))|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wdmt.models.base import Batch, ModelOutput, StepResult, optimizer_step, residual_map
from wdmt.models.common import ReconstructionModel
from wdmt.models.gan import from_pm1, to_pm1


@dataclass(frozen=True)
class FAnoGANConfig:
    in_channels: int = 1
    width: int = 64  # DIM
    nz: int = 128
    native: int = 64
    gp_weight: float = 10.0
    n_critic: int = 5
    kappa: float = 1.0
    gan_fraction: float = 0.6
    encoder_lr_ratio: float = 0.5  # the encoder's rate over the run's lr (official: 5e-5 against 1e-4)


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, size: int, norm: str) -> None:
        super().__init__()
        n1 = nn.LayerNorm([c_in, size, size]) if norm == "layer" else nn.BatchNorm2d(c_in)
        n2 = nn.LayerNorm([c_in, size, size]) if norm == "layer" else nn.BatchNorm2d(c_in)
        self.body = nn.Sequential(
            n1,
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, 3, 1, 1),
            n2,
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Critic(nn.Module):
    """conv3x3, 4 down-blocks (1, 2, 4, 8, 8) x D, Linear; ``features`` is the flattened last map."""

    def __init__(self, nc: int, dim: int, native: int, norm: str, out: int) -> None:
        super().__init__()
        mult = [1, 2, 4, 8, 8]
        self.stem = nn.Conv2d(nc, dim, 3, 1, 1)
        blocks, size = [], native
        for i in range(4):
            blocks.append(DownBlock(mult[i] * dim, mult[i + 1] * dim, size, norm))
            size //= 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(8 * dim * size * size, out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f), f


class Generator(nn.Module):
    def __init__(self, nz: int, nc: int, dim: int, native: int) -> None:
        super().__init__()
        self.start = native // 16
        self.dim = dim
        self.fc = nn.Linear(nz, 8 * dim * self.start**2)
        mult = [8, 8, 4, 2, 1]
        self.blocks = nn.Sequential(*[UpBlock(mult[i] * dim, mult[i + 1] * dim) for i in range(4)])
        self.out = nn.Sequential(nn.BatchNorm2d(dim), nn.ReLU(), nn.Conv2d(dim, nc, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 8 * self.dim, self.start, self.start)
        return self.out(self.blocks(h))


class FAnoGAN(ReconstructionModel):
    def __init__(self, cfg: FAnoGANConfig = FAnoGANConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.native = cfg.native
        self.generator = Generator(cfg.nz, cfg.in_channels, cfg.width, cfg.native)
        self.critic = Critic(cfg.in_channels, cfg.width, cfg.native, "layer", 1)
        self.encoder = Critic(cfg.in_channels, cfg.width, cfg.native, "batch", cfg.nz)
        self.register_buffer("stage", torch.tensor(1))
        self.register_buffer("step", torch.tensor(0))
        self._switch_at: int | None = None

    # --- stages -----------------------------------------------------------------------------------------------
    def on_fit_start(self, total_iterations: int) -> None:
        self._switch_at = int(round(self.cfg.gan_fraction * total_iterations))

    def on_train_iteration(self, iteration: int, iters_per_epoch: int) -> None:
        self.step.fill_(iteration)
        if self._switch_at is not None and iteration >= self._switch_at:
            self.stage.fill_(2)

    def train_state(self) -> dict[str, float]:
        return {"stage": float(self.stage)}

    def selection_ready(self) -> bool:
        return int(self.stage) == 2  # before the encoder trains, reconstructions mean nothing

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        """Generator and critic at ``lr`` (official 1e-4), the encoder at ``encoder_lr_ratio`` x ``lr``."""
        wd, enc = weight_decay, lr * self.cfg.encoder_lr_ratio
        return [
            torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.0, 0.9), weight_decay=wd),
            torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.0, 0.9), weight_decay=wd),
            torch.optim.RMSprop(self.encoder.parameters(), lr=enc, weight_decay=wd),
        ]

    # --- losses -----------------------------------------------------------------------------------------------
    def _critic_loss(self, real: torch.Tensor) -> torch.Tensor:
        z = torch.randn(real.shape[0], self.cfg.nz, device=real.device)
        fake = self.generator(z).detach()
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
        d_mix, _ = self.critic(mix)
        grad = torch.autograd.grad(d_mix.sum(), mix, create_graph=True)[0]
        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        return self.critic(fake)[0].mean() - self.critic(real)[0].mean() + self.cfg.gp_weight * gp

    def _generator_loss(self, n: int, device: torch.device) -> torch.Tensor:
        return -self.critic(self.generator(torch.randn(n, self.cfg.nz, device=device)))[0].mean()

    def _encoder_loss(self, x: torch.Tensor, fov: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """izi_f per sample: image MSE (over the FOV where given) + kappa x critic-feature MSE."""
        z = torch.tanh(self.encoder(x)[0])
        g = self.generator(z)
        if fov is None:
            img = ((x - g) ** 2).flatten(1).mean(1)
        else:
            w = fov.expand_as(x).flatten(1)
            img = (((x - g) ** 2).flatten(1) * w).sum(1) / w.sum(1).clamp_min(1e-6)
        feat = ((self.critic.features(x) - self.critic.features(g)) ** 2).mean(1)
        return img + self.cfg.kappa * feat, img, g

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """All three objectives on one graph (for gradient checks); training runs them in their stages."""
        real = to_pm1(self.to_native(batch.image))
        d = self._critic_loss(real)
        g = self._generator_loss(real.shape[0], real.device)
        e, img, _ = self._encoder_loss(real, self.native_fov(batch))
        return d + g + e.mean(), {"recon": float(img.mean().detach())}

    uses_default_step = False

    def training_step(
        self, batch: Batch, optimizers: list[torch.optim.Optimizer], autocast: Any, loss_fn: Any = None
    ) -> StepResult:
        opt_g, opt_d, opt_e = optimizers
        real = to_pm1(self.to_native(batch.image))
        if int(self.stage) == 1:
            (d,) = optimizer_step(opt_d, autocast, "critic loss", lambda: (self._critic_loss(real),))
            logs = {"loss": float(d.detach()), "critic": float(d.detach())}
            if int(self.step) % self.cfg.n_critic == 0:
                (g,) = optimizer_step(
                    opt_g, autocast, "generator loss", lambda: (self._generator_loss(real.shape[0], real.device),)
                )
                logs["generator"] = float(g.detach())
            return StepResult(logs)
        self.generator.eval()  # frozen: BN statistics fixed too
        self.critic.eval()

        def encoder_objective() -> tuple[torch.Tensor, torch.Tensor]:
            e, img, _ = self._encoder_loss(real, self.native_fov(batch))
            return e.mean(), img

        loss, img = optimizer_step(opt_e, autocast, "encoder loss", encoder_objective)
        opt_g.zero_grad(set_to_none=True)  # the encoder's loss also reached G and the critic: drop those gradients
        opt_d.zero_grad(set_to_none=True)
        return StepResult({"loss": float(loss.detach()), "recon": float(img.mean().detach())})

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _, _, g = self._encoder_loss(to_pm1(x))
        return from_pm1(g), {}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        score, _, g = self._encoder_loss(to_pm1(self.to_native(x.float())))
        recon = self.from_native(from_pm1(g).float(), x.shape[-2:])
        amap = residual_map(x.float(), recon)
        return ModelOutput(recon=recon, anomaly_map=amap, score=score)
