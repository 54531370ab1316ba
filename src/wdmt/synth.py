"""A synthetic fundus photograph generator: the project's embedded default data.

Not a toy: a circular field of view on black, an orange-red retina with radial vignetting and per-image colour and
illumination, an optic disc with a cup on the left or right, a darker macula about 2.5 disc diameters temporal, a
vessel tree leaving the disc in arcades that branch and taper (arteries lighter and thinner than veins), fine
background texture, camera noise and blur. Abnormal images add lesions with exact pixel masks: microaneurysms (MA),
haemorrhages (HE: dot, blot, flame), hard exudates (EX), soft exudates (SE), drusen (DR) and one large scar or
atrophy (SC). A lesion's mask is where its opacity is at least one half, i.e. where it visibly dominates.

Deterministic: image i of a given label depends only on (seed, label, i).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from wdmt.atomic import atomic_path, write_csv_atomic
from wdmt.errors import WdmtError

LESION_KINDS = ("MA", "HE", "EX", "SE", "DR", "SC")
LESION_NAMES = {
    "MA": "microaneurysm",
    "HE": "haemorrhage",
    "EX": "hard exudate",
    "SE": "soft exudate",
    "DR": "drusen",
    "SC": "scar / atrophy",
}


@dataclass
class Fundus:
    """One synthetic photograph: uint8 RGB, its FOV, and a bool mask per lesion kind present."""

    image: np.ndarray
    fov: np.ndarray
    lesions: dict[str, np.ndarray]

    @property
    def lesion_union(self) -> np.ndarray:
        out = np.zeros(self.fov.shape, bool)
        for m in self.lesions.values():
            out |= m
        return out


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: random values on a cells x cells grid, bicubic upsampled."""
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    im = Image.fromarray(g, mode="F").resize((size, size), Image.BICUBIC)
    a = np.asarray(im)
    return a / (np.abs(a).max() + 1e-6)


class Canvas:
    """Float RGB picture with alpha compositing of lesions into bounded windows (fast at 768 px)."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.size = rgb.shape[0]
        self.yy, self.xx = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)

    def window(self, cx: float, cy: float, r: float) -> tuple[slice, slice]:
        r = int(math.ceil(r)) + 2
        y0, y1 = max(0, int(cy) - r), min(self.size, int(cy) + r + 1)
        x0, x1 = max(0, int(cx) - r), min(self.size, int(cx) + r + 1)
        return slice(y0, y1), slice(x0, x1)

    def blend(self, sl: tuple[slice, slice], alpha: np.ndarray, colour: np.ndarray) -> None:
        a = alpha[..., None]
        self.rgb[sl] = self.rgb[sl] * (1 - a) + colour * a

    def multiply(self, sl: tuple[slice, slice], alpha: np.ndarray, factor: np.ndarray) -> None:
        """Darken (or tint) by ``factor`` where alpha is 1: keeps the local texture, as blood over retina does."""
        a = alpha[..., None]
        self.rgb[sl] = self.rgb[sl] * (1 - a + a * factor)


def _blob_alpha(dx: np.ndarray, dy: np.ndarray, r: float, edge: float, rng: np.random.Generator,
                wobble: float = 0.0, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Opacity of a (possibly irregular, elongated) blob: 1 inside, a smooth ramp of width ``edge`` at the rim."""
    c, s = math.cos(angle), math.sin(angle)
    u = (dx * c + dy * s) / aspect
    v = -dx * s + dy * c
    d = np.sqrt(u * u + v * v)
    if wobble:
        th = np.arctan2(v, u)
        k = rng.integers(2, 6)
        ph = rng.uniform(0, 2 * math.pi, 3)
        rr = r * (1 + wobble * (0.5 * np.sin(k * th + ph[0]) + 0.3 * np.sin((k + 1) * th + ph[1])
                                + 0.2 * np.sin((k + 3) * th + ph[2])))
    else:
        rr = r
    return np.clip((rr - d) / max(edge, 1e-3) + 0.5, 0, 1).astype(np.float32)


