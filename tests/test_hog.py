from __future__ import annotations

import numpy as np
from skimage.feature import hog

from wdmt.hog import HogCache, HogConfig, hog_targets
from wdmt.synth import render


def _gray(seed: int = 0, size: int = 96) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(render(size, np.random.default_rng(seed), False).image).convert("L"))


def _direct(gray: np.ndarray, cell: int) -> np.ndarray:
    _, vis = hog(gray, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(1, 1), visualize=True)
    return np.round((vis - vis.min()) / (vis.max() - vis.min()) * 255).astype(np.uint8)


def test_cached_equals_fresh_equals_skimage(tmp_path):
    g = _gray()
    cfg = HogConfig()
    fresh = hog_targets(g, cfg)
    cache = HogCache(tmp_path, cfg)
    first = cache.get(g)
    assert cache.path(g).exists()
    cached = cache.get(g)
    assert fresh.shape == (3, 96, 96) and fresh.dtype == np.uint8
    for i, c in enumerate(cfg.cells):
        assert np.array_equal(fresh[i], _direct(g, c))
    assert np.array_equal(first, fresh) and np.array_equal(cached, fresh)


def test_parameter_or_image_change_misses_cache(tmp_path):
    g = _gray()
    a = HogCache(tmp_path, HogConfig())
    b = HogCache(tmp_path, HogConfig(orientations=8))
    c = HogCache(tmp_path, HogConfig(cells=(8,)))
    a.get(g)
    assert not b.path(g).exists() and not c.path(g).exists()
    g2 = g.copy()
    g2[0, 0] ^= 1
    assert a.path(g2) != a.path(g)


def test_parallel_get_many_matches_serial(tmp_path):
    grays = [_gray(s, 64) for s in range(3)]
    par = HogCache(tmp_path / "p").get_many(grays, workers=2, progress=False)
    ser = [hog_targets(g) for g in grays]
    assert all(np.array_equal(x, y) for x, y in zip(par, ser, strict=True))


def test_damaged_cache_entry_is_recomputed(tmp_path):
    g = _gray()
    cache = HogCache(tmp_path)
    cache.get(g)
    cache.path(g).write_bytes(b"garbage")
    assert np.array_equal(cache.get(g), hog_targets(g))
