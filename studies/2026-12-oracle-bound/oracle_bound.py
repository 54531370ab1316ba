"""How far a run's own ingredients could go: the pixel AUROC inside the FOV its members reach when the weights of
their sum and the smoothing are picked **on the test photographs themselves**.

    python studies/2026-12-oracle-bound/oracle_bound.py --runs RUN [RUN ...] [--dark-widths PX [PX ...]] [--save CSV]

A bound, never a choice: nothing here reaches a model, a default or a shipped file. It answers one question a target
raises when it is missed: is the gap in how the members were weighted and smoothed (choices the proxy set makes), or
in the members themselves? If even the test set's own pick stays under the target, no better proxy closes the gap.

Members: a fusion's leaves (its segmenter, its priors, recursively); a ``contrast`` leaf counts as two, its dark and
bright sides, so that the two polarities get weights of their own; with ``--dark-widths``, its dark side smoothed by
each of those Gaussians counts too (a wide dark term, which no shipped model has); any other run is one member, its
raw map as its own evaluation settings tile it. Each member is divided by its 0.99 quantile over the healthy FOV
pixels, then ``sum(w_i * member_i)``, smoothed by one Gaussian, is scored against the lesion masks. The search is
coordinate ascent over weights in ``WEIGHTS`` and sigmas in ``SIGMAS``, from two starts (the first member alone, all
members equal), on every ``STRIDE``-th pixel each way (a quarter of the pixels: the bound, not the last digit).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from wdmt import metrics as M
from wdmt.evaluate import infer
from wdmt.measure.reports import report_runs, runs_parser
from wdmt.models.contrast import LocalContrast
from wdmt.models.features import smooth
from wdmt.models.fusion.torch_model import Fusion, member_map
from wdmt.pipeline import load_samples
from wdmt.preprocess import to_tensor
from wdmt.rundir import RunDir

WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
SIGMAS = (0.0, 2.0, 4.0, 8.0, 16.0)
STRIDE = 2
ROUNDS = 3


def leaves(model: torch.nn.Module, x: torch.Tensor, tiles: int, name: str,
           dark_widths: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Every leaf member's (S, S) map of one picture ``x`` (1, C, S, S)."""
    if isinstance(model, Fusion):
        return {**leaves(model.segmenter, x, model.cfg.segmenter_tiles, model.cfg.segmenter, dark_widths),
                **leaves(model.prior, x, model.cfg.prior_tiles, model.cfg.prior, dark_widths)}
    if isinstance(model, LocalContrast):
        dark, bright, _ = model.sides(x)
        wide = {f"{name} dark {w:g} px": smooth(dark, w)[0, 0].numpy() for w in dark_widths}
        return {f"{name} dark": dark[0, 0].numpy(), f"{name} bright": bright[0, 0].numpy(), **wide}
    return {name: member_map(model, x, tiles)[0, 0].numpy()}


def member_maps(model: torch.nn.Module, name: str, items: list, results: list,
                dark_widths: tuple[float, ...]) -> list[dict[str, np.ndarray]]:
    """Each picture's members; a run that is not a fusion is its own raw map, taken from its evaluation ``results``."""
    if not isinstance(model, Fusion):
        return [{name: r.raw_map} for r in results]
    with torch.no_grad():
        return [leaves(model, to_tensor(it.prepared.image)[None], 1, "", dark_widths) for it in items]


def _auroc_ap(score: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    c = M.curve(score, y)
    return M.auroc(c), M.average_precision(c)


class Search:
    """The members' maps of the test photographs and their labels, scored for any weights and sigma."""

    def __init__(self, maps: list[dict[str, np.ndarray]], fovs: list[np.ndarray], lesions: list[np.ndarray]) -> None:
        self.maps, self.names = maps, list(maps[0])
        sub = (slice(None, None, STRIDE), slice(None, None, STRIDE))
        self.keep = [f[sub] for f in fovs]
        self.y = np.concatenate([m[sub][k] for m, k in zip(lesions, self.keep, strict=True)])
        self.sub, self._cache = sub, {}
        healthy = ~self.y
        self.scale = {n: max(float(np.quantile(self.parts(0.0)[n][healthy], 0.99)), 1e-12) for n in self.names}

    def parts(self, sigma: float) -> dict[str, np.ndarray]:
        if sigma not in self._cache:
            self._cache[sigma] = {n: np.concatenate([
                (ndimage.gaussian_filter(m[n], sigma) if sigma else m[n])[self.sub][k]
                for m, k in zip(self.maps, self.keep, strict=True)]) for n in self.names}
        return self._cache[sigma]

    def score(self, w: dict[str, float], sigma: float) -> tuple[float, float]:
        p = self.parts(sigma)
        return _auroc_ap(sum(w[n] / self.scale[n] * p[n] for n in self.names), self.y)

    def ascend(self, w: dict[str, float], sigma: float) -> tuple[float, float, dict[str, float], float]:
        best = self.score(w, sigma)
        for _ in range(ROUNDS):
            moved = False
            for s in SIGMAS:
                v = self.score(w, s)
                if v[0] > best[0]:
                    best, sigma, moved = v, s, True
            for n in self.names if len(self.names) > 1 else ():
                for wn in WEIGHTS:
                    trial = {**w, n: wn}
                    if not any(trial.values()):
                        continue
                    v = self.score(trial, sigma)
                    if v[0] > best[0]:
                        best, w, moved = v, trial, True
            if not moved:
                break
        return best[0], best[1], w, sigma


def run_rows(run: Path, dark_widths: tuple[float, ...] = ()) -> list[dict]:
    rd = RunDir(run)
    cfg = rd.config()
    idx, _ = rd.dataset()
    items = load_samples([s for s in idx.split("test") if s.has_mask], cfg.preprocess, None, progress=False)
    model = rd.load_model("best")[0]
    ev = replace(cfg.eval, fov="inside")  # the run's map as it evaluates itself, on the same pixels
    results = infer(model, items, cfg, ev)
    search = Search(member_maps(model, cfg.model, items, results, dark_widths), [it.prepared.fov for it in items],
                    [it.prepared.lesion for it in items])
    own = _auroc_ap(np.concatenate([r.map(ev)[search.sub][k] for r, k in zip(results, search.keep, strict=True)]),
                    search.y)
    starts = [{n: float(i == 0) for i, n in enumerate(search.names)}, dict.fromkeys(search.names, 1.0)]
    auroc, ap, w, sigma = max((search.ascend(s, 0.0) for s in starts), key=lambda r: r[0])
    alone = {n: search.score({m: float(m == n) for m in search.names}, 0.0)[0] for n in search.names}
    return [{"run": run.name, "model": cfg.model, "seed": cfg.seed,
             "own_auroc_fov": round(own[0], 4), "own_ap_fov": round(own[1], 4),
             "bound_auroc_fov": round(auroc, 4), "bound_ap_fov": round(ap, 4), "bound_sigma": sigma,
             "bound_weights": "; ".join(f"{n.strip()} {w[n]:g}" for n in search.names),
             "members_alone_auroc": "; ".join(f"{n.strip()} {v:.3f}" for n, v in alone.items())}]


def main() -> None:
    ap = runs_parser(__doc__)
    ap.add_argument("--dark-widths", nargs="*", type=float, default=[],
                    help="px: the contrast map's dark side smoothed by each, as members of their own")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report_runs(__doc__, lambda run: run_rows(run, tuple(args.dark_widths)), args)


if __name__ == "__main__":
    main()
