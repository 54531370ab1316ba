"""Anomaly maps for whole photographs, and the two evaluation protocols.

``paper`` (method-spec 1.7): pool every pixel of the abnormal test images, AUROC, a threshold chosen by Youden's J
on those same test pixels, balanced accuracy and the paper's "F1" (micro = pixel accuracy). ``strict``: the
thresholds come from the validation normals only (a high quantile of their pixel and image scores, stored in the
run), so nothing is tuned on test data. Both add the true lesion-class F1 (Dice), AP and AUPRO at FPR 0.3.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wdmt import metrics as M
from wdmt.atomic import write_csv_atomic
from wdmt.config import EvalConfig, TrainConfig
from wdmt.figures import pyplot, save_figure
from wdmt.models import AnomalyModel
from wdmt.pipeline import PreparedSample
from wdmt.preprocess import resolve_tiling, tiling_functions, to_tensor
from wdmt.runtime import flush_denormals
from wdmt.scoring import image_score, postprocess_map

flush_denormals()

FOV_MODES = ("none", "zero", "inside")


@dataclass
class ImageResult:
    """One photograph at S x S: raw residual map, reconstruction, HOG prediction, per-tile latent distances, and
    the model's own per-tile scores (``ModelOutput.score``)."""

    item: PreparedSample
    raw_map: np.ndarray
    recon: np.ndarray
    hog: np.ndarray | None
    latent: np.ndarray | None
    tile_scores: np.ndarray | None = None

    def map(self, ev: EvalConfig) -> np.ndarray:
        """The evaluated map; memoised per post-processing (pooling, AUPRO, scores and pictures all ask for it, under
        evaluation settings that differ only in how they score or threshold it)."""
        cache = self.__dict__.setdefault("_maps", {})
        key = (ev.fov, ev.smooth_sigma)  # all that postprocess_map reads
        if key not in cache:
            cache[key] = postprocess_map(self.raw_map, self.item.prepared.fov, ev)
        return cache[key]

    def score(self, ev: EvalConfig) -> float:
        return image_score(self.map(ev), self.item.prepared.fov, ev, self.latent, self.tile_scores)


@torch.no_grad()
def infer(model: AnomalyModel, items: list[PreparedSample], cfg: TrainConfig, ev: EvalConfig | None = None,
          device: torch.device | str = "cpu", progress: bool = False, batch_size: int = 9,
          photos: int = 1) -> list[ImageResult]:
    """Tile, reconstruct and stitch each photograph as ``cfg`` trained and ``ev`` (default: ``cfg.eval``) evaluates:
    its tiling, arithmetic and image score. Maps are |x - x_hat| at S x S, float32 whatever the arithmetic.
    ``photos`` > 1 sends the tiles of that many photographs through the model together (a GPU's throughput needs
    batches); a forward pass then takes up to ``batch_size * photos`` tiles. On a CPU the default of one photograph
    keeps results bit for bit those of every earlier run."""
    ev = ev or cfg.eval
    model.eval()
    if ev.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, not {ev.precision!r}")
    run = _TileRunner(model, cfg, ev, torch.device(device), batch_size * max(1, photos))
    out: list[ImageResult] = []
    bar = tqdm(total=len(items), desc="scoring", unit="img", disable=None if progress else True)
    for i in range(0, len(items), max(1, photos)):
        group = items[i : i + max(1, photos)]
        out.extend(run(group))
        bar.update(len(group))
    bar.close()
    return out


