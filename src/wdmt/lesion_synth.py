"""Lesions pasted into training tiles on the fly, with exact masks, for the self-supervised detectors.

DRAEM (Zavrtanik et al., ICCV 2021) trains on normal images into which anomalies are pasted: Perlin-noise shapes
filled with foreign texture. A network trained that way learns "whatever is locally unlike normal retina", not
the look of one painter's lesions, which is what must transfer to real disease it never sees. The painter of
:mod:`wdmt.synth` (used for the proxy validation set) draws flat, sharp-edged blobs that a segmentation network
learns to find too easily (proxy AP 0.43 for PatchCore against 0.19 on real lesions), so training uses this
generic generator instead, and the proxy set stays an independent check.

Per sample, with probability ``p`` (DRAEM: 0.5):

* the shape: smooth noise (value noise at a random scale of 8-64 px, bilinearly up-sampled) thresholded at a random
  quantile so that 0.2-6 % of the field of view is covered, plus a few small discs of radius 1-4 px (the size of
  microaneurysms and dot haemorrhages at 768 px); its edge feathered by a Gaussian, opacity 0.5-1;
* the content, one of: darker and redder (blood), brighter and yellower (exudates, drusen), the tile's own texture
  from elsewhere (a shifted copy: wrong structure, right colours), or a heavily blurred copy (oedema, haze);
* the label: pixels whose opacity exceeds 0.25, inside the field of view.

Three styles (``TrainConfig.synth_style``):

* ``generic`` (the first one): the four contents equally likely, "dark" being the tile times 0.3-0.75 (green and blue
  a further 0.7). Its lesions are far darker than any vessel, so a segmenter trained on it learnt "much darker than
  a vessel": on IDRiD it ranked real haemorrhages, half the lesion pixels, at chance (AUROC 0.52, seeds 5-7,
  docs/methods.md). It stays the default, so that every run trained with it reproduces.
* ``fundus``: the same, but "dark" becomes red lesions drawn as the literature describes them (e.g. the IDRiD and
  DiaretDB papers): blots, dots and flame shapes along a random direction, their inside the smoothed local
  background (a haemorrhage hides the choroid beneath it) darkened most in green and blue (green carries red-lesion
  contrast; the red channel barely changes), so that they are about as dark as a vessel, which leaves shape as the
  cue. Red lesions are 40 % of lesioned tiles instead of 25 %. Designed before any test result was read, from what
  fundus photographs look like, not from IDRiD's lesion masks.
* ``fundus-wide``: ``fundus`` with red lesions across their clinical range: blots up to about one disc diameter
  (noise at 8-64 px covering up to 10 % of the tile; a large blot haemorrhage) in 80 % of red samples, and a
  fainter end (green x up to 0.85), on 50 % of lesioned tiles. Made because the ``fundus`` segmenter ranked real
  haemorrhages, half of IDRiD's lesion pixels, barely above healthy retina (0.52-0.66, a test diagnostic of
  docs/methods.md); its ranges were fixed before it was trained (studies/2026-11-red-lesions, part 9).

Everything is drawn from the run's generator, so a seed fixes the tiles bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wdmt.augment import gaussian_blur

KINDS = ("dark", "bright", "shift", "blur")


@dataclass(frozen=True)
class RedRange:
    """How a style draws red lesions: their share of lesioned tiles, the share of red samples with a blot, the blot's
    noise scale (log2 px) and cover of the tile, and the blood's darkening factor per channel (R, G, B; gray)."""

    share: float = 0.4
    blot_p: float = 0.5
    blot_octaves: tuple[float, float] = (3, 5)
    blot_cover: tuple[float, float] = (0.002, 0.03)
    factor: tuple[tuple[float, float], ...] = ((0.7, 0.95), (0.35, 0.75), (0.4, 0.85))
    gray: tuple[float, float] = (0.45, 0.8)


