"""A lesion segmenter's map laid over a feature model's: the two fitted runs that ``wdmt fuse`` joins
(not in the paper).

Why: the segmenter (``synth-seg``) marks what looks like a lesion with a probability near 1 and leaves the rest of
the retina near 0, where the order of its pixels is arbitrary; a normality model (``padim``, ``patchcore``) ranks
every pixel by how unlike normal retina it looks, but puts vessels and the disc among its brightest. The fused map

    p_segmenter + weight * d_prior / scale

keeps the segmenter's decisions on top (``weight`` is small) and lets the prior order everything below them.
``scale`` is the prior's 0.99 quantile over the validation normals' FOV pixels, so ``d / scale`` is about 1 at the
healthy retina's extremes; ``weight`` is chosen on the proxy validation set (:mod:`wdmt.fuse`).

Each member scores the whole picture its own way: ``*_tiles`` > 1 means overlapping tiles of the picture's
1/``tiles`` (the training tile of a tiled member, blended: no seams), 1 the whole picture in one pass. The fused
model itself takes whole pictures. It is never trained: ``wdmt train`` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from wdmt.models.base import AnomalyModel, Batch, ModelOutput, pooled_max
from wdmt.preprocess import stitch_overlap, tile_overlap


@dataclass(frozen=True)
class FusionConfig:
    in_channels: int = 3
    segmenter: str = "synth-seg"
    segmenter_options: dict[str, Any] = field(default_factory=dict)
    segmenter_tiles: int = 3
    prior: str = "padim"
    prior_options: dict[str, Any] = field(default_factory=dict)
    prior_tiles: int = 1
    weight: float = 0.01
    scale: float = 1.0
    pretrained: bool = True  # passed to both members (False: their checkpoints carry the backbone)


def _member(name: str, options: dict[str, Any], cfg: FusionConfig) -> AnomalyModel:
    from wdmt.models.registry import create_model, takes_option

    opts = {"in_channels": cfg.in_channels, **options}
    if takes_option(name, "pretrained"):
        opts["pretrained"] = cfg.pretrained and options.get("pretrained", True)
    return create_model(name, **opts)


def member_map(model: AnomalyModel, x: torch.Tensor, tiles: int) -> torch.Tensor:
    """(B, 1, S, S) map of whole pictures ``x``: one pass, or overlapping tiles of S / ``tiles`` blended. The batch
    is folded into the channels for cutting and stitching, so it stays free in an exported graph."""
    if tiles <= 1:
        return model.maps(x)[0].float()  # the map alone: a member's own image score would be thrown away
    c, s = int(x.shape[1]), int(x.shape[-1])
    parts = tile_overlap(x.reshape(-1, s, s), tiles)  # (K, B * C, t, t)
    k, t = int(parts.shape[0]), int(parts.shape[-1])
    maps = model.maps(parts.reshape(-1, c, t, t))[0].float()  # (K * B, 1, t, t)
    return stitch_overlap(maps.reshape(k, -1, t, t), tiles).unsqueeze(1)


class Fusion(AnomalyModel):
    def __init__(self, cfg: FusionConfig = FusionConfig()) -> None:
        super().__init__()
        if cfg.scale <= 0:
            raise ValueError(f"fusion scale must be positive, not {cfg.scale}")
        self.cfg = cfg
        self.segmenter = _member(cfg.segmenter, cfg.segmenter_options, cfg)
        self.prior = _member(cfg.prior, cfg.prior_options, cfg)

    def train(self, mode: bool = True) -> Fusion:
        super().train(False)  # two fitted models: nothing here learns
        return self

    def fold_for_inference(self) -> None:
        self.segmenter.fold_for_inference()
        self.prior.fold_for_inference()

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise RuntimeError("a fusion is built from two fitted runs by 'wdmt fuse', not trained")

    def member_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(segmenter map, prior map) of whole pictures, before weighting: what the weight is chosen on."""
        return (member_map(self.segmenter, x, self.cfg.segmenter_tiles),
                member_map(self.prior, x, self.cfg.prior_tiles))

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seg, prior = self.member_maps(x)
        return seg + (self.cfg.weight / self.cfg.scale) * prior, x

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon = self.maps(x)
        return ModelOutput(recon=recon.float(), anomaly_map=amap, score=pooled_max(amap))
