"""A lesion segmenter trained on normal photographs with synthetic lesions pasted in (not in the paper).

The self-supervised anomaly-synthesis family (DRAEM, Zavrtanik et al., ICCV 2021; NSA; CutPaste): train on normal
images into which anomalies are pasted, so the network learns to find them. DRAEM pairs a reconstruction network with
a discriminative one that compares input and reconstruction. Our design keeps the discriminative half and gives it
an ImageNet encoder instead of a reconstruction to compare with:

* encoder: EfficientNet-Lite0 with its ImageNet weights (:mod:`wdmt.models.backbone`), frozen; blocks 0, 2, 4 and 10
  (1/2 to 1/16 of the tile). 32 normal photographs are too few to learn what normal retina looks like from scratch;
  pretrained features already tell texture, colour and edges apart, and a frozen encoder costs one forward pass,
  so training spends its CPU time on the decoder alone (a DRAEM with two U-Nets would cost about 3x per step).
  ``train_encoder_from`` k >= 0 fine-tunes blocks k to 10 (at ``encoder_lr_scale`` times the decoder's learning
  rate, their batch-norm statistics kept from ImageNet), so the deeper features can learn what a pasted red blot
  looks like against a vessel; the earlier blocks stay frozen and cost no backward pass.
* decoder: a U-Net decoder (conv-BN-ReLU x 2 per scale, widths 4w, 3w, 2w) to a lesion logit at 1/2, up-sampled.
* training: tiles with lesions pasted by :mod:`wdmt.lesion_synth` (``synth_lesions``, set by this model), focal loss
  (gamma 2, DRAEM's) plus soft Dice over the tile (lesions are 0-6 % of it, so focal alone learns to say "none").
* map: the lesion probability; image score (its own): the maximum of the map averaged over 21 x 21 px (DRAEM's).
* checkpoint: the last epoch (as DRAEM); the loop's validation error (the mean map over normal validation tiles)
  would favour an early network that finds nothing.

It never sees a real diseased image, nor the painter of the proxy validation set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.models.backbone import block_channels, frozen_lite0, imagenet_normalise
from wdmt.models.base import AnomalyModel, Batch, ModelOutput, pooled_max

SKIPS = (0, 2, 4, 10)  # 1/2, 1/4, 1/8, 1/16


@dataclass(frozen=True)
class SynthSegConfig:
    in_channels: int = 3
    width: int = 16
    focal_gamma: float = 2.0
    dice_weight: float = 1.0
    pretrained: bool = True  # False: random encoder weights (tests that only check shapes and plumbing)
    train_encoder_from: int = -1  # first encoder block fine-tuned (0-10); -1: the whole encoder frozen
    encoder_lr_scale: float = 0.1  # the fine-tuned blocks' learning rate over the decoder's


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


def focal_dice_loss(logit: torch.Tensor, mask: torch.Tensor, gamma: float, dice_weight: float) -> tuple[
        torch.Tensor, torch.Tensor]:
    """(focal loss, soft Dice loss) of lesion logits against a {0, 1} mask."""
    bce = F.binary_cross_entropy_with_logits(logit, mask, reduction="none")
    p_true = torch.exp(-bce)
    focal = ((1 - p_true) ** gamma * bce).mean()
    prob = torch.sigmoid(logit)
    inter = (prob * mask).sum()
    dice = 1 - (2 * inter + 1) / (prob.sum() + mask.sum() + 1)
    return focal, dice_weight * dice


class SynthSeg(AnomalyModel):
    def __init__(self, cfg: SynthSegConfig = SynthSegConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = frozen_lite0(cfg.pretrained, max(SKIPS))
        if not -1 <= cfg.train_encoder_from <= max(SKIPS):
            raise ValueError(f"train_encoder_from must be -1 (frozen) or a block of 0-{max(SKIPS)}")
        if cfg.train_encoder_from >= 0:
            self.encoder._blocks[cfg.train_encoder_from:].requires_grad_(True)
        w = cfg.width
        c = [block_channels(i) for i in SKIPS]
        self.dec3 = _block(c[3] + c[2], 4 * w)
        self.dec2 = _block(4 * w + c[1], 3 * w)
        self.dec1 = _block(3 * w + c[0], 2 * w)
        self.head = nn.Conv2d(2 * w, 1, 1)
        self._iteration, self._total = 0, 0

    def train(self, mode: bool = True) -> SynthSeg:
        super().train(mode)
        self.encoder.eval()  # ImageNet batch-norm statistics, fine-tuned or not
        return self

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        # Autograd records only the fine-tuned blocks (if any): the frozen ones see no tensor that needs a gradient.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.cfg.train_encoder_from >= 0):
            f0, f2, f4, f10 = self.encoder.features(imagenet_normalise(x), SKIPS)

        def up(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=False), b], 1)

        h = self.dec1(up(self.dec2(up(self.dec3(up(f10, f4)), f2)), f0))
        return F.interpolate(self.head(h), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch.lesion if batch.lesion is not None else torch.zeros_like(batch.image[:, :1])
        focal, dice = focal_dice_loss(self.logits(batch.image).float(), mask, self.cfg.focal_gamma,
                                      self.cfg.dice_weight)
        return focal + dice, {"focal": float(focal.detach()), "dice": float(dice.detach())}

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        tuned = [p for p in self.encoder.parameters() if p.requires_grad]
        if not tuned:  # frozen: the one group every model has (and the optimiser state earlier runs resume from)
            return super().configure_optimizers(lr, weight_decay)
        decoder = [p for n, p in self.named_parameters() if not n.startswith("encoder.")]
        groups = [{"params": decoder}, {"params": tuned, "lr": lr * self.cfg.encoder_lr_scale}]
        return [torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, amsgrad=True)]

    def on_fit_start(self, total_iterations: int) -> None:
        self._total = total_iterations

    def on_train_iteration(self, iteration: int, iters_per_epoch: int) -> None:
        self._iteration = iteration

    def selection_ready(self) -> bool:
        return self._iteration + 1 >= self._total

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.logits(x).float()), x

    @torch.no_grad()
    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        amap, recon = self.maps(x)
        return ModelOutput(recon=recon.float(), anomaly_map=amap, score=pooled_max(amap))
