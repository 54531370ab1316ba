"""The narrow interface between models and the one training loop / evaluator.

A model is an ``nn.Module`` that

* computes its training loss from a :class:`Batch` (``loss``), or, when it needs several optimisers (GANs), does
  its own step (``training_step``);
* may react to the iteration counter (``on_train_iteration``: WDMT-Net's skip decay lives there);
* scores tiles in eval mode (``predict``), returning a typed :class:`ModelOutput` whose anomaly map has the input's
  size and the input's value range, so maps of different models are comparable.

What differs between methods is declared here (``ModelInfo``), never branched on by name in the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """What the CLI, the loop and the docs need to know about a registered model."""

    name: str
    paper: str
    input_size: int | None = None  # native tile side; None = any multiple of 16
    needs_hog: bool = False
    adversarial: bool = False
    description: str = ""
    own_score: str = "mean of the top 1 % of the tile's residual map"  # what ModelOutput.score is, for reports
    # The method's own learning rate, which a preset's lr does not override (GANs are unstable at the cpu preset's
    # 1e-3); with it, weight decay defaults to 0 as in those methods' code. An lr or weight_decay the user gives
    # (--lr, a config file) applies to every model alike. None: the preset's lr and weight decay apply.
    lr: float | None = None
    # Fits by collecting features in one pass, with no gradient step (PatchCore, PaDiM): no optimiser, and the
    # gradient tests do not apply.
    memory_bank: bool = False
    # Built from fitted runs by ``wdmt fuse`` (the fusion of a segmenter and a feature model), never trained.
    composite: bool = False
    # Config keys the model needs over a preset's, unless the user asks otherwise (e.g. RGB whole pictures for an
    # ImageNet backbone): merged like a config file, nested mappings key by key.
    config_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """One training batch of tiles.

    ``image`` is the (augmented) network input, ``target`` what it should reconstruct, ``hog`` the HOG pictures
    (B, cells, H, W) in [0, 1] or None, ``hog_index`` the cell size drawn per sample for the official single-channel
    HOG head, ``fov`` the field of view (B, 1, H, W) in {0, 1} when the loss counts FOV pixels only
    (``TrainConfig.fov_loss``), else None; ``lesion`` the mask (B, 1, H, W) of the lesions pasted into ``image``
    (``TrainConfig.synth_lesions``; ``target`` is then the tile without them), else None.
    """

    image: torch.Tensor
    target: torch.Tensor
    hog: torch.Tensor | None = None
    hog_index: torch.Tensor | None = None
    fov: torch.Tensor | None = None
    lesion: torch.Tensor | None = None


@dataclass
class ModelOutput:
    """Eval-mode result for a batch of tiles; maps are (B, 1, H, W), scores (B,)."""

    recon: torch.Tensor
    anomaly_map: torch.Tensor
    score: torch.Tensor
    hog: torch.Tensor | None = None
    latent_distance: torch.Tensor | None = None  # per tile, for GatingAno's image score


@dataclass
class StepResult:
    """What one training step reports: the scalar logs (``loss`` among them)."""

    logs: dict[str, float] = field(default_factory=dict)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair of an ``nn.Sequential`` into one conv (torch's ``fuse_conv_bn_eval``), in
    place: the same function in eval mode with one pass over memory fewer per layer (measured in docs/performance.md,
    Inference)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
                    seq[i], seq[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return model


class AnomalyModel(nn.Module):
    """Base class: one optimiser, one loss, residual maps. Subclasses override what differs."""

    info: ModelInfo

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict(self, x: torch.Tensor, with_latent: bool = False) -> ModelOutput:
        """Score a batch of tiles in eval mode; ``with_latent`` also fills ``latent_distance`` where defined."""
        raise NotImplementedError

    @property
    def needs_hog(self) -> bool:
        return self.info.needs_hog

    def fold_for_inference(self) -> None:
        """Turn a trained model into an equivalent, faster inference form, in place (eval mode; no more training).
        Default: batch norm folded into the convolutions. Models add their own algebra (WDMT-Net's closed skips)."""
        fold_batchnorm(self)

    exportable: bool = True  # False where scoring is not a plain forward pass (AnoGAN's latent search)

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(anomaly map (B, 1, H, W), reconstruction): the traceable core of ``predict``, exported to ONNX."""
        o = self.predict(x)
        return o.anomaly_map, o.recon

    def on_fit_start(self, total_iterations: int) -> None:
        """Called once before training (and again on resume) with the run's total iteration count."""

    def on_train_iteration(self, iteration: int, iters_per_epoch: int) -> None:
        """Called before every training iteration with the global iteration index (0-based)."""

    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        """Called after each training epoch (1-based ``epoch``), before validation: a memory-bank model builds its
        bank from what the epoch collected."""

    def train_state(self) -> dict[str, float]:
        """Scalars worth showing in the progress bar and the log (e.g. alpha)."""
        return {}

    def selection_ready(self) -> bool:
        """Whether checkpoints from now on may be chosen as ``best`` (False while skips still leak the input)."""
        return True

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay, amsgrad=True)]

    uses_default_step: bool = True  # False for models that override training_step (set by subclasses)

    def training_step(
        self, batch: Batch, optimizers: list[torch.optim.Optimizer], autocast: Any, loss_fn: Any = None
    ) -> StepResult:
        """Default step: one loss, one optimiser. ``loss_fn`` (a DDP-wrapped ``loss``) replaces ``self.loss`` under
        torchrun. GANs override this and step their own optimisers."""
        (opt,) = optimizers
        loss, logs = optimizer_step(opt, autocast, "loss", lambda: (loss_fn or self.loss)(batch))
        return StepResult({"loss": float(loss.detach()), **logs})


