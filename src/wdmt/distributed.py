"""Data-parallel training under ``torchrun`` (gloo on CPU, NCCL on GPU), and nothing when run plainly.

Every rank builds the same global batch from the same seeded generator and keeps its own slice. The gradients are
averaged over the ranks: single-optimiser models are wrapped in ``DistributedDataParallel``; models that do their
own multi-optimiser step (GANs) get the same averaging from per-parameter post-accumulate hooks. The alpha schedule
therefore counts global iterations, and a 2-process run sees exactly the batches of a 1-process run with the same
global batch size. Only BatchNorm differs: each rank normalises over its own half of the batch. Only rank 0 writes
files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env() -> DistInfo:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


class LossModule(nn.Module):
    """Lets DistributedDataParallel see a model's loss as its forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):  # noqa: ANN001, ANN201
        return self.model.loss(batch)


def average_gradients_with_hooks(model: nn.Module, world: int) -> None:
    """All-reduce every gradient as soon as backward has accumulated it (for models with their own steps)."""

    def hook(p: torch.Tensor) -> None:
        dist.all_reduce(p.grad)
        p.grad.div_(world)

    for p in model.parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(hook)
