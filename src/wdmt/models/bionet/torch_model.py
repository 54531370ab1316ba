"""BiO-Net (Xiang et al., MICCAI 2020) as a reconstruction network, after the official PyTorch model (method-spec 2.3).

Bi-directional O-shaped U-Net: the encoder, decoder and their weights are reused for ``iterations`` passes; in
every pass after the first, each encoder level also receives the decoder's "backward" feature of the same
resolution from the previous pass. Every conv is 3x3 followed by ReLU then BatchNorm (momentum 0.01, Keras-style).
Filters w * 2^i for i = 0..4 over 4 levels; a pre-block halves the tile, the last decoder step restores it; the
post-block ends in a 1x1 conv and a sigmoid (inputs are in [0, 1]). Our choices: t = 2 iterations (the class
default), no "integrate", MSE loss with Adam (the official BCE and lr 0.01 are for segmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.common import ReconstructionModel


@dataclass(frozen=True)
class BiONetConfig:
    in_channels: int = 1
    width: int = 32
    iterations: int = 2
    levels: int = 4


def _crb(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(c_out, momentum=0.01))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), nn.ReLU(True),
                         nn.BatchNorm2d(c_out, momentum=0.01))


class BiONet(ReconstructionModel):
    def __init__(self, cfg: BiONetConfig = BiONetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        L = cfg.levels
        f = [cfg.width * 2**i for i in range(L + 1)]
        self.pre = nn.Sequential(_crb(cfg.in_channels, f[0]), _crb(f[0], f[0]), _crb(f[0], f[0]))
        self.enc = nn.ModuleList([nn.Sequential(_crb(2 * f[lv], f[lv]), _crb(f[lv], f[lv])) for lv in range(L)])
        self.enc_down = nn.ModuleList([_crb(f[lv], f[lv + 1]) for lv in range(L)])
        self.middle = nn.Sequential(_crb(f[L], f[L]), _crb(f[L], f[L]), _up(f[L], f[L - 1]))
        # decoder level lv works at the resolution of encoder level L-1-lv
        self.dec = nn.ModuleList(
            [
                nn.Sequential(_crb(2 * f[L - 1 - lv], f[L - 1 - lv]), _crb(f[L - 1 - lv], f[L - 1 - lv]))
                for lv in range(L)
            ]
        )
        self.dec_up = nn.ModuleList([_up(f[L - 1 - lv], f[max(L - 2 - lv, 0)]) for lv in range(L)])
        self.post = nn.Sequential(_crb(f[0], f[0]), _crb(f[0], f[0]), nn.Conv2d(f[0], cfg.in_channels, 1))

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        L = self.cfg.levels
        h0 = F.max_pool2d(self.pre(x), 2)
        backward: list[torch.Tensor | None] = [None] * L
        for _ in range(self.cfg.iterations):
            h, skips = h0, []
            for lv in range(L):
                b = backward[L - 1 - lv]
                s = self.enc[lv](torch.cat([h, h if b is None else b], dim=1))
                skips.append(s)
                h = F.max_pool2d(self.enc_down[lv](s), 2)
            d = self.middle(h)
            for lv in range(L):
                back = self.dec[lv](torch.cat([d, skips[L - 1 - lv]], dim=1))
                backward[lv] = back
                d = self.dec_up[lv](back)
        return torch.sigmoid(self.post(d)), {}
