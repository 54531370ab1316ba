"""A validation set that has lesions but no diseased eye: the run's own validation normals, each also with synthetic
lesions painted in (microaneurysms, haemorrhages, hard and soft exudates, drusen, scars; :mod:`wdmt.synth`'s
painter), with exact masks.

It lets validation data choose what only lesions can tell apart (map smoothing, tiling, image score, thresholds,
checkpoints) while test images stay untouched: no real diseased photograph is ever used. Each lesioned copy is
paired with its own clean copy, so a difference in score is the lesions' doing alone.

The painter needs the eye's layout, which a real photograph does not come with: the field of view gives the eye's
centre and radius, the brightest smooth spot inside it is taken for the optic disc, and the macula is placed about
2.5 disc diameters from the disc toward the centre, as in the macula-centred photographs of IDRiD and most
screening programmes. Lesion colours that are blended (bright lesions) are scaled to the photograph's exposure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from wdmt.datasets import Sample
from wdmt.io import read_image, read_mask
from wdmt.pipeline import PreparedSample
from wdmt.preprocess import Prepared, PreprocessConfig, fill_surround, prepare, to_channels
from wdmt.synth import Canvas, Eye, LesionPainter

# Red lesions darken the retina by this share of the synthetic palette's depth: blood over real retina is dark red,
# not black (a prior from the fundus literature, not fitted to any annotated test image).
DARK = 0.6


@dataclass
class ProxySet:
    """Clean and lesioned copies of the same photographs: ``normal[i]`` is the clean copy of every
    ``lesioned[j]`` with ``pairs[j] == i``."""

    normal: list[PreparedSample]
    lesioned: list[PreparedSample]
    pairs: list[int]

    @property
    def items(self) -> list[PreparedSample]:
        return [*self.normal, *self.lesioned]


def locate_eye(rgb: np.ndarray, fov: np.ndarray) -> Eye:
    """The eye's centre and radius from the FOV, the optic disc as the brightest smooth spot, the macula 2.5 disc
    diameters from it toward the centre."""
    size = rgb.shape[0]
    ys, xs = np.nonzero(fov)
    cx, cy, r = float(xs.mean()), float(ys.mean()), float(np.sqrt(fov.sum() / np.pi))
    lum = rgb.astype(np.float32).mean(axis=2)
    core = ndimage.binary_erosion(fov, iterations=max(1, size // 32), border_value=1)
    smooth = ndimage.gaussian_filter(np.where(core, lum, lum[core].mean() if core.any() else 0), size / 48)
    dcy, dcx = np.unravel_index(int(np.argmax(np.where(core, smooth, -np.inf))), smooth.shape)
    side = 1 if dcx >= cx else -1
    rd = 0.12 * r
    ux, uy = cx - dcx, cy - dcy
    norm = max(np.hypot(ux, uy), 1e-6)
    step = min(2.5 * 2 * rd, 0.9 * norm + 2.5 * rd)
    mcx, mcy = dcx + ux / norm * step, dcy + uy / norm * step
    return Eye(size, size / 768.0, cx, cy, r, side, rd, float(dcx), float(dcy), float(mcx), float(mcy))


def paint_kinds(rgb: np.ndarray, fov: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Synthetic lesions in a real (S x S, RGB uint8) photograph: the painted picture and each painted kind's exact
    mask (within the FOV)."""
    canvas = Canvas(rgb.astype(np.float32) / 255.0)
    bright = float(np.percentile(canvas.rgb[fov].max(axis=1), 99)) if fov.any() else 1.0
    painter = LesionPainter(canvas, rng, locate_eye(rgb, fov), bright=min(1.0, max(0.3, bright)), dark=DARK)
    masks = {k: m & fov for k, m in painter.paint_all().items()}
    return np.clip(canvas.rgb * 255 + 0.5, 0, 255).astype(np.uint8), masks


