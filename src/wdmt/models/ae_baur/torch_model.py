"""Dense autoencoder in the style of Baur et al. (BrainLes 2018) and their comparative-study code (method-spec 2.1).

128 x 128 input (tiles are area-downsampled; maps are up-sampled back). Encoder: 5x5 stride-2 convs with
min(128, w * 2^i) filters, BN, LeakyReLU, down to 8 x 8. Dense bottleneck: 1x1 conv to C/8, flatten, FC to z (128),
dropout 0.2, FC back, reshape, 1x1 conv. Decoder: 5x5 stride-2 transposed convs with max(32, 128 / 2^i) filters
(scaled by w / 32), BN, LeakyReLU, final 1x1 conv (linear). Loss: the code's per-image sum of L1, divided by the
pixel count so its scale matches the other models' learning rates (the same optimum).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wdmt.models.base import Batch, recon_error
from wdmt.models.common import ReconstructionModel


@dataclass(frozen=True)
class BaurAEConfig:
    in_channels: int = 1
    width: int = 32
    latent: int = 128
    dropout: float = 0.2
    native: int = 128


class BaurAE(ReconstructionModel):
    def __init__(self, cfg: BaurAEConfig = BaurAEConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.native = cfg.native
        stages = 4  # 128 -> 8
        enc, c = [], cfg.in_channels
        for i in range(stages):
            c_out = min(4 * cfg.width, cfg.width * 2**i)
            enc += [nn.Conv2d(c, c_out, 5, 2, 2), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            c = c_out
        self.encoder = nn.Sequential(*enc)
        self.side = cfg.native // 2**stages
        cb = max(1, c // 8)
        self.squeeze = nn.Conv2d(c, cb, 1)
        self.fc_in = nn.Linear(cb * self.side**2, cfg.latent)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc_out = nn.Linear(cfg.latent, cb * self.side**2)
        self.expand = nn.Conv2d(cb, c, 1)
        dec = [nn.BatchNorm2d(c), nn.ReLU(True)]
        for i in range(stages):
            c_out = max(cfg.width, (4 * cfg.width) // 2**i)
            dec += [
                nn.ConvTranspose2d(c, c_out, 5, 2, 2, output_padding=1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, True),
            ]
            c = c_out
        dec.append(nn.Conv2d(c, cfg.in_channels, 1))
        self.decoder = nn.Sequential(*dec)
        self._cb = cb

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.squeeze(self.encoder(x))
        z = self.drop(self.fc_in(h.flatten(1)))
        h = self.fc_out(z).view(-1, self._cb, self.side, self.side)
        return self.decoder(self.expand(h)), {}

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        recon, _ = self.reconstruct(self.to_native(batch.image))
        l1 = recon_error(recon.float(), self.to_native(batch.target), self.native_fov(batch), "l1")
        return l1, {"recon": float(l1.detach())}
