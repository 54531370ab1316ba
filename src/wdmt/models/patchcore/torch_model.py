"""PatchCore (Roth et al., CVPR 2022) on a frozen ImageNet EfficientNet-Lite0, for whole fundus photographs.

Not in the WDMT-Net paper: the feature-embedding family that has led industrial anomaly detection since.

* Features (:class:`wdmt.models.features.FeatureModel`): the outputs of two blocks (default 4 and 10: 40 channels at
  1/8 and 112 at 1/16 of the picture, the analogue of the paper's WideResNet layers 2 and 3), each averaged over its
  3 x 3 neighbourhood ("locally aware patch features"), the coarser one up-sampled to the finer grid, concatenated:
  152 numbers per 8 x 8 px patch.
* Fit: one pass over the training normals collects every patch (at most ``pool`` of them, drawn at random);
  greedy k-centre coreset selection on a random projection to ``projection`` dimensions (as the paper) keeps
  ``coreset_ratio`` of them, at most ``max_bank``. The bank is a buffer, so it is saved in the run's checkpoints
  like weights (``benchmarks/feature_speed.py`` reports its size).
* Score: each patch's distance to its nearest bank entry, computed for about ``chunk`` patches (whole rows of the
  feature grid) of each picture at a time (memory bounded by batch x chunk x bank x 4 bytes: 8 MB for one
  picture), up-sampled bilinearly to the picture and smoothed with a Gaussian of ``smooth_sigma`` px
  (the paper's sigma 4). The image score is the map's maximum (the paper's, without its reweighting).

There is no reconstruction: ``ModelOutput.recon`` is the input itself, so pictures that show "input |
reconstruction" show the photograph twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from wdmt.models.features import FeatureConfig, FeatureModel


@dataclass(frozen=True)
class PatchCoreConfig(FeatureConfig):
    coreset_ratio: float = 0.1
    max_bank: int = 8192  # chosen on the proxy set: a larger bank scored the same and ran slower
    pool: int = 300_000  # at most this many patches, drawn at random, enter the coreset selection (time bound)
    projection: int = 64  # 128 (the paper's) is 4x slower here: 295k x 128 floats no longer fit the cache
    chunk: int = 256  # patches per distance block: 256 x 16384 x 4 bytes (16 MB) stays in cache; 2048 ran 1.5x slower


def greedy_coreset(feats: torch.Tensor, n: int, projection: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` rows chosen greedily so that every row is as close as possible to a chosen one (k-centre),
    measured on a Gaussian random projection. Each step costs one pass over the projected rows."""
    if n >= feats.shape[0]:
        return torch.arange(feats.shape[0])
    g = torch.Generator().manual_seed(seed)
    if projection and projection < feats.shape[1]:
        z = feats @ (torch.randn(feats.shape[1], projection, generator=g) / math.sqrt(projection))
    else:
        z = feats
    zz = (z * z).sum(1)
    chosen = torch.empty(n, dtype=torch.long)
    chosen[0] = int(torch.randint(feats.shape[0], (1,), generator=g))
    nearest = torch.full((feats.shape[0],), math.inf)
    for i in range(1, n + 1):
        c = z[chosen[i - 1]]
        d = torch.addmv(zz, z, c, alpha=-2).add_(c @ c)  # |z - c|^2 with one temporary
        torch.minimum(nearest, d, out=nearest)
        if i < n:
            chosen[i] = torch.argmax(nearest)
    return chosen


def _nearest(q: torch.Tensor, bb: torch.Tensor, bt: torch.Tensor) -> torch.Tensor:
    d = torch.addmm(bb, q, bt, alpha=-2)  # |q|^2 - 2 q.b + |b|^2, one queries x bank temporary: the memory bound
    return (d.amin(dim=1) + (q * q).sum(1)).clamp_min(0).sqrt()


def nearest_distance(queries: torch.Tensor, bank: torch.Tensor, chunk: int) -> torch.Tensor:
    """Euclidean distance of each query row to its nearest bank row, ``chunk`` queries at a time."""
    bb, bt = (bank * bank).sum(1)[None], bank.t().contiguous()
    return torch.cat([_nearest(q, bb, bt) for q in queries.split(max(1, chunk))])


class PatchCore(FeatureModel):
    def __init__(self, cfg: PatchCoreConfig = PatchCoreConfig()) -> None:
        super().__init__(cfg)
        self.dim = self.feature_dim
        self.register_buffer("bank", torch.zeros(0, self.dim))
        self._collected: list[torch.Tensor] = []

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        if prefix + "bank" in state_dict:  # the bank's size is known only once fitted
            self.bank = torch.empty_like(state_dict[prefix + "bank"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def fit_batch(self, feats: torch.Tensor) -> None:
        self._collected.append(feats.float().permute(0, 2, 3, 1).reshape(-1, self.dim).cpu())

    def fit_end(self) -> None:
        if not self._collected:
            return
        feats = torch.cat(self._collected)
        self._collected = []
        if feats.shape[0] > self.cfg.pool:
            g = torch.Generator().manual_seed(self.cfg.seed)
            feats = feats[torch.randperm(feats.shape[0], generator=g)[: self.cfg.pool]]
        n = min(self.cfg.max_bank, max(1, int(feats.shape[0] * self.cfg.coreset_ratio)))
        idx = greedy_coreset(feats, n, self.cfg.projection, self.cfg.seed)
        self.bank = feats[idx].contiguous().to(self.bank.device)

    def train_state(self) -> dict[str, float]:
        return {"bank": float(self.bank.shape[0])}

    def distances(self, feats: torch.Tensor) -> torch.Tensor:
        if self.bank.shape[0] == 0:
            raise RuntimeError("PatchCore has no memory bank: fit it first (one training epoch)")
        b, d, h, w = feats.shape
        bank = self.bank.float()
        bb, bt = (bank * bank).sum(1)[None], bank.t().contiguous()
        rows = max(1, self.cfg.chunk // w)  # chunks of whole feature rows: static slices, so ONNX keeps a free batch
        out = []
        for r in range(0, h, rows):
            f = feats[:, :, r : r + rows]
            out.append(_nearest(f.permute(0, 2, 3, 1).reshape(-1, d), bb, bt).reshape(b, 1, f.shape[2], w))
        return torch.cat(out, 2)