class _TileRunner:
    """Cuts photographs into the evaluation's tiles, runs the model on them in chunks and stitches the outputs back
    into one :class:`ImageResult` per photograph."""

    def __init__(self, model: AnomalyModel, cfg: TrainConfig, ev: EvalConfig, device: torch.device,
                 chunk: int) -> None:
        self.model, self.ev, self.device, self.chunk = model, ev, device, chunk
        self.n = cfg.preprocess.tiles
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.tiling = resolve_tiling(ev.tiling, model.info.input_size)
        self.cut, self.join = tiling_functions(self.tiling)
        bf16 = ev.precision == "bf16"
        self.arith = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def __call__(self, group: list[PreparedSample]) -> list[ImageResult]:
        x = torch.cat([self.cut(to_tensor(p.prepared.image), self.n) for p in group])
        parts: dict[str, list[torch.Tensor]] = {"recon": [], "map": [], "hog": [], "latent": [], "score": []}
        for i in range(0, x.shape[0], self.chunk):
            xb = x[i : i + self.chunk].to(self.device).contiguous(memory_format=self.fmt)
            with self.arith():
                o = self.model.predict(xb, with_latent=self.ev.score == "gatingano")
            for key, t in (("recon", o.recon), ("map", o.anomaly_map), ("score", o.score.detach()),
                           ("hog", o.hog), ("latent", o.latent_distance)):
                if t is not None:
                    parts[key].append(t.float().cpu())
        per = x.shape[0] // len(group)
        whole = {k: torch.cat(v) if v else None for k, v in parts.items()}
        return [self._result(p, {k: None if v is None else v[j * per : (j + 1) * per] for k, v in whole.items()})
                for j, p in enumerate(group)]

    def _result(self, p: PreparedSample, t: dict[str, torch.Tensor | None]) -> ImageResult:
        rec = self.join(t["recon"], self.n).numpy()
        lat = t["latent"]
        if lat is not None and self.tiling == "overlap":  # GatingAno's spread is over the grid's tiles
            m = 2 * self.n - 1
            lat = lat[[2 * a * m + 2 * b for a in range(self.n) for b in range(self.n)]]
        return ImageResult(
            item=p,
            raw_map=self.join(t["map"], self.n)[0].numpy().astype(np.float32),
            recon=rec[0] if rec.shape[0] == 1 else rec.transpose(1, 2, 0),
            hog=self.join(t["hog"], self.n).numpy() if t["hog"] is not None else None,
            latent=lat.numpy() if lat is not None else None,
            tile_scores=t["score"].numpy(),
        )


def calibrate(results: list[ImageResult], ev: EvalConfig, source: str = "validation-normal") -> dict[str, Any]:
    """Strict-protocol thresholds from normal validation images: quantiles of their pixel and image scores."""
    if not results:
        return {"pixel_threshold": None, "image_threshold": None, "own_image_threshold": None, "n_images": 0,
                "eval": asdict(ev)}
    pix = np.concatenate([
        (r.map(ev)[r.item.prepared.fov] if ev.fov == "inside" else r.map(ev).ravel()) for r in results
    ])
    scores = np.array([r.score(ev) for r in results])
    own = np.array([r.score(replace(ev, score="model")) for r in results])
    return {
        "pixel_threshold": float(np.quantile(pix, ev.pixel_quantile)),
        "image_threshold": float(np.quantile(scores, ev.image_quantile)),
        "own_image_threshold": float(np.quantile(own, ev.image_quantile)),
        "n_images": len(results),
        "eval": asdict(ev),
        "rule": f"pixel: quantile {ev.pixel_quantile} of {source} pixels; image: quantile {ev.image_quantile} "
                f"of {source} image scores (the map-based score and the model's own alike)",
    }