def optimizer_step(
    opt: torch.optim.Optimizer, autocast: Callable[[], Any], what: str, compute: Callable[[], tuple[Any, ...]]
) -> tuple[Any, ...]:
    """The one optimiser step every model takes, however many optimisers it has: clear the gradients, compute under
    the run's autocast, refuse a non-finite loss (the loop turns it into a one-line "diverged" error and keeps the
    last good checkpoint), backward, step. ``compute`` returns the loss first, then whatever the caller needs."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        out = compute()
    loss = out[0]
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what} is {loss.item()}")
    loss.backward()
    opt.step()
    return out


def recon_error(pred: torch.Tensor, target: torch.Tensor, fov: torch.Tensor | None, kind: str = "mse") -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``l1``) error; with ``fov`` (B, 1, H, W) weights, over the field of view
    only, so the black surround and the rim stop being what a network spends its capacity on. Without it, exactly
    the plain mean the methods' papers use."""
    if fov is None:
        return F.mse_loss(pred, target) if kind == "mse" else (pred - target).abs().mean()
    err = (pred - target) ** 2 if kind == "mse" else (pred - target).abs()
    w = fov.expand_as(err)
    return (err * w).sum() / w.sum().clamp_min(1e-6)


def residual_map(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-pixel |x - x_hat|, averaged over channels: (B, 1, H, W)."""
    return (x - recon).abs().mean(dim=1, keepdim=True)


def topk_mean(maps: torch.Tensor, fraction: float = 0.01) -> torch.Tensor:
    """Mean of the top ``fraction`` of each map's values: (B,)."""
    flat = maps.flatten(1)
    k = max(1, int(round(flat.shape[1] * fraction)))
    return flat.topk(k, dim=1).values.mean(dim=1)


def pooled_max(maps: torch.Tensor, side: int = 21) -> torch.Tensor:
    """DRAEM's image score: the maximum of each map averaged over ``side`` x ``side`` px (an odd window no wider than
    the map): (B,). A lone bright pixel does not make a photograph abnormal; a lesion-sized patch does."""
    k = min(side, maps.shape[-1] - (1 - maps.shape[-1] % 2))
    return F.avg_pool2d(maps, k, 1, k // 2, count_include_pad=False).flatten(1).amax(1)
