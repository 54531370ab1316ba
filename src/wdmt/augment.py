"""Training augmentation as the official code, in plain torch (no torchvision): paired flips, blur on the input.

The official pipeline flips image and HOG target together (p = 0.5 each, horizontal and vertical), then applies
``GaussianBlur(kernel_size=(5, 9), sigma ~ U[0.1, 5])`` to the image only: 5 px wide, 9 px tall, reflect padding,
one sigma per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def paired_flips(tensors: list[torch.Tensor | None], gen: torch.Generator) -> list[torch.Tensor | None]:
    """Flip every tensor of the list the same way, per sample: (B, C, H, W) each."""
    ref = next(t for t in tensors if t is not None)
    b = ref.shape[0]
    hflip = torch.rand(b, generator=gen) < 0.5
    vflip = torch.rand(b, generator=gen) < 0.5
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        t = torch.where(hflip.view(-1, 1, 1, 1), t.flip(-1), t)
        t = torch.where(vflip.view(-1, 1, 1, 1), t.flip(-2), t)
        out.append(t)
    return out


def _kernel1d(size: int, sigma: torch.Tensor) -> torch.Tensor:
    """(B, size) normalised Gaussian kernels, one per sigma."""
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, size)
    k = torch.exp(-0.5 * (x[None] / sigma[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: tuple[int, int] = (5, 9)) -> torch.Tensor:
    """Separable blur with a per-sample sigma; ``kernel`` is (width, height) as torchvision's GaussianBlur."""
    b, c, h, w = x.shape
    kx, ky = kernel
    gx = _kernel1d(kx, sigma).to(x).repeat_interleave(c, 0)[:, None, None, :]  # (B*C, 1, 1, kx)
    gy = _kernel1d(ky, sigma).to(x).repeat_interleave(c, 0)[:, None, :, None]  # (B*C, 1, ky, 1)
    y = x.reshape(1, b * c, h, w)
    y = F.pad(y, [kx // 2, kx // 2, ky // 2, ky // 2], mode="reflect")
    y = F.conv2d(y, gx, groups=b * c)
    y = F.conv2d(y, gy, groups=b * c)
    return y.reshape(b, c, h, w)


def random_blur(x: torch.Tensor, gen: torch.Generator, sigma_range: tuple[float, float] = (0.1, 5.0),
                kernel: tuple[int, int] = (5, 9)) -> torch.Tensor:
    """Blur every sample with its own sigma drawn uniformly from ``sigma_range``."""
    lo, hi = sigma_range
    sigma = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen)
    return gaussian_blur(x, sigma, kernel)