def _grow_vessels(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, angle: float,
                  width: float, length: float, curvature: float, step: float, inside, depth: int) -> None:
    """Draw one tapering vessel as a polyline and recurse into its branches."""
    pts = [(x, y)]
    w = width
    travelled = 0.0
    next_branch = rng.uniform(0.15, 0.35) * length
    while travelled < length and w > 0.6:
        angle += curvature * step + rng.normal(0, 0.06)
        nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        if not inside(nx, ny):
            break
        draw.line([(x, y), (nx, ny)], fill=255, width=max(1, int(round(w))))
        draw.ellipse([nx - w / 2, ny - w / 2, nx + w / 2, ny + w / 2], fill=255)
        x, y = nx, ny
        pts.append((x, y))
        travelled += step
        w *= 0.994
        if depth > 0 and travelled > next_branch:
            side = rng.choice((-1, 1))
            child_w = w * rng.uniform(0.5, 0.75)
            _grow_vessels(draw, rng, x, y, angle + side * rng.uniform(0.45, 1.1), child_w,
                          (length - travelled) * rng.uniform(0.45, 0.9), rng.normal(0, 0.004) * side, step,
                          inside, depth - 1)
            w *= 0.9
            next_branch = travelled + rng.uniform(0.18, 0.4) * length


@dataclass
class Eye:
    """Where things are in one synthetic photograph (pixels): the eye, the optic disc and the macula."""

    size: int
    s: float  # lengths are tuned at 768 px and scaled by this
    cx: float
    cy: float
    R: float
    side: int = 1  # -1: disc on the left, macula to its right
    rd: float = 0.0
    dcx: float = 0.0
    dcy: float = 0.0
    mcx: float = 0.0
    mcy: float = 0.0


def render(size: int, rng: np.random.Generator, abnormal: bool) -> Fundus:
    """Render one fundus photograph of ``size`` x ``size`` pixels."""
    s = size / 768.0  # all lengths below are tuned at 768 px
    cx, cy = size / 2 + rng.normal(0, 6 * s), size / 2 + rng.normal(0, 6 * s)
    R = size * rng.uniform(0.45, 0.53)  # above 0.5 the frame clips the disc top and bottom, as in IDRiD
    eye = Eye(size, s, cx, cy, R)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    fov = dist <= R
    fov_alpha = np.clip(R - dist + 0.5, 0, 1)
    rgb, base, bright = _retina(eye, rng, xx, yy, dist)
    canvas = _disc_and_macula(eye, rng, rgb, base, bright, xx, yy)
    _vessels(eye, rng, canvas)
    lesions: dict[str, np.ndarray] = {}
    if abnormal:
        lesions = LesionPainter(canvas, rng, eye).paint_all()
    return Fundus(image=_camera(canvas.rgb * fov_alpha[..., None], rng, s), fov=fov,
                  lesions={k: m & fov for k, m in lesions.items() if (m & fov).any()})


