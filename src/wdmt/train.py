"""The one training loop. Models plug in through :class:`wdmt.models.AnomalyModel`; nothing here knows names.

A run directory holds ``config.json`` (resolved), ``env.json`` (seed, versions, device), ``log.csv`` (one row per
epoch), ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (best = lowest validation reconstruction error of the
normal validation images, counted only once the model's skips no longer leak the input), and ``calibration.json``
(strict-protocol thresholds from the validation normals). Checkpoints are plain state dicts plus JSON-able
metadata, written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from wdmt.atomic import atomic_path, write_csv_atomic, write_json_atomic
from wdmt.augment import paired_flips, random_blur
from wdmt.config import TrainConfig, from_dict, to_dict
from wdmt.datasets import DatasetIndex
from wdmt.distributed import DistInfo, LossModule, average_gradients_with_hooks, barrier
from wdmt.errors import WdmtError
from wdmt.hog import HogCache, default_cache_dir
from wdmt.models import AnomalyModel, Batch, create_model
from wdmt.pipeline import PreparedSample, load_samples
from wdmt.preprocess import tile
from wdmt.runtime import flush_denormals

flush_denormals()


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (all devices) and numpy; return the generator that drives shuffling and augmentation."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def source_revision() -> dict[str, Any] | None:
    """The git commit wdmt was imported from, and whether its sources differ from it: the version number alone does
    not tell two development checkouts apart. None for an installed wheel or without git."""
    src = Path(__file__).resolve().parent
    try:
        git = ["git", "-C", str(src)]
        tracked = subprocess.run([*git, "ls-files", "--error-unmatch", "__init__.py"], capture_output=True, timeout=10)
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if tracked.returncode != 0 or commit.returncode != 0:  # not a checkout of wdmt (e.g. a venv inside a repo)
            return None
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, cfg: TrainConfig) -> dict[str, Any]:
    import PIL
    import skimage
    import sklearn

    from wdmt import __version__

    return {
        "wdmt": __version__, "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "pillow": PIL.__version__, "scikit-image": skimage.__version__, "scikit-learn": sklearn.__version__,
        "platform": platform.platform(), "device": str(device), "threads": torch.get_num_threads(), "seed": cfg.seed,
        "cuda": torch.version.cuda if device.type == "cuda" else None, "flush_denormal": flush_denormals(),
        "source": source_revision(),
    }


@dataclass
class TileSet:
    """Training or validation tiles kept in memory as uint8: images (N, C, t, t), HOG (N, cells, t, t) or None."""

    images: torch.Tensor
    hog: torch.Tensor | None

    @staticmethod
    def from_prepared(items: list[PreparedSample], n: int, with_hog: bool) -> TileSet:
        imgs = []
        hogs = []
        for p in items:
            a = p.prepared.image
            t = torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())
            imgs.append(tile(t, n))
            if with_hog:
                hogs.append(tile(torch.from_numpy(p.hog), n))
        return TileSet(torch.cat(imgs), torch.cat(hogs) if with_hog else None)

    def __len__(self) -> int:
        return self.images.shape[0]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint we wrote; pickled objects of any other kind are refused (weights_only)."""
    if not path.is_file():
        raise WdmtError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncation, refused globals
        raise WdmtError(path, f"not a wdmt checkpoint or unsafe to load ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


def _autocast(device: torch.device, enabled: bool, cpu_bf16: bool = False):
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and device.type == "cpu":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def make_batch(tiles: TileSet, idx: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, device: torch.device,
               n_cells: int, channels_last: bool) -> Batch:
    """Gather, flip (image and HOG together), blur the input, move to the device."""
    img = tiles.images[idx].float().div_(255.0)
    hog = tiles.hog[idx].float().div_(255.0) if tiles.hog is not None else None
    img, hog = paired_flips([img, hog], gen)
    lo, hi = cfg.blur_sigma
    blurred = random_blur(img, gen, (lo, hi), cfg.blur_kernel) if hi > 0 else img
    target = blurred if cfg.recon_target == "augmented" else img
    hog_index = torch.randint(0, max(1, n_cells), (len(idx),), generator=gen)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    mv = lambda t: None if t is None else t.to(device, non_blocking=True).contiguous(memory_format=fmt)  # noqa: E731
    return Batch(image=mv(blurred), target=mv(target), hog=mv(hog), hog_index=hog_index.to(device))


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


class Trainer:
    """Owns one run directory: prepares data, trains, checkpoints, resumes."""

    def __init__(self, cfg: TrainConfig, data: DatasetIndex, run_dir: str | Path, *, progress: bool = True,
                 cache_dir: Path | None = None, dist_info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.data = data
        self.run = Path(run_dir)
        self.dist = dist_info or DistInfo()
        self.progress = progress and self.dist.is_main
        self.device = pick_device(cfg.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.cache = HogCache(cache_dir or default_cache_dir() / "hog")

    def build_model(self) -> AnomalyModel:
        opts = dict(self.cfg.model_options)
        opts.setdefault("in_channels", self.cfg.preprocess.in_channels)
        return create_model(self.cfg.model, **opts)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        cfg = self.cfg
        ckpt_dir = self.run / "checkpoints"
        last_path = ckpt_dir / "last.pt"
        if resume and not last_path.exists():
            raise WdmtError(self.run, "nothing to resume: no checkpoints/last.pt")
        if resume:
            saved = to_dict(from_dict(TrainConfig, json.loads((self.run / "config.json").read_text())))
            if saved != to_dict(cfg):  # through from_dict: fields added to wdmt since the run started take defaults
                raise WdmtError(self.run / "config.json", "the run was started with another config; resume with the same options")
        if cfg.keep_epochs < 0:
            raise WdmtError(self.run, f"keep_epochs must be 0 (keep none) or a positive interval, not {cfg.keep_epochs}")
        gen = seed_everything(cfg.seed)
        model = self.build_model()
        self.data.require_training_data()
        if not self.dist.is_main:
            barrier(self.dist)  # rank 0 fills the HOG cache first; the others then only read it
        train_items = load_samples(self.data.split("train"), cfg.preprocess, self.cache if model.needs_hog else None,
                                   progress=self.progress, desc="train images")
        if self.dist.is_main:
            barrier(self.dist)
        val_items = load_samples(self.data.split("val"), cfg.preprocess, None, progress=self.progress, desc="val images")
        n = cfg.preprocess.tiles
        train = TileSet.from_prepared(train_items, n, model.needs_hog)
        val = TileSet.from_prepared(val_items, n, False) if val_items else TileSet(torch.zeros(0, 1, 1, 1, dtype=torch.uint8), None)
        n_cells = train.hog.shape[1] if train.hog is not None else 0

        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        optimizers = model.configure_optimizers(cfg.lr, cfg.weight_decay)
        batch = min(cfg.batch_size, len(train) * cfg.tile_repeats)
        if batch % self.dist.world:
            raise WdmtError(None, f"batch size {batch} does not split evenly over {self.dist.world} processes")
        local = batch // self.dist.world
        mine = slice(self.dist.rank * local, (self.dist.rank + 1) * local)
        loss_fn = None
        if self.dist.enabled:
            if model.uses_default_step:
                ids = [self.device.index] if self.device.type == "cuda" else None
                loss_fn = DistributedDataParallel(LossModule(model), device_ids=ids, find_unused_parameters=False)
            else:
                average_gradients_with_hooks(model, self.dist.world)
        iters_per_epoch = max(1, (len(train) * cfg.tile_repeats) // batch)
        total_iters = iters_per_epoch * cfg.epochs
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total_iters) for o in optimizers]
        model.on_fit_start(total_iters)
        start_epoch, best = 0, math.inf
        if resume:
            st = load_checkpoint(last_path)
            model.load_state_dict(st["model"])
            for o, s in zip(optimizers, st["optimizers"]):
                o.load_state_dict(s)
            for sch, s in zip(schedulers, st["schedulers"]):
                sch.load_state_dict(s)
            gen.set_state(st["generator"])
            torch.set_rng_state(st["torch_rng"])
            start_epoch, best = int(st["epoch"]), float(st["best_val"])
            if self.dist.is_main:
                self._truncate_log(self.run / "log.csv", start_epoch)
        elif self.dist.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.run / "config.json", to_dict(cfg))
            write_json_atomic(self.run / "env.json", environment(self.device, cfg))
            write_json_atomic(self.run / "data.json", {
                "root": str(self.data.root), "format": self.data.format, "counts": self.data.counts(),
                "train_tiles": len(train), "val_tiles": len(val),
                "splits": {s.id: s.split for s in self.data.samples},
            })
            (self.run / "log.csv").unlink(missing_ok=True)

        autocast = _autocast(self.device, cfg.amp, cfg.cpu_bf16)
        model.train()
        log_path = self.run / "log.csv"
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            order = torch.cat([torch.randperm(len(train), generator=gen) for _ in range(cfg.tile_repeats)])
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            bar = tqdm(range(iters_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it", leave=False,
                       disable=None if self.progress else True)
            for i in bar:
                it = epoch * iters_per_epoch + i
                model.on_train_iteration(it, iters_per_epoch)
                b = make_batch(train, order[i * batch : (i + 1) * batch], cfg, gen, self.device, n_cells, cfg.channels_last)
                if self.dist.enabled:  # every rank drew the same global batch; each keeps its own slice
                    b = Batch(*(None if v is None else v[mine] for v in (b.image, b.target, b.hog, b.hog_index)))
                try:
                    res = model.training_step(b, optimizers, autocast, loss_fn)
                except FloatingPointError as e:
                    raise WdmtError(self.run, f"training diverged at epoch {epoch + 1}, iteration {i + 1}: {e}; "
                                    "the last good checkpoint is kept in checkpoints/last.pt") from None
                with warnings.catch_warnings():  # a staged model (f-AnoGAN) leaves some optimisers idle
                    warnings.simplefilter("ignore", UserWarning)
                    for sch in schedulers:
                        sch.step()
                for k, v in res.logs.items():  # mean over the iterations that logged k: f-AnoGAN's generator
                    sums[k] = sums.get(k, 0.0) + v  # steps once per n_critic, and its stages switch mid-epoch
                    counts[k] = counts.get(k, 0) + 1
                if i % 5 == 0:
                    rate = (i + 1) * batch / max(1e-9, time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{res.logs.get('loss', 0):.4f}", **{k: f"{v:.3f}" for k, v in model.train_state().items()},
                                    tiles_s=f"{rate:.1f}")
            bar.close()
            seconds = time.perf_counter() - t0
            val_err = validation_error(model, val, self.device, max(batch, 16), cfg.channels_last)
            eligible = model.selection_ready()
            improved = eligible and (val_err < best or math.isnan(best))
            if improved:
                best = val_err
            if not self.dist.is_main:
                continue
            row = {"epoch": epoch + 1, **{k: v / counts[k] for k, v in sums.items()}, **model.train_state(),
                   "lr": schedulers[0].get_last_lr()[0], "val_error": val_err, "best": int(improved),
                   "seconds": round(seconds, 2), "tiles_per_s": round(iters_per_epoch * batch / seconds, 2)}
            self._append_log(log_path, row)
            state = {
                "model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "schedulers": [s.state_dict() for s in schedulers], "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "epoch": epoch + 1, "best_val": best, "config": to_dict(cfg),
                "model_name": cfg.model, "iteration": (epoch + 1) * iters_per_epoch,
            }
            if improved or not (ckpt_dir / "best.pt").exists() and epoch + 1 == cfg.epochs:
                save_checkpoint(ckpt_dir / "best.pt", {"model": state["model"], "epoch": epoch + 1, "config": state["config"],
                                                        "model_name": cfg.model, "val_error": val_err})
            if cfg.keep_epochs and ((epoch + 1) % cfg.keep_epochs == 0 or epoch + 1 == cfg.epochs):
                save_checkpoint(ckpt_dir / f"epoch-{epoch + 1:03d}.pt", {
                    "model": state["model"], "epoch": epoch + 1, "config": state["config"], "model_name": cfg.model,
                    "val_error": val_err})
            save_checkpoint(last_path, state)
            if self.progress:
                tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  loss {row.get('loss', float('nan')):.5f}  val {val_err:.5f}"
                           + "".join(f"  {k} {v:.3f}" for k, v in model.train_state().items())
                           + f"  {row['tiles_per_s']:.1f} tiles/s" + ("  *best" if improved else ""))
        return {"epochs": cfg.epochs, "best_val_error": best, "run": str(self.run)}

    @staticmethod
    def _truncate_log(path: Path, epochs: int) -> None:
        """Drop log rows of epochs the checkpoint does not hold (a kill between the log and the checkpoint)."""
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit() and int(r["epoch"]) <= epochs]
        if not rows:
            path.unlink()
            return
        write_csv_atomic(path, rows)

    @staticmethod
    def _append_log(path: Path, row: dict[str, Any]) -> None:
        """Append one epoch under the file's header. A model whose logged keys change during a run (f-AnoGAN's second
        stage logs ``recon`` instead of ``critic`` and ``generator``) gets the header widened and the file rewritten,
        with blanks where an epoch has no value: writing the row by its own keys would shift its values into
        other columns."""
        header: list[str] = []
        if path.exists():
            with open(path, newline="") as f:
                header = next(csv.reader(f), [])
        if header and set(row) <= set(header):
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=header, restval="").writerow(row)
            return
        rows: list[dict[str, Any]] = []
        if header:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        write_csv_atomic(path, [*rows, row], header + [k for k in row if k not in header])


def load_run_config(run: str | Path) -> TrainConfig:
    """A run's resolved config, without loading its weights."""
    cfg_path = Path(run) / "config.json"
    if not cfg_path.is_file():
        raise WdmtError(run, "not a run directory (no config.json)")
    try:
        return from_dict(TrainConfig, json.loads(cfg_path.read_text()))
    except json.JSONDecodeError as e:
        raise WdmtError(cfg_path, f"not valid JSON: {e}") from None


def load_run_model(run: str | Path, which: str = "best", fold: bool = True) -> tuple[AnomalyModel, TrainConfig]:
    """The model of a finished run, in eval mode on the CPU, and its config. ``fold`` (default) turns it into its faster
    inference form (:meth:`AnomalyModel.fold_for_inference`): the same maps, but it must not be trained further."""
    run = Path(run)
    cfg = load_run_config(run)
    st = load_checkpoint(run / "checkpoints" / f"{which}.pt")
    opts = dict(cfg.model_options)
    opts.setdefault("in_channels", cfg.preprocess.in_channels)
    model = create_model(cfg.model, **opts)
    model.load_state_dict(st["model"])
    model.eval()
    if fold:
        model.fold_for_inference()
    return model, cfg
