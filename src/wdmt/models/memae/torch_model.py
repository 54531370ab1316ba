"""MemAE (Gong et al., ICCV 2019), 2D adaptation of the official 3D video network (method-spec 2.2).

Four stride-2 conv3x3 blocks (BN, LeakyReLU 0.2) take a 256 tile to 16 x 16 x 4w; a memory of ``slots`` prototypes
rebuilds every bottleneck vector; mirrored transposed convolutions decode, the last layer linear.
Loss: MSE + ``entropy_weight`` x the entropy of the memory addressing (official 0.0002). Our choice: S = 500 slots
(the paper's image setting; the video code's 2000 is for far larger data) with the official shrink threshold 0.0025
(just above 1/S, so most slots are cut to zero for each query).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wdmt.models.common import MemoryModule, ReconstructionModel


@dataclass(frozen=True)
class MemAEConfig:
    in_channels: int = 1
    width: int = 64
    slots: int = 500
    shrink: float = 0.0025
    entropy_weight: float = 0.0002


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, True))


class MemAE(ReconstructionModel):
    def __init__(self, cfg: MemAEConfig = MemAEConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.encoder = nn.Sequential(
            _down(cfg.in_channels, w), _down(w, 2 * w), _down(2 * w, 4 * w), _down(4 * w, 4 * w)
        )
        self.memory = MemoryModule(cfg.slots, 4 * w, cfg.shrink)
        self.decoder = nn.Sequential(
            _up(4 * w, 4 * w),
            _up(4 * w, 2 * w),
            _up(2 * w, w),
            nn.ConvTranspose2d(w, cfg.in_channels, 3, 2, 1, output_padding=1),
        )

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, entropy = self.memory(self.encoder(x))
        return self.decoder(z), {"entropy": self.cfg.entropy_weight * entropy}
