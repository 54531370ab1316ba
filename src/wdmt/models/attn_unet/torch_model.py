"""Attention U-Net (Oktay et al., MIDL 2018) as a reconstruction network (method-spec 2.4).

A U-Net of double conv3x3-BN-ReLU blocks (w, 2w, 4w, 8w, 16w; official filters 64..1024 / feature_scale), max-pool
down, transposed-conv up. Every skip passes an additive attention gate whose gating signal is the decoder feature
one level below (the common "AttU_Net" form; the official grid variant gates levels 2-4 from the bottleneck only).
The gate: theta(x) (kernel = stride = 2, no bias) + phi(g) (1x1), ReLU, psi (1x1 -> 1), sigmoid, resampled to x,
then W (1x1 conv + BN) of a * x. One linear output channel, MSE, score |x - x_hat|.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.common import ReconstructionModel
from wdmt.models.wdmt_net.torch_model import DoubleConv


@dataclass(frozen=True)
class AttnUNetConfig:
    in_channels: int = 1
    width: int = 16  # official default 64 / feature_scale 4


class AttentionGate(nn.Module):
    def __init__(self, c_x: int, c_g: int, c_inter: int) -> None:
        super().__init__()
        self.theta = nn.Conv2d(c_x, c_inter, 2, 2, bias=False)
        self.phi = nn.Conv2d(c_g, c_inter, 1)
        self.psi = nn.Conv2d(c_inter, 1, 1)
        self.out = nn.Sequential(nn.Conv2d(c_x, c_x, 1), nn.BatchNorm2d(c_x))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        t = self.theta(x)
        p = F.interpolate(self.phi(g), size=t.shape[-2:], mode="bilinear", align_corners=False)
        a = torch.sigmoid(self.psi(F.relu(t + p)))
        a = F.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(a * x)


class AttnUNet(ReconstructionModel):
    def __init__(self, cfg: AttnUNetConfig = AttnUNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        f = [cfg.width * 2**i for i in range(5)]
        self.enc = nn.ModuleList([DoubleConv(cfg.in_channels, f[0])] + [DoubleConv(f[i], f[i + 1]) for i in range(4)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(f[i + 1], f[i], 2, 2) for i in range(4)])
        self.gates = nn.ModuleList([AttentionGate(f[i], f[i + 1], f[i]) for i in range(4)])
        self.dec = nn.ModuleList([DoubleConv(2 * f[i], f[i]) for i in range(4)])
        self.head = nn.Conv2d(f[0], cfg.in_channels, 1)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            h = block(h if i == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        d = skips[-1]
        for i in reversed(range(4)):
            gated = self.gates[i](skips[i], d)
            d = self.dec[i](torch.cat([gated, self.ups[i](d)], dim=1))
        return self.head(d), {}
