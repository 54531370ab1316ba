"""The U-shaped network family of WDMT-Net's Table 1, exactly as the official ``models.py`` (method-spec 1.4).

Encoder w-2w-4w-8w-8w of DoubleConv blocks (conv3x3 without bias, BN, ReLU, twice) with max-pooling; each decoder
step up-samples bilinearly (align_corners=True), mixes ``M = alpha * E + (1 - alpha) * U`` (the weight-decay skip),
concatenates ``[M, U.detach()]`` and applies a DoubleConv. A 1x1 head outputs the reconstruction (channel 0) and,
with a HOG head, the HOG prediction(s).

Gradient consequences, pinned by the tests: at alpha = 1 nothing below ``up4`` learns (``up1``-``up3``, ``down1``-
``down4``); only ``inc``, ``up4`` and ``outc`` do. At alpha < 1 every parameter gets gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.base import AnomalyModel, Batch, ModelOutput, recon_error, residual_map, topk_mean

SkipMode = Literal["off", "on", "decay"]
HogMode = Literal["none", "multi", "official"]


class DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None) -> None:
        c_mid = c_mid or c_out
        super().__init__(
            nn.Conv2d(c_in, c_mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(c_in, c_out))


class DecaySkipUp(nn.Module):
    """Up-sample the decoder feature, blend it with the skip by alpha, concatenate a detached copy, convolve."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = DoubleConv(2 * c_in, c_out, c_in)
        self.closed = False

    def close(self) -> None:
        """Inference form for alpha = 0: the block then sees ``[U, U]``, and conv(W, [U, U]) = conv(W_a + W_b, U), so
        the first conv takes U alone with its two weight halves summed. No blend, no concatenation, half the FLOPs of
        that conv (its measured effect: docs/performance.md, Inference)."""
        conv = self.conv[0]
        c = conv.in_channels // 2
        new = nn.Conv2d(c, conv.out_channels, conv.kernel_size, padding=conv.padding, bias=conv.bias is not None)
        with torch.no_grad():
            new.weight.copy_(conv.weight[:, :c] + conv.weight[:, c:])
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        self.conv[0] = new.to(conv.weight.device)
        self.closed = True

    def forward(self, d: torch.Tensor, e: torch.Tensor, alpha: float) -> torch.Tensor:
        u = F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=True)
        if u.shape[-2:] != e.shape[-2:]:  # odd sizes: pad as the official code (never at 256)
            dy, dx = e.shape[-2] - u.shape[-2], e.shape[-1] - u.shape[-1]
            u = F.pad(u, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        if self.closed:
            if alpha != 0.0:
                raise RuntimeError("this block was closed for inference at alpha = 0")
            return self.conv(u)
        m = alpha * e + (1.0 - alpha) * u
        return self.conv(torch.cat([m, u.detach()], dim=1))


@dataclass(frozen=True)
class WDMTConfig:
    """Args mirror :class:`WDMTNet`.

    Args:
        in_channels: 1 for grey or green, 3 for RGB.
        width: channels of the first level (official 64); the encoder is w-2w-4w-8w-8w.
        skip: ``off`` (alpha = 0: autoencoder), ``on`` (alpha = 1: official module with skips), ``decay``.
        delta: how much alpha falls per epoch under ``decay`` (Table 2: 0.005, 0.01, 0.025, 0.05, 0.1).
        hog: ``none``, ``multi`` (one output per HOG cell size: the paper's three resolutions) or ``official``
            (one channel regressed against a randomly drawn cell size, as the released code).
        hog_cells: number of HOG cell sizes (3: 4, 8, 16 px).
    """

    in_channels: int = 1
    width: int = 64
    skip: SkipMode = "decay"
    delta: float = 0.05
    hog: HogMode = "multi"
    hog_cells: int = 3


class WDMTNet(AnomalyModel):
    """The WDMT-Net family. ``alpha`` is a buffer so it is saved with the weights and restored on resume."""

    def __init__(self, cfg: WDMTConfig = WDMTConfig()) -> None:
        super().__init__()
        if cfg.skip not in ("off", "on", "decay") or cfg.hog not in ("none", "multi", "official"):
            raise ValueError(f"bad WDMT config {cfg}")
        self.cfg = cfg
        w = cfg.width
        self.inc = DoubleConv(cfg.in_channels, w)
        self.down1, self.down2 = Down(w, 2 * w), Down(2 * w, 4 * w)
        self.down3, self.down4 = Down(4 * w, 8 * w), Down(8 * w, 8 * w)
        self.up1, self.up2 = DecaySkipUp(8 * w, 4 * w), DecaySkipUp(4 * w, 2 * w)
        self.up3, self.up4 = DecaySkipUp(2 * w, w), DecaySkipUp(w, w)
        self.n_hog = {"none": 0, "multi": cfg.hog_cells, "official": 1}[cfg.hog]
        self.outc = nn.Conv2d(w, cfg.in_channels + self.n_hog, 1)
        self.register_buffer("alpha", torch.tensor({"off": 0.0, "on": 1.0, "decay": 1.0}[cfg.skip]))

    @property
    def needs_hog(self) -> bool:
        return self.n_hog > 0

    def forward(self, x: torch.Tensor, alpha: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (bottleneck z, head output); alpha defaults to the current schedule value."""
        a = float(self.alpha) if alpha is None else float(alpha)
        e1 = self.inc(x)
        e2 = self.down1(e1)
        e3 = self.down2(e2)
        e4 = self.down3(e3)
        z = self.down4(e4)
        d = self.up1(z, e4, a)
        d = self.up2(d, e3, a)
        d = self.up3(d, e2, a)
        d = self.up4(d, e1, a)
        return z, self.outc(d)

    # --- training ---------------------------------------------------------------------------------------------
    def on_train_iteration(self, iteration: int, iters_per_epoch: int) -> None:
        """Alpha falls by delta/N before every iteration, clipped at 0; the first iteration already uses 1 - delta/N."""
        if self.cfg.skip == "decay":
            self.alpha.fill_(max(0.0, 1.0 - self.cfg.delta * (iteration + 1) / iters_per_epoch))

    def fold_for_inference(self) -> None:
        """Once the skips are closed (alpha = 0: ``ae``, and WDMT-Net after its decay) the decoder is an autoencoder's:
        fold that algebra into the first conv of each up block, then batch norm as every model."""
        if float(self.alpha) == 0.0:
            for up in (self.up1, self.up2, self.up3, self.up4):
                up.close()
        super().fold_for_inference()

    def train_state(self) -> dict[str, float]:
        return {"alpha": float(self.alpha)}

    def selection_ready(self) -> bool:
        return self.cfg.skip != "decay" or float(self.alpha) == 0.0

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        _, out = self(batch.image)
        c = self.cfg.in_channels
        rec = recon_error(out[:, :c].float(), batch.target, batch.fov)
        if not self.n_hog:
            return rec, {"recon": float(rec.detach())}
        pred = out[:, c:].float()
        if self.cfg.hog == "official":
            target = batch.hog.gather(1, batch.hog_index.view(-1, 1, 1, 1).expand(-1, 1, *batch.hog.shape[-2:]))
        else:
            target = batch.hog
        hog = recon_error(pred, target, batch.fov)
        return rec + hog, {"recon": float(rec.detach()), "hog": float(hog.detach())}

    # --- scoring ----------------------------------------------------------------------------------------------
    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon = self(x)[1][:, : self.cfg.in_channels].float()
        return residual_map(x.float(), recon), recon

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        z, out = self(x)
        c = self.cfg.in_channels
        recon = out[:, :c].float()
        amap = residual_map(x.float(), recon)
        dist = None
        if with_latent:  # GatingAno's second pass: distance to the bottleneck of the reconstruction
            z2, _ = self(recon.to(x.dtype))
            dist = (z.float() - z2.float()).flatten(1).norm(dim=1)
        return ModelOutput(recon=recon, anomaly_map=amap, score=topk_mean(amap),
                           hog=out[:, c:].float() if self.n_hog else None, latent_distance=dist)
