"""torchrun with 2 CPU processes (gloo) against one process with the same global batch."""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys

import pytest

from wdmt.api import train
from wdmt.config import resolve_config
from wdmt.models import build_from_config
from wdmt.rundir import load_checkpoint
from wdmt.runtime import seed_everything


@pytest.mark.slow
@pytest.mark.parametrize("model", ["wdmt", "ganomaly"])
def test_two_process_ddp_matches_single_process(model, tiny_synth, tmp_path):
    epochs = 2
    cfg = resolve_config("tiny", model=model, epochs=epochs)
    train(tiny_synth, cfg, tmp_path / "single", progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "wdmt", "train", "--data", str(tiny_synth), "--model", model, "--preset", "tiny",
           "--epochs", str(epochs), "--out", str(tmp_path / "ddp"), "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("trained") == 1  # only rank 0 reports and writes
    single = list(csv.DictReader(open(tmp_path / "single" / "log.csv")))
    ddp = list(csv.DictReader(open(tmp_path / "ddp" / "log.csv")))
    assert len(ddp) == epochs
    if model == "wdmt":
        assert float(ddp[-1]["alpha"]) == pytest.approx(float(single[-1]["alpha"]))  # global iterations
    # identical batches and averaged gradients; only BatchNorm sees half a batch per rank: losses agree to 25 %
    for a, b in zip(single, ddp, strict=True):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=0.25)
    wa = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")["model"]
    seed_everything(cfg.seed)  # the trainer's own order: seed, then build: the weights both runs started from
    w0 = build_from_config(cfg).state_dict()
    params = [k for k, _ in build_from_config(cfg).named_parameters()]
    moved = sum(float((wa[k] - w0[k]).norm() ** 2) for k in params) ** 0.5
    drift = sum(float((wa[k] - wb[k]).norm() ** 2) for k in params) ** 0.5
    # Measured against how far training moved the weights (against their own size, the old check, a run that never
    # trained would have passed). BatchNorm normalises over each rank's half batch, and GAN training amplifies any
    # difference: thread order alone moves GANomaly 12 % of its distance here (WDMT-Net 0.5 %), half-batch BN 81 %
    # (WDMT-Net 13 %). So the GAN bound only says the runs ended nearer each other than either is to the start;
    # test_gan_gradient_averaging_is_exact checks the GAN path without BN's part.
    bound = {"wdmt": 0.25, "ganomaly": 1.0}[model]
    assert moved > 0 and drift < bound * moved, (drift, moved)


def _gan_step_worker(rank: int, store: str, same_batch: bool, out: str) -> None:
    import torch
    import torch.distributed as dist

    from wdmt.distributed import average_gradients_with_hooks
    from wdmt.models import Batch, create_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = create_model("ganomaly", width=4)
    average_gradients_with_hooks(model, 2)
    opts = model.configure_optimizers(2e-4, 0.0)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0 if same_batch else 1 + rank))
    torch.manual_seed(1)
    model.training_step(Batch(image=x, target=x), opts, contextlib.nullcontext)
    torch.save({k: v.detach().clone() for k, v in model.named_parameters()}, f"{out}-{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_gan_gradient_averaging_is_exact(tmp_path):
    """The hooks that average a GAN's gradients over processes, without BatchNorm's per-rank statistics in the way:
    identical batches on both ranks must give exactly the one-process step; different batches must still leave both
    ranks with the same weights (their gradients were averaged before each optimiser step)."""
    import torch
    import torch.multiprocessing as mp

    from wdmt.models import Batch, create_model

    torch.manual_seed(0)
    single = create_model("ganomaly", width=4)
    opts = single.configure_optimizers(2e-4, 0.0)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    single.training_step(Batch(image=x, target=x), opts, contextlib.nullcontext)
    for same in (True, False):
        out = str(tmp_path / f"w-{same}")
        mp.spawn(_gan_step_worker, args=(str(tmp_path / f"store-{same}"), same, out), nprocs=2, join=True)
        w0, w1 = (torch.load(f"{out}-{r}.pt", weights_only=True) for r in (0, 1))
        assert all(torch.equal(w0[k], w1[k]) for k in w0)  # the ranks stay in step
        if same:
            for k, v in single.named_parameters():
                torch.testing.assert_close(w0[k], v.detach(), rtol=1e-5, atol=1e-7)