def _pixel_pool(results: list[ImageResult], ev: EvalConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Scores and labels of the pooled pixels of the annotated abnormal images, per image."""
    ss, ys = [], []
    for r in results:
        p = r.item.prepared
        if r.item.sample.label != 1 or p.lesion is None:
            continue
        m = r.map(ev)
        if ev.fov == "inside":
            ss.append(m[p.fov])
            ys.append(p.lesion[p.fov])
        else:
            ss.append(m.ravel())
            ys.append(p.lesion.ravel())
    return ss, ys


Thresholds = dict[str, tuple[float, str]]  # protocol name -> (threshold, how it was chosen)


def _decisions(out: dict[str, Any], s: np.ndarray, y: np.ndarray, extra: Thresholds | None) -> None:
    for name, (thr, rule) in (extra or {}).items():
        out[name] = {"threshold": thr, "threshold_rule": rule, **M.at_threshold(M.confusion(s, y, thr))}


def pixel_metrics(results: list[ImageResult], ev: EvalConfig, strict_threshold: float | None,
                  n_boot: int = 1000, seed: int = 0, extra: Thresholds | None = None) -> dict[str, Any]:
    """Pooled pixel metrics of both protocols (and of ``extra`` thresholds), plus a bootstrap interval for the
    AUROC over images."""
    ss, ys = _pixel_pool(results, ev)
    if not ss:
        return {"n_images": 0}
    s, y = np.concatenate(ss), np.concatenate(ys)
    c = M.curve(s, y)
    annotated = [r for r in results if r.item.sample.label == 1 and r.item.prepared.lesion is not None]
    aupro = M.aupro([r.map(ev) for r in annotated], [r.item.prepared.lesion for r in annotated],
                    valid=[r.item.prepared.fov for r in annotated] if ev.fov == "inside" else None)
    out: dict[str, Any] = {
        "n_images": len(ss), "n_pixels": int(s.size), "lesion_fraction": float(y.mean()),
        "auroc": M.auroc(c), "ap": M.average_precision(c), "aupro": aupro,
        "roc": _roc_points(c),
        "error": _error_contrast(annotated, ev),
    }
    youden = M.youden_threshold(c)
    out["paper"] = {"threshold": youden, "threshold_rule": "Youden's J on the test pixels themselves (paper)",
                    **M.at_threshold(M.confusion(s, y, youden))}
    if strict_threshold is not None:
        out["strict"] = {"threshold": strict_threshold, "threshold_rule": "quantile of validation-normal pixels",
                         **M.at_threshold(M.confusion(s, y, strict_threshold))}
    _decisions(out, s, y, extra)
    if n_boot <= 0:  # the paper's epoch choice scores every epoch without an interval
        out["auroc_ci95"] = (float("nan"), float("nan"))
        return out
    hi = float(np.quantile(s, 0.9999)) or 1.0
    bins = np.linspace(0, hi, 2049)
    hists = [(np.histogram(np.clip(a, 0, hi), bins)[0], np.histogram(np.clip(a[b], 0, hi), bins)[0])
             for a, b in zip(ss, ys, strict=True)]
    hists = [(all_h - pos_h, pos_h) for all_h, pos_h in hists]
    negs = np.array([h[0] for h in hists])
    poss = np.array([h[1] for h in hists])
    out["auroc_ci95"] = M.bootstrap_ci(
        lambda idx: M.histogram_auroc(poss[idx].sum(0), negs[idx].sum(0)), len(ss), n_boot, seed
    )
    return out


def _error_contrast(annotated: list[ImageResult], ev: EvalConfig) -> dict[str, float]:
    """Mean map value on lesion pixels, on lesion-free pixels inside the field of view and on the black surround:
    whether a model fails to reconstruct lesions (contrast > 1) or reproduces them (an identity-like network: contrast
    near 1), and how much of its error sits outside the retina."""
    les, fov_ok, out = [], [], []
    for r in annotated:
        m, lesion, fov = r.map(ev), r.item.prepared.lesion, r.item.prepared.fov
        les.append(m[lesion])
        fov_ok.append(m[fov & ~lesion])
        out.append(m[~fov & ~lesion])
    mean = {
        k: float(np.concatenate(v).mean()) if sum(a.size for a in v) else float("nan")
        for k, v in (("lesion", les), ("normal_fov", fov_ok), ("outside_fov", out))
    }
    mean["contrast"] = mean["lesion"] / mean["normal_fov"] if mean["normal_fov"] > 0 else float("nan")
    return mean


def _roc_points(c: M.Curve, n: int = 200) -> dict[str, list[float]]:
    """The ROC thinned to about ``n`` points, enough to draw it again (benchmark figures)."""
    idx = np.unique(np.linspace(0, c.fpr.size - 1, n).astype(int))
    return {"fpr": [0.0, *map(float, c.fpr[idx])], "tpr": [0.0, *map(float, c.tpr[idx])]}


def image_metrics(
    results: list[ImageResult], ev: EvalConfig, strict_threshold: float | None, n_boot: int = 1000, seed: int = 0,
    extra: Thresholds | None = None,
) -> dict[str, Any]:
    """Image-level AUROC / AP and decisions under both thresholds (needs normal and abnormal test images)."""
    y = np.array([r.item.sample.label for r in results])
    s = np.array([r.score(ev) for r in results])
    out: dict[str, Any] = {"n_images": int(y.size), "n_abnormal": int(y.sum()), "score": ev.score}
    if y.min(initial=1) == y.max(initial=0):
        out["note"] = "image-level metrics need both normal and abnormal test images"
        return out
    c = M.curve(s, y)
    out.update(auroc=M.auroc(c), ap=M.average_precision(c))
    youden = M.youden_threshold(c)
    out["paper"] = {
        "threshold": youden,
        "threshold_rule": "Youden's J on the test images themselves",
        **M.at_threshold(M.confusion(s, y, youden)),
    }
    if strict_threshold is not None:
        out["strict"] = {
            "threshold": strict_threshold,
            "threshold_rule": "quantile of validation-normal image scores",
            **M.at_threshold(M.confusion(s, y, strict_threshold)),
        }
    _decisions(out, s, y, extra)
    pos, neg = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    rng = np.random.default_rng(seed)

    def stratified(_: np.ndarray) -> float:  # resample within each class so both stay present
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        return M.auroc(M.curve(s[idx], y[idx]))

    out["auroc_ci95"] = M.bootstrap_ci(stratified, y.size, n_boot, seed)
    return out


PROTOCOLS = ("paper", "strict", "proxy")


def _headline(block: dict[str, Any], protocol: str) -> dict[str, Any]:
    """Flatten one protocol's numbers next to the threshold-free ones: the keys users and tables read."""
    if not block or "auroc" not in block:
        return block
    chosen = block.get(protocol) or {}
    flat = {k: v for k, v in block.items() if k not in PROTOCOLS}
    flat.update({k: v for k, v in chosen.items()})
    flat["protocol"] = protocol
    for p in PROTOCOLS:
        if p in block or p != "proxy":
            flat[f"{p}_protocol"] = block.get(p)
    return flat


def fov_variants(results: list[ImageResult], ev: EvalConfig) -> dict[str, float]:
    """Pixel AUROC with the map as is, zeroed outside the field of view, and over FOV pixels only."""
    out = {}
    for mode in FOV_MODES:
        ss, ys = _pixel_pool(results, replace(ev, fov=mode))
        out[mode] = M.auroc(M.curve(np.concatenate(ss), np.concatenate(ys))) if ss else float("nan")
    return out


def write_predictions(
    path: Path, results: list[ImageResult], ev: EvalConfig, threshold: float | None, own_threshold: float | None = None
) -> None:
    """One row per image: the map-based score (``ev.score``) and the model's own, each with its decision."""

    def cells(score: float, thr: float | None) -> tuple[str, Any, str]:
        return f"{score:.6g}", "" if thr is None else int(score >= thr), "" if thr is None else f"{thr:.6g}"

    rows = []
    own_ev = replace(ev, score="model")
    for r in results:
        row: dict[str, Any] = {"id": r.item.sample.id, "label": r.item.sample.label}
        row["score"], row["decision"], row["threshold"] = cells(r.score(ev), threshold)
        row["own_score"], row["own_decision"], row["own_threshold"] = cells(r.score(own_ev), own_threshold)
        rows.append(row)
    write_csv_atomic(path, rows, list(rows[0]) if rows else ["id"])


def plot_roc(path: Path, results: list[ImageResult], ev: EvalConfig, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ss, ys = _pixel_pool(results, ev)
    if ss:
        c = M.curve(np.concatenate(ss), np.concatenate(ys))
        step = max(1, c.fpr.size // 4000)
        ax.plot(np.r_[0, c.fpr[::step], 1], np.r_[0, c.tpr[::step], 1], label=f"pixels (AUROC {M.auroc(c):.3f})")
    y = np.array([r.item.sample.label for r in results])
    if y.min(initial=1) != y.max(initial=0):
        c = M.curve(np.array([r.score(ev) for r in results]), y)
        ax.plot(np.r_[0, c.fpr], np.r_[0, c.tpr], label=f"images (AUROC {M.auroc(c):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_epoch_choice(path: Path, rows: list[dict[str, Any]], ours: int | None, chosen: int, title: str) -> None:
    """Test AUROC per kept epoch over the validation error and alpha, with both rules' epochs marked: shows how far
    the paper's pick (the best of many noisy test scores) sits above what validation data alone would keep."""
    plt = pyplot()
    ep = [r["epoch"] for r in rows]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6, 5), dpi=110, sharex=True)
    a1.plot(ep, [r["test_pixel_auroc"] for r in rows], ".-", label="test pixel AUROC")
    a1.plot(ep, [r["test_aupro"] for r in rows], ".-", alpha=0.6, label="test AUPRO")
    a1.axvline(chosen, color="tab:red", ls="--", label=f"paper's choice (epoch {chosen})")
    if ours is not None:
        a1.axvline(ours, color="tab:green", ls=":", label=f"ours, validation normals (epoch {ours})")
    a1.set_title(title, fontsize=9)
    a1.set(ylabel="test metric")
    a1.legend(fontsize=7, loc="lower left")
    a2.plot(ep, [r["val_error"] for r in rows], ".-", color="tab:purple", label="validation-normal error")
    a2.set(xlabel="epoch", ylabel="validation error", yscale="log")
    if any(r.get("alpha") is not None for r in rows):
        b = a2.twinx()
        b.plot(ep, [r.get("alpha") for r in rows], color="grey", alpha=0.6, label="alpha")
        b.set(ylabel="alpha", ylim=(-0.05, 1.05))
    a2.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)


def picture(path: Path, r: ImageResult, ev: EvalConfig, vmax: float, threshold: float | None = None) -> None:
    """Input, reconstruction, HOG prediction, heat map (fixed scale per run) and the ground-truth contour."""
    plt = pyplot()
    p = r.item.prepared
    panels = [("input", p.image, "gray", None), ("reconstruction", r.recon, "gray", None)]
    if r.hog is not None:
        h = r.hog.mean(axis=0)
        panels.append(("HOG prediction", h, "gray", max(float(np.quantile(h, 0.995)), 1e-6)))
    panels.append(("anomaly map", r.map(ev), "inferno", vmax))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3 * (len(panels) + 1), 3.2), dpi=100)
    for ax, (name, img, cmap, vm) in zip(axes, panels, strict=False):
        ax.imshow(
            np.clip(img, 0, 1) if vm is None and img.dtype != np.uint8 else img,
            cmap=cmap,
            vmin=0,
            vmax=vm if vm is not None else (255 if img.dtype == np.uint8 else 1),
        )
        ax.set_title(name, fontsize=9)
    ax = axes[-1]
    ax.imshow(p.image, cmap="gray")
    ax.imshow(
        np.ma.masked_less(r.map(ev), (threshold if threshold is not None else 0.5 * vmax)),
        cmap="autumn",
        alpha=0.6,
        vmin=0,
        vmax=vmax,
    )
    if p.lesion is not None and p.lesion.any():
        ax.contour(p.lesion, levels=[0.5], colors="cyan", linewidths=0.6)
    ax.set_title("above threshold / lesions (cyan)", fontsize=9)
    for a in axes:
        a.axis("off")
    fig.suptitle(f"{r.item.sample.id}  label {r.item.sample.label}  score {r.score(ev):.4f}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
