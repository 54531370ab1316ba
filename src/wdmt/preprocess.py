"""Fundus photograph -> the model's S x S picture, its tiles, and masks that follow the same geometry.

Defaults are the paper's (method-spec 1.2): PIL "L" grey, the whole frame resized to 768 x 768 without keeping
the aspect ratio or cropping to the eye, then cut into 3 x 3 tiles of 256 in row-major order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image
from scipy import ndimage

from wdmt.errors import WdmtError

if TYPE_CHECKING:  # torch is imported lazily: ONNX deployment uses this module without it
    import torch

ChannelMode = Literal["gray", "green", "rgb"]
SurroundMode = Literal["black", "fill"]
MIN_SIDE = 32  # below this there is no retina to see
MaskResize = Literal["box", "nearest"]


@dataclass(frozen=True)
class PreprocessConfig:
    """How a photograph becomes model input.

    Args:
        size: side S of the square picture the model sees (paper: 768).
        tiles: n, the picture is cut into an n x n grid of S/n tiles (paper: 3).
        channels: ``gray`` (PIL "L", paper), ``green`` (the fundus channel with most lesion contrast) or ``rgb``.
        crop_fov: crop to the field of view's bounding box before resizing (paper: no).
        keep_aspect: pad to a square with black before resizing instead of stretching (paper: no).
        mask_resize: ``box`` (box filter, then > 0: a lesion pixel anywhere in the box stays a lesion) or ``nearest``.
        surround: ``black`` (the camera's dark surround, as the paper) or ``fill`` (the retina extended past its rim,
            :func:`fill_surround`): the rim is then no edge for a network to reconstruct, at training and at test.
    """

    size: int = 768
    tiles: int = 3
    channels: ChannelMode = "gray"
    crop_fov: bool = False
    keep_aspect: bool = False
    mask_resize: MaskResize = "box"
    surround: SurroundMode = "black"

    def __post_init__(self) -> None:
        if self.size < 8 or self.tiles < 1 or self.size % self.tiles:
            raise WdmtError(None, f"preprocess: size {self.size} must be a multiple of tiles {self.tiles} and >= 8")
        if self.channels not in ("gray", "green", "rgb"):
            raise WdmtError(None, f"preprocess: channels must be gray, green or rgb, not {self.channels!r}")
        if self.surround not in ("black", "fill"):
            raise WdmtError(None, f"preprocess: surround must be black or fill, not {self.surround!r}")
        if self.mask_resize not in ("box", "nearest"):
            raise WdmtError(None, f"preprocess: mask_resize must be box or nearest, not {self.mask_resize!r}")

    @property
    def tile_size(self) -> int:
        return self.size // self.tiles

    @property
    def in_channels(self) -> int:
        return 3 if self.channels == "rgb" else 1


def detect_fov(rgb: np.ndarray, *, work_size: int = 384) -> np.ndarray:
    """The retina's bright disc on the camera's dark surround, as a bool mask of the input's size.

    Thresholds the red channel (brightest in fundus photographs) at a fraction of its bright level, keeps the
    largest connected part and fills its holes. Runs on a thumbnail for speed. An all-dark frame gives an
    all-False mask; callers decide whether that is an error.
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, work_size / max(h, w))
    small = rgb if scale == 1.0 else np.asarray(
        Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    )
    chan = small.max(axis=2).astype(np.float32) if small.ndim == 3 else small.astype(np.float32)
    bright = float(np.percentile(chan, 99))
    if bright < 20:
        return np.zeros((h, w), bool)
    fov = chan > max(12.0, 0.12 * bright)
    fov = ndimage.binary_opening(fov, iterations=2)
    labels, n = ndimage.label(fov)
    if n == 0:
        return np.zeros((h, w), bool)
    sizes = ndimage.sum_labels(fov, labels, index=np.arange(1, n + 1))
    fov = ndimage.binary_fill_holes(labels == (int(np.argmax(sizes)) + 1))
    if fov.shape != (h, w):
        fov = np.asarray(Image.fromarray(fov.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 0
    return fov


def fill_surround(img: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Extend the retina past the rim of its field of view, so the surround continues the retina instead of ending it
    in a dark edge (the usual fundus preprocessing, here done in one pass instead of iterated neighbour averages).

    Every pixel outside a slightly eroded FOV (the ring where JPEG and vignetting blur the rim into the dark goes
    too) takes the value of its nearest retina pixel, and that fill is smoothed more the farther it lies from the
    rim, which removes the radial streaks of the nearest-pixel copy. Pixels inside the eroded FOV are unchanged.
    Deterministic and cheap (one distance transform, two blurs); the same function runs at training and at test.
    """
    s = img.shape[0]
    core = ndimage.binary_erosion(fov, iterations=max(1, s // 256), border_value=1)  # the frame edge is no rim
    if not core.any():
        core = fov
    if core.all():
        return img
    dist, (iy, ix) = ndimage.distance_transform_edt(~core, return_indices=True)
    filled = img[iy, ix].astype(np.float32)
    sig = (1,) * 2 + (0,) * (img.ndim - 2)
    near = ndimage.gaussian_filter(filled, [max(1.0, s / 256) * k for k in sig])
    far = ndimage.gaussian_filter(filled, [s / 48 * k for k in sig])
    w = np.clip(dist / (s / 16), 0, 1)
    if img.ndim == 3:
        w, inside = w[..., None], core[..., None]
    else:
        inside = core
    out = np.where(inside, img, (1 - w) * near + w * far)
    return np.clip(np.round(out), 0, 255).astype(img.dtype)


@dataclass(frozen=True)
class Geometry:
    """Where the S x S picture comes from in the original frame: a crop box, then a pad to square, then a resize."""

    crop: tuple[int, int, int, int]  # left, top, right, bottom in the original frame
    pad: tuple[int, int, int]  # side of the padded canvas (0 = no pad), x offset, y offset
    size: int

    def apply(self, arr: np.ndarray, resample: int) -> np.ndarray:
        """Carry an image or mask (uint8) through the crop, pad and resize."""
        left, top, right, bottom = self.crop
        arr = arr[top:bottom, left:right]
        side, ox, oy = self.pad
        if side:
            canvas = np.zeros((side, side) + arr.shape[2:], arr.dtype)
            canvas[oy : oy + arr.shape[0], ox : ox + arr.shape[1]] = arr
            arr = canvas
        if arr.shape[:2] == (self.size, self.size):
            return np.ascontiguousarray(arr)
        return np.array(Image.fromarray(arr).resize((self.size, self.size), resample))

    def to_frame(self, amap: np.ndarray, frame: tuple[int, int], size: tuple[int, int] | None = None) -> np.ndarray:
        """Carry a float map of the S x S picture back to the original ``frame`` (width, height), drawn at ``size``
        (width, height; default: the frame's own): resized to the padded canvas, the pad cut off, placed in the crop
        box, zero outside it. Stretching the map over the whole frame instead would misplace every finding whenever
        the picture was cropped or padded; drawing it at ``size`` directly spares a preview the full-size frame."""
        out_w, out_h = size or frame
        sx, sy = out_w / frame[0], out_h / frame[1]
        left, top, right, bottom = self.crop
        side, ox, oy = self.pad
        canvas = (side, side) if side else (right - left, bottom - top)
        x0, y0 = round((left - ox) * sx), round((top - oy) * sy)  # the canvas's corner in the output
        big = np.asarray(Image.fromarray(amap.astype(np.float32), mode="F").resize(
            (max(1, round(canvas[0] * sx)), max(1, round(canvas[1] * sy))), Image.BILINEAR))
        x1, y1 = round(left * sx), round(top * sy)  # the crop box in the output, within the canvas
        x2, y2 = min(round(right * sx), x0 + big.shape[1]), min(round(bottom * sy), y0 + big.shape[0])
        out = np.zeros((out_h, out_w), np.float32)
        out[y1:y2, x1:x2] = big[y1 - y0:y2 - y0, x1 - x0:x2 - x0]
        return out


def plan_geometry(rgb: np.ndarray, cfg: PreprocessConfig, fov: np.ndarray | None = None) -> Geometry:
    """Decide the crop/pad/resize for one photograph under ``cfg``."""
    h, w = rgb.shape[:2]
    crop = (0, 0, w, h)
    if cfg.crop_fov:
        fov = detect_fov(rgb) if fov is None else fov
        if not fov.any():
            raise WdmtError(None, "no field of view found to crop to (the image is dark)")
        ys, xs = np.nonzero(fov)
        crop = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    pad = (0, 0, 0)
    if cfg.keep_aspect and cw != ch:
        side = max(cw, ch)
        pad = (side, (side - cw) // 2, (side - ch) // 2)
    return Geometry(crop=crop, pad=pad, size=cfg.size)


def to_channels(rgb: np.ndarray, mode: ChannelMode) -> np.ndarray:
    """RGB uint8 -> (H, W) for gray/green or (H, W, 3) for rgb; gray is exactly PIL's "L" as in the paper."""
    if mode == "gray":
        return np.array(Image.fromarray(rgb).convert("L"))
    if mode == "green":
        return np.ascontiguousarray(rgb[..., 1])
    return rgb


def resize_mask(mask: np.ndarray, geom: Geometry, rule: MaskResize) -> np.ndarray:
    """Carry a bool mask through ``geom``: ``box`` keeps any lesion pixel in a box, ``nearest`` samples."""
    resample = Image.BOX if rule == "box" else Image.NEAREST
    return geom.apply(mask.astype(np.uint8) * 255, resample) > 0


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1], as torchvision's ToTensor."""
    import torch

    t = torch.from_numpy(np.array(arr, copy=True))
    if t.ndim == 2:
        t = t[None]
    else:
        t = t.permute(2, 0, 1)
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


def _permute(x, order):  # torch tensors and numpy arrays alike
    return x.transpose(*order) if isinstance(x, np.ndarray) else x.permute(*order)


def tile(x: torch.Tensor, n: int) -> torch.Tensor:
    """(..., C, S, S) -> (..., n*n, C, S/n, S/n), tiles in row-major order (k = row * n + col); torch or numpy."""
    *lead, c, h, w = x.shape
    if h % n or w % n:
        raise ValueError(f"cannot cut {h} x {w} into {n} x {n} tiles")
    t = x.reshape(*lead, c, n, h // n, n, w // n)
    d = len(lead)
    t = _permute(t, (*range(d), d + 1, d + 3, d, d + 2, d + 4))
    return t.reshape(*lead, n * n, c, h // n, w // n)


def stitch(t: torch.Tensor, n: int) -> torch.Tensor:
    """Exact inverse of :func:`tile`: (..., n*n, C, s, s) -> (..., C, n*s, n*s)."""
    *lead, k, c, h, w = t.shape
    if k != n * n:
        raise ValueError(f"expected {n * n} tiles, got {k}")
    d = len(lead)
    x = t.reshape(*lead, n, n, c, h, w)
    x = _permute(x, (*range(d), d + 2, d, d + 3, d + 1, d + 4))
    return x.reshape(*lead, c, n * h, n * w)


def tile_overlap(x, n: int):
    """(C, S, S) -> ((2n-1)^2, C, S/n, S/n): tiles of the n x n grid's size at half-tile strides, row-major; torch or
    numpy. The tiles with even row and column index are exactly the grid's."""
    c, h, w = (int(v) for v in x.shape)
    if h != w or h % n or (h // n) % 2:
        raise ValueError(f"cannot cut {h} x {w} into overlapping tiles of {n} x {n}")
    t, m = h // n, 2 * n - 1
    parts = [x[:, i * t // 2 : i * t // 2 + t, j * t // 2 : j * t // 2 + t] for i in range(m) for j in range(m)]
    if isinstance(x, np.ndarray):
        return np.stack(parts)
    import torch

    return torch.stack(parts)


def stitch_overlap(tiles, n: int):
    """Inverse of :func:`tile_overlap`: ((2n-1)^2, C, t, t) -> (C, n*t, n*t); torch or numpy. Each pixel is the
    average of the tiles covering it, weighted by a window that falls toward each tile's edge, where zero padding
    makes reconstructions worst; so the grid's seams disappear."""
    k, c, t, _ = (int(v) for v in tiles.shape)  # constants, also when traced for ONNX inside a model (fusion)
    m, step = 2 * n - 1, t // 2
    if k != m * m:
        raise ValueError(f"expected {m * m} overlapping tiles, got {k}")
    r = np.arange(t, dtype=np.float32)
    w1 = np.minimum(r + 0.5, t - 0.5 - r)
    w = w1[:, None] * w1[None, :]
    norm = np.zeros((1, n * t, n * t), np.float32)
    for i in range(m):
        for j in range(m):
            norm[:, i * step : i * step + t, j * step : j * step + t] += w
    if not isinstance(tiles, np.ndarray):  # torch: padded tiles summed, so C stays free in a traced graph
        import torch
        import torch.nn.functional as F

        w, norm, size = torch.from_numpy(w).to(tiles), torch.from_numpy(norm).to(tiles), n * t
        return sum(F.pad(tiles[i * m + j] * w, (j * step, size - j * step - t, i * step, size - i * step - t))
                   for i in range(m) for j in range(m)) / norm
    out = np.zeros((c, n * t, n * t), tiles.dtype)
    for i in range(m):
        for j in range(m):
            out[:, i * step : i * step + t, j * step : j * step + t] += tiles[i * m + j] * w
    return out / norm


def whole(x, n: int):
    """(C, S, S) -> (1, C, S, S): the picture as one tile, for fully convolutional models (no seams at all)."""
    return x[None]


def unwhole(t, n: int):
    """Inverse of :func:`whole`."""
    return t[0]


TILINGS = ("grid", "overlap", "whole")


def takes_tiling(tiling: str, input_size: int | None) -> bool:
    """Only a fully convolutional model (``input_size`` None) takes the whole picture in one pass."""
    return tiling != "whole" or input_size is None


def resolve_tiling(tiling: str, input_size: int | None) -> str:
    """``auto``: the whole picture in one pass where the model takes any size (``input_size`` None), overlapping
    blended tiles where it has a fixed input; other values as they are."""
    if tiling == "auto":
        return "whole" if takes_tiling("whole", input_size) else "overlap"
    if not takes_tiling(tiling, input_size):
        raise WdmtError(None, f"tiling 'whole' needs a fully convolutional model; this one takes {input_size} px "
                        "tiles (use overlap or auto)")
    return tiling


def tiling_functions(tiling: str):
    """(cut, join) for a resolved ``EvalConfig.tiling``: the training grid, overlapping tiles or the whole picture;
    torch or numpy alike."""
    if tiling not in TILINGS:
        raise ValueError(f"tiling must be one of {', '.join(TILINGS)}, not {tiling!r}")
    return {"grid": (tile, stitch), "overlap": (tile_overlap, stitch_overlap), "whole": (whole, unwhole)}[tiling]


@dataclass
class Prepared:
    """One photograph after preprocessing, at S x S.

    ``image`` is uint8 (S, S) or (S, S, 3); ``gray`` is the PIL-"L" picture HOG targets are computed on;
    ``lesion`` is None when the image has no lesion mask; ``fov`` is always present.
    """

    image: np.ndarray
    gray: np.ndarray
    fov: np.ndarray
    lesion: np.ndarray | None
    geometry: Geometry
    original_size: tuple[int, int]  # (width, height)


def prepare(
    rgb: np.ndarray,
    cfg: PreprocessConfig,
    *,
    lesion: np.ndarray | None = None,
    fov: np.ndarray | None = None,
    source: str | None = None,
) -> Prepared:
    """Preprocess one RGB photograph and its masks (masks at the photograph's own size)."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise WdmtError(source, f"image is {w} x {h}: too small for a fundus photograph (at least {MIN_SIDE} px a "
                        "side)")
    for name, m in (("lesion mask", lesion), ("FOV mask", fov)):
        if m is not None and m.shape != (h, w):
            raise WdmtError(source, f"{name} is {m.shape[1]} x {m.shape[0]} but the image is {w} x {h}")
    if fov is None:
        fov = detect_fov(rgb)
    if not fov.any():
        raise WdmtError(source, "no field of view found: the image is (nearly) all dark")
    try:
        geom = plan_geometry(rgb, cfg, fov)
    except WdmtError as e:
        raise WdmtError(source, e.reason) from e
    image = geom.apply(to_channels(rgb, cfg.channels), Image.BICUBIC)
    gray = image if cfg.channels == "gray" else geom.apply(to_channels(rgb, "gray"), Image.BICUBIC)
    fov_s = resize_mask(fov, geom, "nearest")
    if cfg.surround == "fill":
        image = fill_surround(image, fov_s)
        gray = image if cfg.channels == "gray" else fill_surround(gray, fov_s)
    return Prepared(
        image=image,
        gray=gray,
        fov=fov_s,
        lesion=None if lesion is None else resize_mask(lesion, geom, cfg.mask_resize),
        geometry=geom,
        original_size=(w, h),
    )