RED = {"fundus": RedRange(),
       "fundus-wide": RedRange(share=0.5, blot_p=0.8, blot_octaves=(3, 6), blot_cover=(0.002, 0.10),
                               factor=((0.7, 0.97), (0.35, 0.85), (0.4, 0.9)), gray=(0.45, 0.88))}


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _blob(h: int, w: int, gen: torch.Generator, octaves: tuple[float, float] = (3, 6),
          cover: tuple[float, float] = (0.002, 0.06)) -> torch.Tensor:
    """(1, H, W) one binary blob shape: value noise at a scale of 2^U(octaves) px, thresholded so that a share
    U(cover) of the tile is inside."""
    scale = int(2 ** _uniform(1, *octaves, gen).item())
    noise = torch.rand(1, 1, max(2, h // scale + 1), max(2, w // scale + 1), generator=gen)
    smooth = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)
    share = _uniform(1, *cover, gen).item()
    return (smooth >= torch.quantile(smooth.flatten(), 1 - share)).float()[0]


def _blobs(b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) one blob per sample, 8-64 px noise, 0.2-6 % of the tile."""
    return torch.stack([_blob(h, w, gen) for _ in range(b)])


def _discs(b: int, h: int, w: int, gen: torch.Generator, counts: tuple[int, int] = (0, 8),
           radius: tuple[float, float] = (1.0, 4.0)) -> torch.Tensor:
    """(B, 1, H, W) a number in ``counts`` (inclusive) of small discs per sample, of a radius in ``radius`` px."""
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    out = torch.zeros(b, 1, h, w)
    for i in range(b):
        n = int(torch.randint(counts[0], counts[1] + 1, (1,), generator=gen))
        for _ in range(n):
            cy, cx = torch.rand(2, generator=gen) * torch.tensor([h, w])
            r = _uniform(1, *radius, gen)
            out[i, 0] = torch.maximum(out[i, 0], (((yy - cy) ** 2 + (xx - cx) ** 2) <= r**2).float())
    return out


def _content(img: torch.Tensor, kind: int, gen: torch.Generator) -> torch.Tensor:
    """What fills the shape for one sample (C, H, W) in [0, 1]."""
    c = img.shape[0]
    if KINDS[kind] == "dark":
        tint = torch.tensor([1.0, 0.7, 0.7])[:c] if c == 3 else torch.ones(1)
        return img * _uniform(1, 0.3, 0.75, gen).item() * tint.view(-1, 1, 1)
    if KINDS[kind] == "bright":
        tint = torch.tensor([1.0, 0.9, 0.3])[:c] if c == 3 else torch.ones(1)
        return (img + _uniform(1, 0.15, 0.5, gen).item() * tint.view(-1, 1, 1)).clamp(0, 1)
    if KINDS[kind] == "shift":
        dy, dx = (int(v) for v in torch.randint(img.shape[-1] // 8, img.shape[-1] // 2, (2,), generator=gen))
        return img.roll((dy, dx), dims=(-2, -1))
    k = 2 * (img.shape[-1] // 16) + 1
    return gaussian_blur(img[None], _uniform(1, 3.0, 8.0, gen), (k, k))[0]


def _ellipses(b: int, h: int, w: int, gen: torch.Generator, most: int = 4) -> torch.Tensor:
    """(B, 1, H, W) a few flame shapes per sample: ellipses 8-30 px long, 2-5 px wide, at a random angle."""
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    out = torch.zeros(b, 1, h, w)
    for i in range(b):
        for _ in range(int(torch.randint(0, most + 1, (1,), generator=gen))):
            cy, cx = torch.rand(2, generator=gen) * torch.tensor([h, w])
            length, width = _uniform(1, 8.0, 30.0, gen), _uniform(1, 2.0, 5.0, gen)
            angle = _uniform(1, 0.0, 3.14159, gen)
            u = (xx - cx) * torch.cos(angle) + (yy - cy) * torch.sin(angle)
            v = -(xx - cx) * torch.sin(angle) + (yy - cy) * torch.cos(angle)
            out[i, 0] = torch.maximum(out[i, 0], ((u / length) ** 2 + (v / width) ** 2 <= 1).float())
    return out


def _red_shapes(b: int, h: int, w: int, gen: torch.Generator, red: RedRange) -> torch.Tensor:
    """(B, 1, H, W) red-lesion shapes: blots (smooth noise, of the style's scale and cover) for a share of the
    samples, dots (radius 1.5-6 px, up to 15) and flames."""
    blots = torch.zeros(b, 1, h, w)
    for i in range(b):
        if torch.rand(1, generator=gen).item() < red.blot_p:
            blots[i] = _blob(h, w, gen, octaves=red.blot_octaves, cover=red.blot_cover)
    dots = _discs(b, h, w, gen, counts=(1, 15), radius=(1.5, 6.0))
    return torch.maximum(torch.maximum(blots, dots), _ellipses(b, h, w, gen))


def _blood(img: torch.Tensor, gen: torch.Generator, red: RedRange) -> torch.Tensor:
    """A red lesion's inside for one sample (C, H, W): the smoothed local background, darkened channel by channel."""
    k = 2 * (img.shape[-1] // 32) + 1
    background = gaussian_blur(img[None], _uniform(1, 2.0, 4.0, gen), (k, k))[0]
    if img.shape[0] == 3:
        factor = torch.stack([_uniform(1, lo, hi, gen) for lo, hi in red.factor])
    else:
        factor = _uniform(1, *red.gray, gen).view(1)
    return background * factor.view(-1, 1, 1)


STYLES = ("generic", *RED)


def paste_lesions(img: torch.Tensor, fov: torch.Tensor | None, gen: torch.Generator,
                  p: float = 0.5, style: str = "generic") -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) tiles in [0, 1] and their FOV (B, 1, H, W) -> (tiles with lesions, lesion masks (B, 1, H, W))."""
    if style not in STYLES:
        raise ValueError(f"unknown lesion style {style!r}; known: {', '.join(STYLES)}")
    b, _, h, w = img.shape
    inside = torch.ones(b, 1, h, w) if fov is None else (fov > 0.5).float()
    shape = torch.maximum(_blobs(b, h, w, gen), _discs(b, h, w, gen))
    red = RED.get(style)
    if red is not None:
        rest = (1 - red.share) / 3
        kinds = torch.multinomial(torch.tensor([red.share, rest, rest, rest]), b, replacement=True, generator=gen)
        is_red = (kinds == KINDS.index("dark")).float().view(-1, 1, 1, 1)
        shape = is_red * _red_shapes(b, h, w, gen, red) + (1 - is_red) * shape
    shape = shape * inside
    alpha = gaussian_blur(shape, _uniform(b, 0.5, 2.0, gen), (7, 7)) * _uniform(b, 0.5, 1.0, gen).view(-1, 1, 1, 1)
    alpha = alpha * (torch.rand(b, generator=gen) < p).float().view(-1, 1, 1, 1) * inside
    if style == "generic":
        kinds = torch.randint(0, len(KINDS), (b,), generator=gen)
    fill = torch.stack([_blood(img[i], gen, red) if red is not None and KINDS[int(kinds[i])] == "dark"
                        else _content(img[i], int(kinds[i]), gen) for i in range(b)])
    out = img * (1 - alpha) + fill * alpha
    return out, (alpha > 0.25).float()
