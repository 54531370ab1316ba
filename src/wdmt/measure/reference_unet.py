"""The official WDMT-Net network written out plainly, as the released ``models.py`` does it (method-spec 1.4).

Plain NCHW, eager, no fused or in-place tricks: the baseline ``throughput.py`` measures our implementation
against. Not used by the package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None) -> None:
        super().__init__()
        c_mid = c_mid or c_out
        self.double_conv = nn.Sequential(
            nn.Conv2d(c_in, c_mid, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_mid), nn.ReLU(),
            nn.Conv2d(c_mid, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(2 * c_in, c_out, c_in)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, alpha: float) -> torch.Tensor:
        x1 = self.up(x1)
        dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        x2 = alpha * x2 + (1 - alpha) * x1
        x1_ = x1.detach()
        return self.conv(torch.cat([x2, x1_], dim=1))


class UNetCut(nn.Module):
    def __init__(self, n_channels: int = 1, n_classes: int = 2, width: int = 64) -> None:
        super().__init__()
        w = width
        self.inc = DoubleConv(n_channels, w)
        self.down1, self.down2, self.down3, self.down4 = (
            Down(w, 2 * w),
            Down(2 * w, 4 * w),
            Down(4 * w, 8 * w),
            Down(8 * w, 8 * w),
        )
        self.up1, self.up2, self.up3, self.up4 = Up(8 * w, 4 * w), Up(4 * w, 2 * w), Up(2 * w, w), Up(w, w)
        self.outc = nn.Conv2d(w, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4, alpha)
        x = self.up2(x, x3, alpha)
        x = self.up3(x, x2, alpha)
        x = self.up4(x, x1, alpha)
        return x5, self.outc(x)
