"""Reading fundus photographs and masks from any common format into plain uint8 arrays.

Pillow decodes JPEG, PNG, BMP and most TIFF; tifffile takes the TIFFs Pillow cannot (16-bit RGB, odd
compressions). Everything comes back as ``uint8`` RGB (H, W, 3) or a boolean mask (H, W), so the rest of the
pipeline never sees a mode string.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from wdmt.atomic import atomic_path
from wdmt.errors import WdmtError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
# Largest real fundus cameras give ~24 MP (6000 x 4000); IDRiD is 12.2 MP. 64 MP leaves room and still
# refuses decompression bombs, which Pillow only refuses at 179 MP.
MAX_PIXELS = 64_000_000


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WdmtError(path, "file not found")
    if not path.is_file():
        raise WdmtError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise WdmtError(path, "file is empty")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale integer or float pixel data to uint8 by its dtype's range (16-bit / 257, float * 255)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = 65535 if arr.max(initial=0) > 255 or arr.dtype.itemsize >= 2 else 255
        return np.clip(np.round(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    arr = np.nan_to_num(arr.astype(np.float64))
    scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to uint8 (H, W) or (H, W, 3); alpha is composited on black (outside the eye)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if im.mode == "I" and arr.max(initial=0) <= 255:
            return arr.astype(np.uint8)
        return _to_uint8(arr.astype(np.uint16) if im.mode.startswith("I;16") else arr)
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"))
    if im.mode in ("LA", "RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def _open_pil(path: Path, source: Any = None,
              draft: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode ``source`` (a file object) or else ``path``; errors name ``path``. Returns the pixels and the size
    (width, height) of the photograph as stored, upright. ``draft`` (shorter side, longer side): a JPEG may be decoded
    at the smallest of its DCT scales (1/2, 1/4, 1/8) that keeps both sides at least that long, 4 to 64 times fewer
    pixels to decode and carry."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path if source is None else source) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise WdmtError(
                        path, f"image is {w} x {h} = {w * h / 1e6:.0f} MP, over the {MAX_PIXELS / 1e6:.0f} MP limit"
                    )
                if w < 1 or h < 1:
                    raise WdmtError(path, "image has no pixels")
                if draft is not None and im.format == "JPEG":
                    short, long = draft
                    im.draft(None, (long, short) if w >= h else (short, long))  # None: keep the mode
                decoded = im.size
                im.load()
                im = ImageOps.exif_transpose(im)
                upright = (w, h) if im.size == decoded else (h, w)
                return _pil_to_array(im), upright
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise WdmtError(
                path, f"image is larger than the {MAX_PIXELS / 1e6:.0f} MP limit (decompression bomb?)"
            ) from e
        except UnidentifiedImageError as e:
            raise WdmtError(path, "not an image file Pillow can decode (wrong extension or corrupt header)") from e
        except OSError as e:
            raise WdmtError(path, f"cannot decode image: {e}") from e
        except (ValueError, SyntaxError) as e:
            raise WdmtError(path, f"cannot decode image: {e}") from e


def _open_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        arr = tifffile.imread(path, key=0)
    except Exception as e:  # tifffile raises many types for corrupt files
        raise WdmtError(path, f"cannot decode TIFF: {e}") from e
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise WdmtError(path, f"unsupported TIFF layout {arr.shape}")
    return _to_uint8(arr)


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8, (H, W) for grey files and (H, W, 3) otherwise."""
    return _read(Path(path))[0]


def _read(path: Path, draft: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    _check_file(path)
    try:
        return _open_pil(path, draft=draft)
    except WdmtError:
        if path.suffix.lower() in (".tif", ".tiff"):
            arr = _open_tiff(path)
            return arr, (arr.shape[1], arr.shape[0])
        raise


def decode_image(data: bytes, name: str) -> np.ndarray:
    """A photograph from bytes in memory, as :func:`read_image` reads a file (``wdmt serve`` keeps nothing on disk);
    errors name ``name``."""
    import io

    if not data:
        raise WdmtError(Path(name), "file is empty")
    arr = _open_pil(Path(name), io.BytesIO(data))[0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photograph as uint8 RGB (H, W, 3); grey files are repeated over the three channels."""
    return read_photo(path)[0]


def read_photo(path: str | os.PathLike, draft: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """A photograph as uint8 RGB (H, W, 3) and its stored size (width, height). With ``draft`` (shorter side, longer
    side) a JPEG may come back smaller than stored but at least that large (:func:`_open_pil`); other formats whole."""
    arr, size = _read(Path(path), draft)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr), size


def read_mask(path: str | os.PathLike, *, inverted: bool = False) -> np.ndarray:
    """Read a binary mask as bool (H, W): any value > 0 is positive, or == 0 when ``inverted`` (ADAM's BMPs)."""
    arr = read_array(path)
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    return arr == 0 if inverted else arr > 0


def mask_values(path: str | os.PathLike) -> np.ndarray:
    """The distinct grey values in a mask file (to flag masks that are not cleanly binary)."""
    arr = read_array(path)
    return np.unique(arr if arr.ndim == 2 else arr.max(axis=2))


def write_png_atomic(arr: np.ndarray, path: str | os.PathLike) -> None:
    """Write a PNG atomically (see :mod:`wdmt.atomic`)."""
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
