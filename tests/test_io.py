from __future__ import annotations

import io as pyio

import numpy as np
import pytest
import tifffile
from PIL import Image

from wdmt import WdmtError
from wdmt import io as wio


def _rgb(h: int = 20, w: int = 30) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_lossless_rgb_round_trip(tmp_path, fmt, suffix):
    a = _rgb()
    p = tmp_path / f"x{suffix}"
    Image.fromarray(a).save(p, format=fmt)
    assert np.array_equal(wio.read_image(p), a)


def test_jpeg_reads_close(tmp_path):
    a = np.full((32, 32, 3), (200, 90, 30), np.uint8)
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    out = wio.read_image(tmp_path / "x.jpg")
    assert out.shape == (32, 32, 3) and np.abs(out.astype(int) - a).max() < 6


def test_grey_is_repeated_to_rgb(tmp_path):
    g = np.arange(600, dtype=np.uint8).reshape(20, 30)
    Image.fromarray(g).save(tmp_path / "g.png")
    out = wio.read_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3) and np.array_equal(out[..., 1], g)


def test_16bit_png_scaled_to_8bit(tmp_path):
    a = (np.arange(600, dtype=np.uint32).reshape(20, 30) * 109).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "x16.png")
    out = wio.read_array(tmp_path / "x16.png")
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round(a / 257.0)).max() <= 1


@pytest.mark.parametrize("rgb", [False, True])
def test_16bit_tiff(tmp_path, rgb):
    a = np.linspace(0, 65535, 20 * 30 * (3 if rgb else 1)).astype(np.uint16).reshape((20, 30, 3) if rgb else (20, 30))
    tifffile.imwrite(tmp_path / "x.tif", a, photometric="rgb" if rgb else "minisblack")
    out = wio.read_array(tmp_path / "x.tif")
    assert out.shape == a.shape and out.dtype == np.uint8
    assert out.max() == 255 and out.min() == 0


def test_rgba_composited_on_black(tmp_path):
    a = np.zeros((10, 10, 4), np.uint8)
    a[..., 0] = 200
    a[:5, :, 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    out = wio.read_image(tmp_path / "a.png")
    assert (out[:5, :, 0] == 200).all() and (out[5:] == 0).all()


def test_palette_and_cmyk(tmp_path):
    a = _rgb()
    Image.fromarray(a).convert("P").save(tmp_path / "p.png")
    assert wio.read_image(tmp_path / "p.png").shape == (20, 30, 3)
    Image.fromarray(a).convert("CMYK").save(tmp_path / "c.jpg")
    out = wio.read_image(tmp_path / "c.jpg")
    assert out.shape == (20, 30, 3) and abs(out.mean() - a.mean()) < 12


def test_exif_rotation_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert wio.read_image(tmp_path / "r.jpg").shape == (40, 20, 3)


def test_idrid_original_size_loads(tmp_path):
    Image.new("RGB", (4288, 2848), (90, 40, 10)).save(tmp_path / "big.jpg", quality=70)
    assert wio.read_image(tmp_path / "big.jpg").shape == (2848, 4288, 3)


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
    ],
)
def test_bad_files_raise_our_error(tmp_path, make, reason):
    p = tmp_path / "bad.jpg"
    make(p)
    with pytest.raises(WdmtError, match=reason) as e:
        wio.read_image(p)
    assert e.value.path == p


def test_truncated_jpeg(tmp_path):
    buf = pyio.BytesIO()
    Image.fromarray(_rgb(200, 200)).save(buf, format="JPEG")
    p = tmp_path / "t.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(WdmtError, match="truncated|decode"):
        wio.read_image(p)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "b.png")
    monkeypatch.setattr(wio, "MAX_PIXELS", 5000)
    with pytest.raises(WdmtError, match="limit"):
        wio.read_image(tmp_path / "b.png")


def test_masks_binary_and_inverted(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 128
    Image.fromarray(m).save(tmp_path / "m.png")
    assert wio.read_mask(tmp_path / "m.png").sum() == 4
    assert wio.read_mask(tmp_path / "m.png", inverted=True).sum() == 60
