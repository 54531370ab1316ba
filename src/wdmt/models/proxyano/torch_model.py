"""ProxyAno (Zhou et al., IEEE TMI 2021). No public code: built from the paper's abstract (method-spec 2.9).

The proxy is a superpixel image (SI): SLIC over the tile (scikit-image), each superpixel filled with its mean
intensity. A Proxy Extraction Module (PEM: encoder-decoder with a MemAE memory in its bottleneck) maps x -> SI; it
memorises the normal image-to-SI correspondence, so abnormal inputs lose their lesions. An Image Reconstruction Module
(IRM: encoder-decoder) maps SI -> x. Pseudo-anomalies teach the IRM to ignore foreign content: a random patch of
another tile of the batch is pasted into the SI, and the IRM must still produce the normal tile. Inference:
x -> PEM -> SI_hat -> IRM -> x_hat, pixel map |x - x_hat|.

Our choices, all labelled as ours since the paper's are unknown to us:
- Geometry: 128 px (tiles area-downsampled) with 100 SLIC segments at compactness 10, i.e. ~400 per 256 tile.
- Memory: S = 500 slots, shrink threshold 1/S.
- Networks: skip-free encoder-decoders with 4 down stages.
- Losses: MSE for the PEM plus 0.0002 x memory entropy; L1 for the IRM.
- Pseudo-anomaly patches: 8-32 px at 128 (16-64 at 256), pasted with probability 0.5.
- Schedule: the PEM, the IRM on true SIs, and the chain IRM(PEM(x)) train jointly from the start (one stage instead
  of the suggested two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import slic
from torch import nn

from wdmt.models.base import Batch, recon_error
from wdmt.models.common import MemoryModule, ReconstructionModel


@dataclass(frozen=True)
class ProxyAnoConfig:
    in_channels: int = 1
    width: int = 32
    native: int = 128
    segments: int = 100
    compactness: float = 10.0
    slots: int = 500
    entropy_weight: float = 0.0002
    paste_prob: float = 0.5


def superpixel_image(x: torch.Tensor, segments: int, compactness: float) -> torch.Tensor:
    """SLIC superpixels of each sample, filled with their mean intensity: (B, C, H, W) in, same out."""
    out = np.empty(tuple(x.shape), np.float32)
    arr = x.detach().float().cpu().numpy()
    for i in range(arr.shape[0]):
        img = arr[i].transpose(1, 2, 0)
        multichannel = img.shape[2] > 1
        lab = slic(img if multichannel else img[..., 0], n_segments=segments, compactness=compactness,
                   channel_axis=-1 if multichannel else None, start_label=0, enforce_connectivity=True)
        counts = np.bincount(lab.ravel())
        for c in range(img.shape[2]):
            means = np.bincount(lab.ravel(), weights=img[..., c].ravel()) / np.maximum(counts, 1)
            out[i, c] = means[lab]
    return torch.from_numpy(out).to(x.device)


def _enc(c_in: int, w: int) -> nn.Sequential:
    chans = [c_in, w, 2 * w, 4 * w, 4 * w]
    layers: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:], strict=True):
        layers += [nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers)


def _dec(w: int, c_out: int) -> nn.Sequential:
    chans = [4 * w, 4 * w, 2 * w, w]
    layers: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:], strict=True):
        layers += [
            nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1, bias=False),
            nn.BatchNorm2d(b),
            nn.LeakyReLU(0.2, True),
        ]
    layers.append(nn.ConvTranspose2d(w, c_out, 3, 2, 1, output_padding=1))
    return nn.Sequential(*layers)


class ProxyAno(ReconstructionModel):
    def __init__(self, cfg: ProxyAnoConfig = ProxyAnoConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.native = cfg.native
        w = cfg.width
        self.pem_enc, self.pem_dec = _enc(cfg.in_channels, w), _dec(w, cfg.in_channels)
        self.memory = MemoryModule(cfg.slots, 4 * w, 1.0 / cfg.slots)
        self.irm_enc, self.irm_dec = _enc(cfg.in_channels, w), _dec(w, cfg.in_channels)

    def pem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, entropy = self.memory(self.pem_enc(x))
        return self.pem_dec(z), entropy

    def irm(self, si: torch.Tensor) -> torch.Tensor:
        return self.irm_dec(self.irm_enc(si))

    def _paste(self, si: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """Pseudo-anomalies: a random patch of another sample pasted into half of the superpixel images."""
        out = si.clone()
        b, _, h, w = si.shape
        for i in range(b):
            if torch.rand(1).item() >= self.cfg.paste_prob or b < 2:
                continue
            s = int(torch.randint(h // 16, h // 4 + 1, (1,)))
            y, x = (int(v) for v in torch.randint(0, h - s + 1, (2,)))
            sy, sx = (int(v) for v in torch.randint(0, h - s + 1, (2,)))
            j = (i + 1 + int(torch.randint(0, b - 1, (1,)))) % b
            out[i, :, y : y + s, x : x + s] = src[j, :, sy : sy + s, sx : sx + s]
        return out

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x = self.to_native(batch.image)
        target = self.to_native(batch.target)
        si = superpixel_image(x, self.cfg.segments, self.cfg.compactness)
        si_hat, entropy = self.pem(x)
        l_pem = F.mse_loss(si_hat, si)
        fov = self.native_fov(batch)
        l_irm = recon_error(self.irm(self._paste(si, x)), target, fov, "l1")
        recon = self.irm(si_hat)
        l_chain = recon_error(recon, target, fov, "l1")
        total = l_pem + self.cfg.entropy_weight * entropy + l_irm + l_chain
        return total, {"recon": float(l_chain.detach()), "pem": float(l_pem.detach()), "irm": float(l_irm.detach())}

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        si_hat, _ = self.pem(x)
        return self.irm(si_hat), {}
