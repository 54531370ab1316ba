"""Local colour contrast: how much darker (or brighter) each pixel is than the retina around it (not in the paper).

Why a hand-made map beside learnt ones: on IDRiD every learnt model ranks haemorrhages, half of the lesion pixels,
at 0.52-0.69 against healthy retina (docs/methods.md), and no pooled pixel AUROC can pass about 0.85 while they stay
there. Haemorrhages and microaneurysms are, first of all, retina that is darker in the green channel than its
surroundings (green carries red-lesion contrast in fundus photographs; the usual hand-made red-lesion detectors
start from the green channel against a smoothed background). This model is that cue and nothing more:

* contrast: ``log(g / b)`` with ``g`` the green channel (grey for one channel) and ``b`` its background, a Gaussian
  of ``background_sigma`` px normalised over the field of view (so the black surround does not darken the rim's
  background); the FOV is where any channel exceeds ``fov_threshold``, as the datasets detect it;
* fit (one pass over the training normals, no gradient step, like PaDiM): the mean and standard deviation of the
  contrast per cell of a ``grid`` x ``grid`` lattice over the picture, so that what is usual at a place (the disc's
  brightness, the vessel density of the arcades) is discounted there; the pictures are not flipped (the registry's
  ``_PER_PLACE_FIT``, shared with PaDiM, says why);
* map: the standardised contrast, its dark side (``polarity`` ``dark``), its bright side (``bright``: exudates) or
  both (``both``, the default: the absolute value), zero outside the FOV, smoothed by ``smooth_sigma`` px; image
  score: its maximum.

Vessels are dark too, and with them in it the map is a poor detector (docs/methods.md: pixel AUROC 0.57 inside the
FOV on IDRiD, 3 seeds; 0.72 without them, with the defaults). ``vessel_line`` > 0 takes them out of the dark side,
the way the classic microaneurysm detectors do (a top-hat with linear structuring elements): a vessel is long and
thin, so some straight segment of ``vessel_line`` px fits inside it at some angle and a grey opening along that
segment keeps it, while a blot or a dot shorter than the segment in every direction is erased by the opening at
every angle. The dark side minus its largest opening over ``vessel_angles`` angles is what is dark and not
line-like. Haemorrhages wider than the segment are lost with the vessels, so the segment is set longer than most blots;
where vessels bend sharply a piece of them stays. ``blob_width`` > 0 gives wide blots back: the dark side's opening
by a square of that side keeps what is wider than a vessel in every direction (a blot haemorrhage; also the fovea,
where a photograph's macula is darker than the training normals' at that place).

It is meant as the prior of ``wdmt fuse``, which lays the lesion segmenter's findings over a small share of it.
``polarity``, ``vessel_line``, ``blob_width``, ``background_sigma`` and the weight are chosen on the proxy validation
set. A wide background matters for the large blots: with a Gaussian of 12 px a blot 30 px across is a good part of its
own background and its centre hardly stands out; 32 px was the proxy's choice (docs/methods.md). There is no
reconstruction: ``ModelOutput.recon`` is the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from wdmt.models.base import AnomalyModel, Batch, ModelOutput, StepResult
from wdmt.models.features import cell_index, smooth


def _line_offsets(length: int, angle: float) -> list[tuple[int, int]]:
    """The (dy, dx) pixels of a straight segment of ``length`` px through the origin at ``angle`` radians."""
    half = (length - 1) / 2
    steps = [i - half for i in range(length)]
    return sorted({(round(t * math.sin(angle)), round(t * math.cos(angle))) for t in steps})


def _shifted(x: torch.Tensor, offsets: list[tuple[int, int]], outside: float) -> list[torch.Tensor]:
    """(B, 1, H, W) ``x`` shifted by each pixel offset of a flat element, ``outside`` beyond the picture. Slices of one
    padded copy: constant shapes, so it traces for ONNX."""
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    h, w = x.shape[-2:]
    y = F.pad(x, [r] * 4, value=outside)
    return [y[..., r + dy:r + dy + h, r + dx:r + dx + w] for dy, dx in offsets]


def _shifted_extreme(x: torch.Tensor, offsets: list[tuple[int, int]], lowest: bool) -> torch.Tensor:
    """Grey erosion (``lowest``) or dilation of ``x`` by a flat element given as pixel offsets; the outside of the
    picture never wins."""
    parts = _shifted(x, offsets, float("inf") if lowest else float("-inf"))
    out = parts[0]
    for p in parts[1:]:
        out = torch.minimum(out, p) if lowest else torch.maximum(out, p)
    return out


def line_opening(x: torch.Tensor, length: int, angles: int) -> torch.Tensor:
    """The largest grey opening of ``x`` by a straight segment of ``length`` px over ``angles`` directions: what of
    ``x`` is line-like (a vessel) rather than a blot."""
    out = torch.zeros_like(x)
    for k in range(angles):
        offsets = _line_offsets(length, math.pi * k / angles)
        opened = _shifted_extreme(_shifted_extreme(x, offsets, True), offsets, False)
        out = torch.maximum(out, opened)
    return out


def _shifted_mean(x: torch.Tensor, offsets: list[tuple[int, int]]) -> torch.Tensor:
    """Mean of ``x`` over a flat element given as pixel offsets, zero outside the picture."""
    parts = _shifted(x, offsets, 0.0)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out / len(parts)


def line_mean_excess(x: torch.Tensor, length: int, angles: int) -> torch.Tensor:
    """How much the mean of ``x`` along the best of ``angles`` straight segments of ``length`` px exceeds its mean
    over the ``length`` x ``length`` square around each pixel (the line detector of Ricci and Perfetti, 2007): large
    on a vessel, which fills a segment along it and a thin share of the square; near zero inside a blot that fills
    both, and small on a dot that fills neither. Means, not openings, so a blot wider than the segment is kept."""
    k = length | 1
    best = torch.full_like(x, float("-inf"))
    for a in range(angles):
        best = torch.maximum(best, _shifted_mean(x, _line_offsets(k, math.pi * a / angles)))
    # the square's mean as a row mean of column means: k + k additions a pixel, not k * k
    square = F.avg_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0), count_include_pad=True)
    square = F.avg_pool2d(square, (1, k), stride=1, padding=(0, k // 2), count_include_pad=True)
    return (best - square).clamp_min(0)


def square_opening(x: torch.Tensor, side: int) -> torch.Tensor:
    """Grey opening of (B, 1, H, W) ``x`` by a ``side`` x ``side`` square (odd sides; an even one grows by 1): what
    of ``x`` is wider than the square in every direction. Max pooling both ways, so it traces for ONNX."""
    k = side | 1

    def dilate(y: torch.Tensor) -> torch.Tensor:  # a square's maximum is a row's maximum of column maxima
        y = F.max_pool2d(F.pad(y, [k // 2, k // 2, 0, 0], value=float("-inf")), (1, k), stride=1)
        return F.max_pool2d(F.pad(y, [0, 0, k // 2, k // 2], value=float("-inf")), (k, 1), stride=1)

    return dilate(-dilate(-x))


EPS = 0.02  # keeps log(g / b) finite where the retina is near black (dark corners of a photograph)


@dataclass(frozen=True)
class ContrastConfig:
    in_channels: int = 3
    background_sigma: float = 32.0  # px: the proxy's choice of 12-48 (contrast_background.py); 12 was the first
    smooth_sigma: float = 2.0  # px, of the map
    grid: int = 24  # cells per side over the picture, as PaDiM's
    polarity: Literal["dark", "bright", "both"] = "both"  # the proxy's choice, as vessel_line's (docs/methods.md)
    fov_threshold: float = 0.04
    vessel_line: int = 31  # px, length of the line that erases vessels from the dark side; 0: keep them
    vessel_angles: int = 12  # directions of that line over 180 degrees
    # how the line finds vessels: "opening" (a top-hat: what the line fits inside at some angle) or "mean" (the line
    # detector: a line's mean above its square's; keeps blots wider than the line, which the opening erases)
    vessel_detector: Literal["opening", "mean"] = "opening"
    blob_width: int = 17  # px, side of a square: dark blots wider than it stay whatever the line says; 0: none


class LocalContrast(AnomalyModel):
    uses_default_step = False

    def __init__(self, cfg: ContrastConfig = ContrastConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        cells = cfg.grid * cfg.grid
        self.register_buffer("mean", torch.zeros(cells))
        self.register_buffer("std", torch.ones(cells))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._sums: torch.Tensor | None = None  # (3, cells): count, sum, sum of squares, float64

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        return []

    def fold_for_inference(self) -> None:
        """Nothing to fold: no layers."""

    def contrast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) pictures in [0, 1] -> (log contrast (B, 1, H, W), FOV (B, 1, H, W) in {0, 1})."""
        x = x.float()
        g = x[:, 1:2] if x.shape[1] == 3 else x[:, :1]
        fov = (x.amax(1, keepdim=True) > self.cfg.fov_threshold).float()
        sigma = self.cfg.background_sigma
        background = smooth(g * fov, sigma, zero_pad=True) / smooth(fov, sigma, zero_pad=True).clamp_min(1e-3)
        return torch.log((g + EPS) / (background + EPS)) * fov, fov

    def _cells(self, c: torch.Tensor) -> torch.Tensor:
        """(H, W) cell of every pixel of (B, 1, H, W) maps, on their device."""
        return cell_index(*c.shape[-2:], self.cfg.grid).view(c.shape[-2:]).to(c.device)

    def training_step(self, batch: Batch, optimizers: list[torch.optim.Optimizer], autocast: Any,
                      loss_fn: Any = None) -> StepResult:
        """Add the clean pictures' FOV pixels to each cell's count, sum and sum of squares."""
        with torch.no_grad():
            c, fov = self.contrast(batch.target)
        inside = fov[:, 0] > 0
        idx = self._cells(c).expand_as(inside)[inside].cpu()
        v = c[:, 0][inside].double().cpu()
        if self._sums is None:
            self._sums = torch.zeros(3, self.cfg.grid**2, dtype=torch.float64)
        for row, values in enumerate((torch.ones_like(v), v, v * v)):
            self._sums[row].index_add_(0, idx, values)
        return StepResult({"loss": 0.0})

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        if epoch < epochs or self._sums is None:
            return
        n, s1, s2 = self._sums
        self._sums = None
        seen = n > 1
        mean = torch.where(seen, s1 / n.clamp_min(1), 0.0)
        var = torch.where(seen, (s2 - n * mean**2) / (n - 1).clamp_min(1), 0.0)
        # a cell no normal covered (outside every FOV) borrows the median spread of the others
        std = var.clamp_min(0).sqrt()
        fallback = std[seen].median() if seen.any() else torch.tensor(1.0, dtype=std.dtype)
        self.mean.copy_(mean.float())
        self.std.copy_(torch.where(seen, std, fallback).clamp_min(1e-3).float())
        self.fitted.fill_(True)

    def train_state(self) -> dict[str, float]:
        return {"fitted": float(self.fitted)}

    def sides(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dark side without the vessels, bright side, FOV), each (B, 1, H, W), unsmoothed: the map before
        ``polarity`` picks from it."""
        if not bool(self.fitted):
            raise RuntimeError("the contrast model has no cell statistics: fit it first (one training epoch)")
        c, fov = self.contrast(x)
        idx = self._cells(c)
        z = (c - self.mean[idx]) / self.std[idx]
        dark, bright = (-z).clamp_min(0) * fov, z.clamp_min(0) * fov
        if self.cfg.vessel_line > 0:
            find = line_opening if self.cfg.vessel_detector == "opening" else line_mean_excess
            rest = (dark - find(dark, self.cfg.vessel_line, self.cfg.vessel_angles)).clamp_min(0)
            dark = torch.maximum(rest, square_opening(dark, self.cfg.blob_width)) if self.cfg.blob_width > 0 else rest
        return dark, bright, fov

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dark, bright, fov = self.sides(x)
        side = {"dark": dark, "bright": bright, "both": torch.maximum(dark, bright)}[self.cfg.polarity]
        return smooth(side, self.cfg.smooth_sigma) * fov, x

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon = self.maps(x)
        return ModelOutput(recon=recon.float(), anomaly_map=amap, score=amap.flatten(1).amax(1))
