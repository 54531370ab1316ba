"""The one training loop. Models plug in through :class:`wdmt.models.AnomalyModel`; nothing here knows names.

:meth:`Trainer.fit` reads like timm's ``train.py``: set up (data, model, optimisers, the run directory or a resumed
state), then per epoch :meth:`Trainer.train_one_epoch`, :meth:`Trainer.validate` and :meth:`Trainer.save_epoch`.
``best`` is the epoch with the lowest reconstruction error of the normal validation images, counted only once the
model's skips no longer leak the input (:meth:`AnomalyModel.selection_ready`). What is written where is
:mod:`wdmt.rundir`'s business.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from wdmt.augment import paired_flips, random_blur
from wdmt.config import TrainConfig, to_dict
from wdmt.datasets import DatasetIndex
from wdmt.distributed import DistInfo, LossModule, average_gradients_with_hooks, barrier
from wdmt.errors import WdmtError
from wdmt.hog import HogCache, default_cache_dir
from wdmt.lesion_synth import paste_lesions
from wdmt.models import AnomalyModel, Batch, build_from_config
from wdmt.pipeline import PreparedSample, load_samples
from wdmt.preprocess import tile
from wdmt.rundir import RunDir
from wdmt.runtime import autocast_factory, environment, flush_denormals, pick_device, seed_everything, to_device

flush_denormals()


@dataclass
class TileSet:
    """Training or validation tiles kept in memory: images (N, C, t, t) uint8, HOG (N, cells, t, t) uint8 or None,
    the field of view (N, 1, t, t) bool."""

    images: torch.Tensor
    hog: torch.Tensor | None
    fov: torch.Tensor | None = None

    @staticmethod
    def from_prepared(items: list[PreparedSample], n: int, with_hog: bool) -> TileSet:
        if not items:
            return TileSet(torch.zeros(0, 1, 1, 1, dtype=torch.uint8), None)
        imgs, hogs, fovs = [], [], []
        for p in items:
            a = p.prepared.image
            t = torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())
            imgs.append(tile(t, n))
            fovs.append(tile(torch.from_numpy(p.prepared.fov[None].copy()), n))
            if with_hog:
                hogs.append(tile(torch.from_numpy(p.hog), n))
        return TileSet(torch.cat(imgs), torch.cat(hogs) if with_hog else None, torch.cat(fovs))

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_cells(self) -> int:
        return self.hog.shape[1] if self.hog is not None else 0


def make_batch(tiles: TileSet, idx: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, device: torch.device,
               n_cells: int, channels_last: bool) -> Batch:
    """Gather, flip (image, HOG and FOV together), paste synthetic lesions where asked, blur the input, move to the
    device."""
    img = tiles.images[idx].float().div_(255.0)
    hog = tiles.hog[idx].float().div_(255.0) if tiles.hog is not None else None
    fov = tiles.fov[idx].float() if tiles.fov is not None else None
    if cfg.flips:  # one draw per sample, however many tensors: same RNG stream
        img, hog, fov = paired_flips([img, hog, fov], gen)
    clean, lesion = img, None
    if cfg.synth_lesions:
        img, lesion = paste_lesions(img, fov, gen, style=cfg.synth_style)
    lo, hi = cfg.blur_sigma
    blurred = random_blur(img, gen, (lo, hi), cfg.blur_kernel) if hi > 0 else img
    target = clean if cfg.synth_lesions or cfg.recon_target == "clean" else blurred
    hog_index = torch.randint(0, max(1, n_cells), (len(idx),), generator=gen)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def move(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(device, non_blocking=True).contiguous(memory_format=fmt)

    return Batch(image=move(blurred), target=move(target), hog=move(hog), hog_index=hog_index.to(device),
                 fov=move(fov) if cfg.fov_loss else None, lesion=move(lesion))


@torch.no_grad()
def validation_error(model: AnomalyModel, tiles: TileSet, device: torch.device, batch_size: int,
                     channels_last: bool) -> float:
    """Mean absolute reconstruction error over the validation tiles (no augmentation)."""
    if len(tiles) == 0:
        return float("nan")
    model.eval()
    total, count = 0.0, 0
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for i in range(0, len(tiles), batch_size):
        x = tiles.images[i : i + batch_size].float().div_(255.0).to(device).contiguous(memory_format=fmt)
        out = model.predict(x)
        total += float(out.anomaly_map.sum())
        count += out.anomaly_map.numel()
    model.train()
    return total / count


@dataclass
class FitState:
    """Everything one fit carries from epoch to epoch; ``last.pt`` holds what of it a resume needs."""

    model: AnomalyModel
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[Any]
    gen: torch.Generator
    train: TileSet
    val: TileSet
    batch: int  # the global batch; each process takes its slice
    iters_per_epoch: int
    loss_fn: Any = None  # the DDP-wrapped loss under torchrun
    epoch: int = 0  # epochs finished
    best: float = math.inf

    def resume_state(self, cfg: TrainConfig) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers], "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(), "epoch": self.epoch, "best_val": self.best, "config": to_dict(cfg),
            "model_name": cfg.model, "iteration": self.epoch * self.iters_per_epoch,
        }

    def restore(self, st: dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        for o, s in zip(self.optimizers, st["optimizers"], strict=True):
            o.load_state_dict(s)
        for sch, s in zip(self.schedulers, st["schedulers"], strict=True):
            sch.load_state_dict(s)
        self.gen.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        self.epoch, self.best = int(st["epoch"]), float(st["best_val"])


class Trainer:
    """Trains one run directory from scratch or resumes it."""

    def __init__(self, cfg: TrainConfig, data: DatasetIndex, run_dir: str | Path, *, progress: bool = True,
                 cache_dir: Path | None = None, dist_info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.data = data
        self.run = RunDir(run_dir)
        self.dist = dist_info or DistInfo()
        self.progress = progress and self.dist.is_main
        self.device = pick_device(cfg.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.cache = HogCache(cache_dir or default_cache_dir() / "hog")
        self.autocast = autocast_factory(self.device, cfg.amp, cfg.cpu_bf16)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        self._check_start(resume)
        st = self._setup()
        if resume:
            st.restore(self.run.load("last"))
            if self.dist.is_main:
                self.run.truncate_log(st.epoch)
        elif self.dist.is_main:
            self.run.start(self.cfg, environment(self.device, self.cfg.seed), self._data_record(st))
        st.model.train()
        started_at = st.epoch
        for epoch in range(st.epoch, self.cfg.epochs):
            logs, seconds = self.train_one_epoch(st, epoch)
            val_err = self.validate(st)
            improved = st.model.selection_ready() and (val_err < st.best or math.isnan(st.best))
            if improved:
                st.best = val_err
            st.epoch = epoch + 1
            if self.dist.is_main:
                row = self._log_row(st, logs, val_err, improved, seconds)
                self.run.append_log(row)
                self.save_epoch(st, val_err, improved)
                self._report(st, row, improved)
        return {"epochs": self.cfg.epochs, "best_val_error": st.best, "run": str(self.run.root),
                "resumed_at_epoch": started_at}

    # --- setting up -------------------------------------------------------------------------------------------
    def _check_start(self, resume: bool) -> None:
        if self.cfg.keep_epochs < 0:
            raise WdmtError(
                self.run.root, f"keep_epochs must be 0 (keep none) or a positive interval, not {self.cfg.keep_epochs}"
            )
        if not resume:
            return
        if not self.run.checkpoint_path("last").exists():
            raise WdmtError(self.run.root, "nothing to resume: no checkpoints/last.pt")
        self.run.require_config(self.cfg, "the run was started with another config; resume with the same options")

    def _setup(self) -> FitState:
        """Seed, build the model, load the tiles, and make the optimisers and schedulers (in that order: the seed
        fixes the initial weights, and a resumed run rebuilds the same objects before loading their states)."""
        gen = seed_everything(self.cfg.seed)
        model = build_from_config(self.cfg)
        train, val = self._load_tiles(model.needs_hog)
        to_device(model, self.device, self.cfg.channels_last)
        optimizers = model.configure_optimizers(self.cfg.lr, self.cfg.weight_decay)
        batch = min(self.cfg.batch_size, len(train) * self.cfg.tile_repeats)
        if batch % self.dist.world:
            raise WdmtError(None, f"batch size {batch} does not split evenly over {self.dist.world} processes")
        iters = max(1, (len(train) * self.cfg.tile_repeats) // batch)
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=iters * self.cfg.epochs) for o in optimizers]
        model.on_fit_start(iters * self.cfg.epochs)
        return FitState(model, optimizers, schedulers, gen, train, val, batch, iters, self._distribute(model))

    def _load_tiles(self, with_hog: bool) -> tuple[TileSet, TileSet]:
        self.data.require_training_data()
        if not self.dist.is_main:
            barrier(self.dist)  # rank 0 fills the HOG cache first; the others then only read it
        pre = self.cfg.preprocess
        train_items = load_samples(
            self.data.split("train"), pre, self.cache if with_hog else None, progress=self.progress, desc="train images"
        )
        if self.dist.is_main:
            barrier(self.dist)
        val_items = load_samples(self.data.split("val"), pre, None, progress=self.progress, desc="val images")
        return TileSet.from_prepared(train_items, pre.tiles, with_hog), TileSet.from_prepared(
            val_items, pre.tiles, False
        )

    def _distribute(self, model: AnomalyModel) -> Any:
        """Under torchrun, average gradients over the processes: DDP around the loss for single-optimiser models,
        per-parameter hooks for models that step their own optimisers. Returns the loss to call, or None."""
        if not self.dist.enabled:
            return None
        if not model.uses_default_step:
            average_gradients_with_hooks(model, self.dist.world)
            return None
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(LossModule(model), device_ids=ids, find_unused_parameters=False)

    def _data_record(self, st: FitState) -> dict[str, Any]:
        return {
            "root": str(Path(self.data.root).resolve()),  # a run is read from anywhere, and runs compared
            "format": self.data.format,
            "counts": self.data.counts(),
            "train_tiles": len(st.train),
            "val_tiles": len(st.val),
            "splits": {s.id: s.split for s in self.data.samples},
        }

    # --- one epoch --------------------------------------------------------------------------------------------
    def train_one_epoch(self, st: FitState, epoch: int) -> tuple[dict[str, float], float]:
        """One pass over the training tiles (``tile_repeats`` times); returns the mean of each logged value over the
        iterations that logged it, and the seconds taken."""
        cfg, t0 = self.cfg, time.perf_counter()
        order = torch.cat([torch.randperm(len(st.train), generator=st.gen) for _ in range(cfg.tile_repeats)])
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        bar = tqdm(
            range(st.iters_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="it",
            leave=False,
            disable=None if self.progress else True,
        )
        for i in bar:
            st.model.on_train_iteration(epoch * st.iters_per_epoch + i, st.iters_per_epoch)
            logs = self._step(st, order[i * st.batch : (i + 1) * st.batch], epoch, i)
            for k, v in logs.items():  # f-AnoGAN's generator steps once per n_critic, and its stages switch mid-epoch
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            if i % 5 == 0:
                rate = (i + 1) * st.batch / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(
                    loss=f"{logs.get('loss', 0):.4f}",
                    tiles_s=f"{rate:.1f}",
                    **{k: f"{v:.3f}" for k, v in st.model.train_state().items()},
                )
        bar.close()
        st.model.on_epoch_end(epoch + 1, cfg.epochs)  # inside the timed span: a bank's coreset is training time
        return {k: v / counts[k] for k, v in sums.items()}, time.perf_counter() - t0

    def _step(self, st: FitState, idx: torch.Tensor, epoch: int, i: int) -> dict[str, float]:
        b = make_batch(st.train, idx, self.cfg, st.gen, self.device, st.train.n_cells, self.cfg.channels_last)
        if self.dist.enabled:  # every rank drew the same global batch; each keeps its own slice
            local = st.batch // self.dist.world
            mine = slice(self.dist.rank * local, (self.dist.rank + 1) * local)
            b = Batch(**{f.name: None if (v := getattr(b, f.name)) is None else v[mine] for f in fields(Batch)})
        try:
            res = st.model.training_step(b, st.optimizers, self.autocast, st.loss_fn)
        except FloatingPointError as e:
            raise WdmtError(
                self.run.root,
                f"training diverged at epoch {epoch + 1}, iteration {i + 1}: {e}; "
                "the last good checkpoint is kept in checkpoints/last.pt",
            ) from e
        with warnings.catch_warnings():  # a staged model (f-AnoGAN) leaves some optimisers idle
            warnings.simplefilter("ignore", UserWarning)
            for sch in st.schedulers:
                sch.step()
        return res.logs

    def validate(self, st: FitState) -> float:
        return validation_error(st.model, st.val, self.device, max(st.batch, 16), self.cfg.channels_last)

    # --- after an epoch ---------------------------------------------------------------------------------------
    def save_epoch(self, st: FitState, val_err: float, improved: bool) -> None:
        """``last.pt`` always (written last: a kill before it resumes from the previous epoch); ``best.pt`` when the
        epoch improved, or at the end when no epoch ever qualified; ``epoch-NNN.pt`` every ``keep_epochs``."""
        cfg, epoch = self.cfg, st.epoch
        weights = {
            "model": st.model.state_dict(),
            "epoch": epoch,
            "config": to_dict(cfg),
            "model_name": cfg.model,
            "val_error": val_err,
        }
        never_chosen = not self.run.checkpoint_path("best").exists() and epoch == cfg.epochs
        if improved or never_chosen:
            self.run.save("best", weights)
        if cfg.keep_epochs and (epoch % cfg.keep_epochs == 0 or epoch == cfg.epochs):
            self.run.save(f"epoch-{epoch:03d}", weights)
        self.run.save("last", st.resume_state(cfg))

    def _log_row(
        self, st: FitState, logs: dict[str, float], val_err: float, improved: bool, seconds: float
    ) -> dict[str, Any]:
        return {
            "epoch": st.epoch,
            **logs,
            **st.model.train_state(),
            "lr": st.schedulers[0].get_last_lr()[0] if st.schedulers else 0.0,
            "val_error": val_err,
            "best": int(improved),
            "seconds": round(seconds, 2),
            "tiles_per_s": round(st.iters_per_epoch * st.batch / seconds, 2),
        }

    def _report(self, st: FitState, row: dict[str, Any], improved: bool) -> None:
        if not self.progress:
            return
        extra = "".join(f"  {k} {v:.3f}" for k, v in st.model.train_state().items())
        tqdm.write(
            f"epoch {st.epoch}/{self.cfg.epochs}  loss {row.get('loss', float('nan')):.5f}  "
            f"val {row['val_error']:.5f}{extra}  {row['tiles_per_s']:.1f} tiles/s" + ("  *best" if improved else "")
        )