def _retina(eye: Eye, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray,
            dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-image colour, vignetting, an illumination gradient, choroidal texture."""
    size, s, cx, cy, R = eye.size, eye.s, eye.cx, eye.cy, eye.R
    bright = rng.uniform(0.55, 0.95)
    base = np.array([rng.uniform(0.78, 0.98), rng.uniform(0.30, 0.52), rng.uniform(0.04, 0.16)], np.float32) * bright
    vign = 1 - rng.uniform(0.3, 0.6) * (dist / R) ** 2
    ga = rng.uniform(0, 2 * math.pi)
    grad = 1 + rng.uniform(0, 0.18) * ((xx - cx) * math.cos(ga) + (yy - cy) * math.sin(ga)) / R
    low = 1 + 0.08 * _smooth_noise(rng, size, 5)
    chor = 0.035 * _smooth_noise(rng, size, int(40 * max(s, 0.25)))
    grain = 0.015 * _smooth_noise(rng, size, max(8, size // 3))
    lum = (vign * grad * low)[..., None]
    rgb = base * lum * (1 + chor[..., None] * np.array([0.6, 1.0, 1.0], np.float32) + grain[..., None])
    return rgb, base, bright


def _disc_and_macula(eye: Eye, rng: np.random.Generator, rgb: np.ndarray, base: np.ndarray, bright: float,
                     xx: np.ndarray, yy: np.ndarray) -> Canvas:
    """Optic disc left or right, the macula about 2.5 disc diameters temporal; fills in ``eye``'s positions."""
    s, R = eye.s, eye.R
    side = rng.choice((-1, 1))
    rd = R * rng.uniform(0.11, 0.14)
    dcx, dcy = eye.cx + side * R * rng.uniform(0.48, 0.6), eye.cy + rng.normal(0, 0.05 * R)
    mcx, mcy = dcx - side * 2.5 * 2 * rd * rng.uniform(0.9, 1.1), dcy + rng.normal(0.05 * R, 0.03 * R)
    eye.side, eye.rd, eye.dcx, eye.dcy, eye.mcx, eye.mcy = side, rd, dcx, dcy, mcx, mcy
    dm = np.sqrt((xx - mcx) ** 2 + (yy - mcy) ** 2)
    rgb *= (1 - rng.uniform(0.25, 0.45) * np.exp(-(dm ** 2) / (2 * (1.1 * rd) ** 2)))[..., None]
    rgb *= (1 - 0.15 * np.exp(-(dm ** 2) / (2 * (0.25 * rd) ** 2)))[..., None]  # fovea
    canvas = Canvas(rgb)
    sl = canvas.window(dcx, dcy, 4.0 * rd)
    dx, dy = canvas.xx[sl] - dcx, canvas.yy[sl] - dcy
    halo = np.exp(-(dx ** 2 + dy ** 2) / (2 * (1.2 * rd) ** 2)).astype(np.float32) * 0.35
    canvas.blend(sl, halo, base * 1.25)
    disc = _blob_alpha(dx, dy, rd, 6 * s, rng, wobble=0.05, aspect=rng.uniform(0.85, 1.0), angle=math.pi / 2)
    canvas.blend(sl, disc * 0.85, np.array([1.0, 0.8, 0.45], np.float32) * min(1.0, bright * 1.3))
    cup = _blob_alpha(dx + side * 0.15 * rd, dy, rd * rng.uniform(0.3, 0.5), 4 * s, rng, wobble=0.08)
    canvas.blend(sl, cup * 0.75, np.array([1.0, 0.93, 0.75], np.float32))
    return canvas


def _vessels(eye: Eye, rng: np.random.Generator, canvas: Canvas) -> None:
    """Veins and arteries, drawn at 2x and box-filtered down for anti-aliased coverage."""
    size, s, R, side, ss = eye.size, eye.s, eye.R, eye.side, 2

    def inside(x: float, y: float) -> bool:  # in the eye, and out of the avascular zone round the fovea
        x, y = x / ss, y / ss
        in_eye = (x - eye.cx) ** 2 + (y - eye.cy) ** 2 < (R * 0.99) ** 2
        return in_eye and (x - eye.mcx) ** 2 + (y - eye.mcy) ** 2 > (0.9 * eye.rd) ** 2

    coverage = {}
    for kind, w0 in (("vein", 9.0), ("artery", 6.5)):
        layer = Image.new("L", (size * ss, size * ss), 0)
        draw = ImageDraw.Draw(layer)
        for vert in (-1, 1):  # superior, inferior
            kw = dict(step=6 * s * ss, inside=inside, depth=2)
            # temporal arcade: leaves the disc steeply, then bends around the macula (curvature per pixel)
            a0 = math.atan2(vert * 1.0, -side * 0.45 + rng.normal(0, 0.08))
            curv = side * vert * rng.uniform(0.0022, 0.003) / (s * ss)
            _grow_vessels(draw, rng, eye.dcx * ss, eye.dcy * ss, a0, w0 * s * ss * rng.uniform(0.9, 1.1),
                          R * ss * rng.uniform(1.5, 1.9), curv, **kw)
            # nasal branch: shorter and straighter, away from the macula
            a1 = math.atan2(vert * 0.8, side * 1.0 + rng.normal(0, 0.1))
            _grow_vessels(draw, rng, eye.dcx * ss, eye.dcy * ss, a1, 0.75 * w0 * s * ss,
                          R * ss * rng.uniform(0.7, 1.0), rng.normal(0, 0.001), **kw)
        coverage[kind] = np.asarray(layer.resize((size, size), Image.BOX), np.float32) / 255.0
    full = (slice(0, size), slice(0, size))
    vein_f = np.array([0.55, 0.30, 0.40], np.float32) * rng.uniform(0.9, 1.05)
    art_f = np.array([0.80, 0.55, 0.65], np.float32) * rng.uniform(0.95, 1.05)
    canvas.multiply(full, coverage["vein"] * 0.95, vein_f)
    canvas.multiply(full, coverage["artery"] * 0.9, art_f)


def _camera(rgb: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Optical blur and sensor noise over the finished picture (the surround already black)."""
    from PIL import ImageFilter

    img = Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0) * s))
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0, rng.uniform(1.0, 2.5), arr.shape).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8)


class LesionPainter:
    """Paints lesions of a drawn profile (diabetic, AMD or mixed) and keeps each kind's exact mask (opacity >= 0.5)."""

    OPACITY = {"SE": 0.7, "DR": 0.75, "SC": 0.8}

    def __init__(self, canvas: Canvas, rng: np.random.Generator, eye: Eye, bright: float = 1.0,
                 dark: float = 1.0) -> None:
        """``bright`` scales the colours of blended (bright) lesions to a real photograph's exposure, ``dark`` the
        depth of darkening (red) lesions; 1, 1: the synthetic photographs' own palette."""
        self.canvas, self.rng, self.eye, self.s = canvas, rng, eye, eye.s
        self.bright, self.dark = bright, dark
        self.masks = {k: np.zeros((canvas.size, canvas.size), bool) for k in LESION_KINDS}
        self.post = 0.75 * eye.R  # the posterior pole, where diabetic lesions gather

    def spot(self, x: float, y: float) -> bool:
        e = self.eye
        inside_eye = (x - e.cx) ** 2 + (y - e.cy) ** 2 < (0.93 * e.R) ** 2
        return inside_eye and (x - e.dcx) ** 2 + (y - e.dcy) ** 2 > (1.5 * e.rd) ** 2

    def near(self, x0: float, y0: float, spread: float) -> tuple[float, float]:
        for _ in range(50):
            x, y = x0 + self.rng.normal(0, spread), y0 + self.rng.normal(0, spread)
            if self.spot(x, y):
                return x, y
        return self.eye.mcx, self.eye.mcy

    def paint(self, kind: str, x: float, y: float, r: float, colour: Any, mode: str = "blend", **blob: Any) -> None:
        c = self.canvas
        sl = c.window(x, y, r * blob.get("aspect", 1.0) * 1.6 + blob.get("edge", 1.0) * 2)
        a = _blob_alpha(c.xx[sl] - x, c.yy[sl] - y, r, blob.pop("edge", 1.0), self.rng, **blob)
        a *= self.OPACITY.get(kind, 1.0)
        colour = np.asarray(colour, np.float32)
        if mode == "blend" and self.bright != 1.0:
            colour = colour * np.float32(self.bright)
        if mode != "blend" and self.dark != 1.0:
            colour = 1 - np.float32(self.dark) * (1 - colour)
        (c.blend if mode == "blend" else c.multiply)(sl, a, colour)
        self.masks[kind][sl] |= a >= 0.5

    def paint_all(self) -> dict[str, np.ndarray]:
        rng, e, s = self.rng, self.eye, self.s
        profile = rng.choice(["dr", "dr", "amd", "mixed"])
        kinds = {"dr": ("MA", "HE", "EX", "SE"), "amd": ("DR", "SC", "HE"), "mixed": LESION_KINDS}[profile]
        kinds = [k for k in kinds if rng.random() < 0.8] or [kinds[0]]
        for kind in kinds:
            getattr(self, f"_{kind.lower()}")()
        if not any(m.any() for m in self.masks.values()):
            self.paint("HE", e.mcx + 40 * s, e.mcy, 10 * s, [0.42, 0.14, 0.15], "multiply", edge=2 * s, wobble=0.3)
        return {k: m for k, m in self.masks.items() if m.any()}

    def _ma(self) -> None:  # microaneurysms
        rng, e, s = self.rng, self.eye, self.s
        for _ in range(rng.integers(6, 30)):
            x, y = self.near(e.mcx, e.mcy, 0.45 * self.post)
            self.paint("MA", x, y, rng.uniform(1.2, 2.6) * s, [0.45, 0.12, 0.12], "multiply", edge=0.8 * s)

    def _he(self) -> None:  # haemorrhages: dot, blot, flame
        rng, e, s = self.rng, self.eye, self.s
        for _ in range(rng.integers(2, 10)):
            x, y = self.near(e.mcx, e.mcy, 0.55 * self.post)
            t = rng.choice(["dot", "blot", "flame"])
            if t == "dot":
                self.paint("HE", x, y, rng.uniform(3, 6) * s, [0.45, 0.15, 0.15], "multiply", edge=1.2 * s)
            elif t == "blot":
                self.paint("HE", x, y, rng.uniform(6, 15) * s, [0.42, 0.14, 0.15], "multiply", edge=2 * s, wobble=0.3)
            else:  # flame: along the nerve fibres, i.e. radial from the disc
                ang = math.atan2(y - e.dcy, x - e.dcx)
                self.paint("HE", x, y, rng.uniform(3, 6) * s, [0.5, 0.18, 0.18], "multiply", edge=1.5 * s,
                           aspect=rng.uniform(2.5, 4.5), angle=ang, wobble=0.15)

    def _ex(self) -> None:  # hard exudates, in clusters or circinate rings
        rng, e, s = self.rng, self.eye, self.s
        for _ in range(rng.integers(1, 4)):
            x0, y0 = self.near(e.mcx, e.mcy, 0.5 * self.post)
            ring = rng.random() < 0.4
            for _ in range(rng.integers(6, 25)):
                if ring:  # circinate: a ring of exudates around a leaking point
                    th, rr = rng.uniform(0, 2 * math.pi), rng.normal(25 * s, 4 * s)
                    x, y = x0 + rr * math.cos(th), y0 + rr * math.sin(th)
                else:
                    x, y = x0 + rng.normal(0, 14 * s), y0 + rng.normal(0, 14 * s)
                if self.spot(x, y):
                    self.paint("EX", x, y, rng.uniform(1.5, 5) * s, [1.0, 0.9, 0.45], edge=0.7 * s, wobble=0.25)

    def _se(self) -> None:  # soft exudates (cotton-wool spots)
        rng, e, s = self.rng, self.eye, self.s
        for _ in range(rng.integers(1, 5)):
            x, y = self.near(e.dcx - (e.dcx - e.mcx) * 0.5, e.dcy, 0.5 * self.post)
            self.paint("SE", x, y, rng.uniform(8, 18) * s, [0.95, 0.85, 0.68], edge=9 * s, wobble=0.3)

    def _dr(self) -> None:  # drusen round the macula
        rng, e, s = self.rng, self.eye, self.s
        for _ in range(rng.integers(6, 25)):
            x, y = self.near(e.mcx, e.mcy, 2.2 * e.rd)
            self.paint("DR", x, y, rng.uniform(2, 7) * s, [0.98, 0.82, 0.42], edge=2.5 * s)

    def _sc(self) -> None:  # a scar with pigment clumps at its rim
        rng, e, s = self.rng, self.eye, self.s
        x, y = self.near(e.mcx, e.mcy, 1.5 * e.rd)
        r = rng.uniform(30, 65) * s
        self.paint("SC", x, y, r, [0.9, 0.7, 0.45], edge=5 * s, wobble=0.25)
        for _ in range(rng.integers(5, 15)):
            th = rng.uniform(0, 2 * math.pi)
            px, py = x + 0.9 * r * math.cos(th), y + 0.9 * r * math.sin(th)
            self.paint("SC", px, py, rng.uniform(2, 6) * s, [0.25, 0.14, 0.1], "multiply", edge=1.0 * s, wobble=0.3)


def generate(out: str | os.PathLike, normal: int, abnormal: int, size: int = 768, seed: int = 0,
             progress: bool = True) -> Path:
    """Write a ``folder``-layout dataset: images, masks per kind, ``masks/lesion_union``, FOV masks, manifest."""
    from tqdm.auto import tqdm

    from wdmt.io import write_png_atomic

    if size < 64:
        raise WdmtError(None, f"synth: size {size} is too small (at least 64)")
    if normal < 0 or abnormal < 0 or normal + abnormal == 0:
        raise WdmtError(None, "synth: ask for at least one image")
    out = Path(out)
    if (out / "manifest.csv").exists():
        raise WdmtError(out, "already holds a dataset (manifest.csv exists); choose another --out")
    rows = []
    jobs = [(0, i) for i in range(normal)] + [(1, i) for i in range(abnormal)]
    for label, i in tqdm(jobs, desc="synth", unit="img", disable=None if progress else True):
        f = render(size, np.random.default_rng([seed, label, i]), abnormal=bool(label))
        stem = f"synth_{'abnormal' if label else 'normal'}_{i:03d}"
        sub = "abnormal" if label else "normal"
        (out / sub).mkdir(parents=True, exist_ok=True)
        with atomic_path(out / sub / f"{stem}.jpg") as tmp:
            Image.fromarray(f.image).save(tmp, format="JPEG", quality=95)
        write_png_atomic(f.fov.astype(np.uint8) * 255, out / "masks" / "fov" / f"{stem}.png")
        mask = ""
        if label:
            for kind, m in f.lesions.items():
                write_png_atomic(m.astype(np.uint8) * 255, out / "masks" / kind / f"{stem}_{kind}.png")
            write_png_atomic(f.lesion_union.astype(np.uint8) * 255, out / "masks" / "lesion_union" / f"{stem}.png")
            mask = f"masks/lesion_union/{stem}.png"
        rows.append({"file": f"{sub}/{stem}.jpg", "label": label, "mask": mask, "fov_mask": f"masks/fov/{stem}.png"})
    write_csv_atomic(out / "manifest.csv", rows, ["file", "label", "mask", "fov_mask"])
    return out


def montage(out: str | os.PathLike, n: int = 8, size: int = 384, seed: int = 0, cols: int = 4) -> Path:
    """A grid of synthetic images (half normal, half abnormal with lesion outlines in cyan) as a PNG."""
    from scipy import ndimage

    tiles = []
    for k in range(n):
        label = int(k >= n // 2)
        f = render(size, np.random.default_rng([seed, label, k - label * (n // 2)]), abnormal=bool(label))
        img = f.image.copy()
        if label:
            u = f.lesion_union
            edge = u & ~ndimage.binary_erosion(u)
            right = img.copy()
            right[edge] = (0, 255, 255)
            img = np.concatenate([img, right], axis=1)
        else:
            img = np.concatenate([img, img], axis=1)
        tiles.append(img)
    rows = [np.concatenate(tiles[i : i + cols // 2 if cols > 1 else 1], axis=1) for i in range(0, n, max(1, cols // 2))]
    grid = np.concatenate(rows, axis=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Image.fromarray(grid).save(tmp)
    return out
