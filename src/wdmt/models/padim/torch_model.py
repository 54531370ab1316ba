"""PaDiM (Defard et al., ICPR 2021) on a frozen ImageNet EfficientNet-Lite0, adapted to fundus photographs.

Not in the WDMT-Net paper: the second feature-embedding family.

* Features: the same locally aware patch features as :mod:`wdmt.models.patchcore` (blocks 4 and 10), of which a
  fixed random subset of ``dims`` channels is kept (the paper's random dimensionality reduction).
* Fit: a Gaussian (mean, covariance + ``reg`` I) of the patch features per position. Our adaptation: positions are
  pooled into a ``grid`` x ``grid`` lattice of cells over the picture. The paper fits one Gaussian per patch position
  on aligned objects and hundreds of images; fundus photographs are only roughly aligned (left and right eyes, the
  disc moving by tens of pixels) and a dataset has tens of normals, so one position alone would give a singular
  covariance from 32 samples. A cell of 4 x 4 positions over 32 photographs gives 512.
  Moments are accumulated in float64 as batches pass, so nothing but the sums is kept.
* Score: the Mahalanobis distance of each patch to its cell's Gaussian, up-sampled bilinearly to the picture and
  smoothed with a Gaussian of ``smooth_sigma`` px; the image score is the map's maximum (the paper's).

There is no reconstruction: ``ModelOutput.recon`` is the input itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from wdmt.models.features import FeatureConfig, FeatureModel, cell_index


@dataclass(frozen=True)
class PaDiMConfig(FeatureConfig):
    dims: int = 100  # the paper's d for ResNet-18: a fixed random subset of the channels
    grid: int = 24  # cells per side (24 x 24 over the 96 x 96 patches of a 768 px picture)
    reg: float = 0.01  # the paper's covariance regulariser


class PaDiM(FeatureModel):
    def __init__(self, cfg: PaDiMConfig = PaDiMConfig()) -> None:
        super().__init__(cfg)
        g = torch.Generator().manual_seed(cfg.seed)
        d = min(cfg.dims, self.feature_dim)
        self.register_buffer("channels", torch.randperm(self.feature_dim, generator=g)[:d].sort().values)
        cells = cfg.grid * cfg.grid
        self.register_buffer("mean", torch.zeros(cells, d))
        # the inverse covariances, symmetric: only their upper triangles are kept (half the run's size)
        self.register_buffer("precision_triu", torch.zeros(cells, d * (d + 1) // 2))
        self.register_buffer("_precision", torch.zeros(cells, d, d), persistent=False)  # unpacked, for the maps
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._sums: list[torch.Tensor] | None = None

    def fit_batch(self, feats: torch.Tensor) -> None:
        """Add the batch's patches to each cell's count, sum and sum of outer products (float64)."""
        f = feats[:, self.channels].float()
        b, d, h, w = f.shape
        cells = self.cfg.grid**2
        if self._sums is None:
            self._sums = [torch.zeros(cells, dtype=torch.float64), torch.zeros(cells, d, dtype=torch.float64),
                          torch.zeros(cells, d, d, dtype=torch.float64)]
        n, s1, s2 = self._sums
        idx = cell_index(h, w, self.cfg.grid).repeat(b)
        rows = f.permute(0, 2, 3, 1).reshape(-1, d).double().cpu()
        n.index_add_(0, idx, torch.ones(len(idx), dtype=torch.float64))
        s1.index_add_(0, idx, rows)
        for c in idx.unique():
            r = rows[idx == c]
            s2[c] += r.t() @ r

    def fit_end(self) -> None:
        if self._sums is None:
            return
        n, s1, s2 = self._sums
        self._sums = None
        cnt = n.clamp_min(1)[:, None]
        mean = s1 / cnt
        cov = (s2 - cnt[..., None] * mean[:, :, None] * mean[:, None, :]) / (cnt[..., None] - 1).clamp_min(1)
        cov = cov + self.cfg.reg * torch.eye(cov.shape[-1], dtype=cov.dtype)
        self.mean.copy_(mean.float())
        rows, cols = torch.triu_indices(cov.shape[-1], cov.shape[-1])
        self.precision_triu.copy_(torch.linalg.inv(cov)[:, rows, cols].float())
        self._precision = self.precision()
        self.fitted.fill_(True)

    def train_state(self) -> dict[str, float]:
        return {"fitted": float(self.fitted)}

    def precision(self) -> torch.Tensor:
        """(cells, d, d) inverse covariances from their stored upper triangles."""
        d = self.mean.shape[1]
        rows, cols = torch.triu_indices(d, d, device=self.precision_triu.device)
        full = self.precision_triu.new_zeros(self.precision_triu.shape[0], d, d)
        full[:, rows, cols] = self.precision_triu
        full[:, cols, rows] = self.precision_triu
        return full

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        full = state_dict.pop(prefix + "precision", None)  # runs saved before the triangles: convert
        if full is not None:
            rows, cols = torch.triu_indices(full.shape[-1], full.shape[-1])
            state_dict[prefix + "precision_triu"] = full[:, rows, cols]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._precision = self.precision()

    def distances(self, feats: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("PaDiM has no Gaussians: fit it first (one training epoch)")
        f = feats[:, self.channels]
        b, d, h, w = f.shape
        idx = cell_index(h, w, self.cfg.grid).to(f.device)
        diff = f.permute(2, 3, 0, 1).reshape(h * w, b, d) - self.mean[idx][:, None]  # (positions, B, d)
        m = torch.einsum("pbi,pij,pbj->pb", diff, self._precision[idx], diff).clamp_min(0).sqrt()
        return m.t().reshape(b, 1, h, w)