def paint_lesions(rgb: np.ndarray, fov: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic lesions in a real (S x S, RGB uint8) photograph: the painted picture and the lesion mask (within the
    FOV)."""
    out, masks = paint_kinds(rgb, fov, rng)
    return out, _union(masks, fov.shape)


def _union(masks: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    union = np.zeros(shape, bool)
    for m in masks.values():
        union |= m
    return union


# How far an annotator's outline lies outside the blood, and the gap under which two haemorrhages are outlined as
# one region (px at 768; radius of the closing). Fixed before any run, not fitted to any annotated photograph.
GROW = (2.0, 6.0)
JOIN = 8.0


def _disc(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return np.hypot(yy, xx) <= radius


def drawn_region(mask: np.ndarray, fov: np.ndarray, grow: float, join: float) -> np.ndarray:
    """A lesion mask as an outline drawn around it: grown by ``grow``, gaps under ``2 * join`` closed, holes filled."""
    if not mask.any():
        return mask
    pad = int(np.ceil(grow + join)) + 1
    region = ndimage.binary_dilation(np.pad(mask, pad), _disc(grow))
    region = ndimage.binary_fill_holes(ndimage.binary_closing(region, _disc(join)))
    return region[pad:-pad, pad:-pad] & fov


def paint_annotated(rgb: np.ndarray, fov: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The painter's lesions with haemorrhages labelled as annotators draw them: as regions around the blood (IDRiD's
    haemorrhage masks are outlines; a quarter of their area is no darker than healthy retina, docs/methods.md), not
    the painted pixels. Other kinds keep their exact masks. Each picture draws its own outline width."""
    painted, masks = paint_kinds(rgb, fov, rng)
    scale = fov.shape[0] / 768
    grow = rng.uniform(*GROW) * scale
    if "HE" in masks:
        masks["HE"] = drawn_region(masks["HE"], fov, grow, JOIN * scale)
    return painted, _union(masks, fov.shape)


def _as_model_input(rgb: np.ndarray, base: Prepared, cfg: PreprocessConfig, lesion: np.ndarray | None) -> Prepared:
    """An S x S RGB picture in the model's channels and surround, with the base picture's geometry and FOV."""
    image = to_channels(rgb, cfg.channels)
    gray = image if cfg.channels == "gray" else np.array(Image.fromarray(rgb).convert("L"))
    if cfg.surround == "fill":
        image = fill_surround(image, base.fov)
        gray = image if cfg.channels == "gray" else fill_surround(gray, base.fov)
    return Prepared(image=image, gray=gray, fov=base.fov, lesion=lesion, geometry=base.geometry,
                    original_size=base.original_size)


Painter = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
# The lesion sets a proxy can be built from, by name: exact masks (the default), or haemorrhages outlined.
PAINTERS: dict[str, Painter] = {"painted": paint_lesions, "annotated": paint_annotated}


def proxy_set(samples: list[Sample], cfg: PreprocessConfig, *, variants: int = 3, seed: int = 0,
              paint: Painter = paint_lesions) -> ProxySet:
    """``variants`` lesioned copies of each normal sample (seeded per sample and variant: the same set every time),
    beside a clean copy prepared the same way. Painting happens at the model's resolution, in colour, before the
    model's channel choice and surround fill, as a lesion in the photograph itself would. ``paint`` (a picture, its
    FOV, a generator -> the painted picture and its lesion mask) lets a benchmark try another lesion set."""
    normal, lesioned, pairs = [], [], []
    rgb_cfg = replace(cfg, channels="rgb", surround="black")
    for i, s in enumerate(samples):
        rgb0 = read_image(s.image)
        fov0 = read_mask(s.fov_mask) if s.fov_mask else None
        base = prepare(rgb0, rgb_cfg, fov=fov0, source=str(s.image))
        normal.append(PreparedSample(replace(s, label=0), _as_model_input(base.image, base, cfg, None)))
        for v in range(variants):
            painted, mask = paint(base.image, base.fov, np.random.default_rng([seed, i, v]))
            sample = replace(s, id=f"{s.id}+lesions{v}", label=1)
            lesioned.append(PreparedSample(sample, _as_model_input(painted, base, cfg, mask)))
            pairs.append(i)
    return ProxySet(normal, lesioned, pairs)
