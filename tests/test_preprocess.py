from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from wdmt import WdmtError
from wdmt.preprocess import PreprocessConfig, detect_fov, plan_geometry, prepare, resize_mask, stitch, tile
from wdmt.synth import render


@pytest.mark.parametrize("n,shape", [(3, (2, 1, 12, 12)), (2, (3, 8, 8)), (4, (1, 2, 3, 16, 16))])
def test_tile_stitch_exact_inverse(n, shape):
    x = torch.randn(shape)
    t = tile(x, n)
    assert t.shape[-4:] == (n * n, shape[-3], shape[-2] // n, shape[-1] // n)
    assert torch.equal(stitch(t, n), x)


def test_tiles_are_row_major():
    x = torch.arange(36.0).reshape(1, 6, 6)
    t = tile(x, 3)
    assert torch.equal(t[1, 0], x[0, 0:2, 2:4]) and torch.equal(t[3, 0], x[0, 2:4, 0:2])


def test_box_mask_rule_keeps_tiny_lesions_nearest_may_not():
    m = np.zeros((300, 300), bool)
    m[101, 101] = True
    geom = plan_geometry(np.zeros((300, 300, 3), np.uint8), PreprocessConfig(size=30, tiles=3))
    assert resize_mask(m, geom, "box").sum() == 1
    assert resize_mask(m, geom, "nearest").sum() == 0


def test_fov_detection_matches_synthetic_truth():
    f = render(256, np.random.default_rng(1), abnormal=False)
    fov = detect_fov(f.image)
    iou = (fov & f.fov).sum() / (fov | f.fov).sum()
    assert iou > 0.97


def test_all_dark_image_has_no_fov():
    assert not detect_fov(np.zeros((50, 60, 3), np.uint8)).any()
    with pytest.raises(WdmtError, match="field of view"):
        prepare(np.zeros((50, 60, 3), np.uint8), PreprocessConfig(size=24, tiles=3))


def test_prepare_defaults_are_the_paper():
    cfg = PreprocessConfig()
    assert (cfg.size, cfg.tiles, cfg.channels, cfg.crop_fov, cfg.keep_aspect, cfg.mask_resize) == (
        768, 3, "gray", False, False, "box")
    f = render(128, np.random.default_rng(2), abnormal=True)
    rgb = np.concatenate([f.image, f.image[:64]], axis=0)  # 192 x 128: not square
    p = prepare(rgb, PreprocessConfig(size=96, tiles=3), lesion=np.concatenate([f.lesion_union, f.lesion_union[:64]]))
    assert p.image.shape == (96, 96) and p.lesion.shape == (96, 96) and p.fov.shape == (96, 96)
    ref = np.asarray(Image.fromarray(rgb).convert("L").resize((96, 96), Image.BICUBIC))
    assert np.array_equal(p.image, ref)


def test_channel_modes_and_aspect_and_crop():
    f = render(128, np.random.default_rng(4), abnormal=False)
    rgb = np.pad(f.image, ((0, 0), (40, 40), (0, 0)))  # wide frame, black sides
    p = prepare(rgb, PreprocessConfig(size=64, tiles=2, channels="rgb", keep_aspect=True))
    assert p.image.shape == (64, 64, 3) and p.geometry.pad[0] == 208
    g = prepare(rgb, PreprocessConfig(size=64, tiles=2, channels="green", crop_fov=True))
    assert g.image.shape == (64, 64)
    assert g.fov.mean() > 0.7  # cropped to the eye: little black border left


@pytest.mark.parametrize("crop,aspect", [(False, False), (True, False), (False, True), (True, True)])
def test_maps_go_back_to_the_photographs_frame(crop, aspect):
    """A map of the S x S picture lands where its pixels came from in the photograph, however it was cropped or
    padded: the prepared FOV carried back covers the photograph's own FOV (the overlay of predict and serve)."""
    f = render(128, np.random.default_rng(4), abnormal=False)
    rgb = np.pad(f.image, ((10, 30), (70, 20), (0, 0)))  # an off-centre eye in a wide frame
    p = prepare(rgb, PreprocessConfig(size=64, tiles=2, channels="rgb", crop_fov=crop, keep_aspect=aspect))
    back = p.geometry.to_frame(p.fov.astype(np.float32), (rgb.shape[1], rgb.shape[0])) > 0.5
    truth = detect_fov(rgb)
    assert back.shape == truth.shape
    assert (back & truth).sum() / (back | truth).sum() > 0.9


def test_mask_size_mismatch_is_an_error():
    f = render(64, np.random.default_rng(0), abnormal=False)
    with pytest.raises(WdmtError, match="lesion mask is 10 x 10"):
        prepare(f.image, PreprocessConfig(size=48, tiles=3), lesion=np.zeros((10, 10), bool), source="x.jpg")


def test_bad_config_rejected():
    with pytest.raises(WdmtError):
        PreprocessConfig(size=100, tiles=3)
    with pytest.raises(WdmtError):
        PreprocessConfig(channels="blue")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_overlapping_tiles_invert_exactly_and_contain_the_grid(backend):
    import torch

    from wdmt.preprocess import stitch_overlap, tile, tile_overlap

    x = np.random.default_rng(0).random((2, 48, 48)).astype(np.float32)
    if backend == "torch":
        x = torch.from_numpy(x)
    t = tile_overlap(x, 3)
    assert tuple(t.shape) == (25, 2, 16, 16)
    back = stitch_overlap(t, 3)
    assert np.allclose(np.asarray(back), np.asarray(x), atol=1e-6)  # a weighted mean of identical copies
    grid = tile(x, 3)
    assert np.array_equal(np.asarray(t[[0, 2, 4, 10, 12, 14, 20, 22, 24]]), np.asarray(grid))
    with pytest.raises(ValueError):
        tile_overlap(x[:, :45, :45], 3)  # tiles of 15 px have no half-tile stride


def test_fill_surround_removes_the_rim_edge_and_keeps_the_retina():
    from wdmt.preprocess import fill_surround

    f = render(256, np.random.default_rng(4), abnormal=False)
    black = prepare(f.image, PreprocessConfig(size=192, tiles=3))
    filled = prepare(f.image, PreprocessConfig(size=192, tiles=3, surround="fill"))
    fov = black.fov
    core = ndimage.binary_erosion(fov, iterations=1)
    assert np.array_equal(filled.image[core], black.image[core])  # the retina itself is untouched
    ring_out = ndimage.binary_dilation(fov, iterations=4) & ~fov
    ring_in = fov & ~ndimage.binary_erosion(fov, iterations=4)
    step_black = abs(float(black.image[ring_in].mean()) - float(black.image[ring_out].mean()))
    step_filled = abs(float(filled.image[ring_in].mean()) - float(filled.image[ring_out].mean()))
    assert step_black > 20 and step_filled < 0.1 * step_black  # the dark edge at the rim is gone
    assert filled.image[~fov].min() > 0 and np.array_equal(filled.fov, fov)
    full = np.ones_like(fov)
    assert np.array_equal(fill_surround(black.image, full), black.image)  # nothing outside: nothing to do


def test_whole_picture_tiling_and_auto():
    import torch

    from wdmt.errors import WdmtError
    from wdmt.preprocess import resolve_tiling, tiling_functions

    cut, join = tiling_functions("whole")
    x = torch.rand(1, 96, 96)
    assert cut(x, 3).shape == (1, 1, 96, 96) and torch.equal(join(cut(x, 3), 3), x)
    assert resolve_tiling("auto", None) == "whole" and resolve_tiling("auto", 64) == "overlap"
    assert resolve_tiling("grid", 64) == "grid"
    with pytest.raises(WdmtError, match="fully convolutional"):
        resolve_tiling("whole", 64)
