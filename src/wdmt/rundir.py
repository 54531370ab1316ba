"""The run directory: the one place that knows its layout, and the one reader and writer of each of its files.

A run directory holds

* ``config.json``: the resolved :class:`~wdmt.config.TrainConfig`;
* ``env.json``: seed, versions, device, threads, the source commit;
* ``data.json``: the dataset's root and format and every image's split, so evaluation sees the same split;
* ``log.csv``: one row per epoch (losses, alpha, validation error, seconds);
* ``checkpoints/last.pt`` (everything needed to resume), ``checkpoints/best.pt`` (the weights chosen on validation
  normals) and, with ``keep_epochs``, ``checkpoints/epoch-NNN.pt``: plain state dicts plus JSON-able metadata,
  loaded with ``weights_only=True``;
* ``calibration.json``: strict-protocol thresholds, one entry per evaluation setting;
* ``summary.json``: written last, so its presence means training and calibration finished;
* ``eval-*/``: evaluations (``metrics.json``, ``predictions.csv``, pictures).

* ``grid-maps.npz``: the benchmark's heat maps of a few test images, small, for its grid of maps.

:meth:`RunDir.copy_results` copies all of it but the weights and pictures: enough for the tables and the grid.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from wdmt.atomic import atomic_path, read_csv, write_csv_atomic, write_json_atomic
from wdmt.config import TrainConfig, from_dict, to_dict
from wdmt.datasets import DatasetIndex, Sample, open_dataset
from wdmt.errors import WdmtError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_weights(path: Path, state: dict[str, Any]) -> None:
    """The weights of a checkpoint as safetensors (no pickle at all: what ships inside the package), its scalar
    metadata (epoch, model name) in the file's header."""
    from safetensors.torch import save_file

    meta = {k: json.dumps(v) for k, v in state.items() if k != "model"}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state["model"].items()}, str(tmp), metadata=meta)


def load_weights(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            state = {"model": {k: f.get_tensor(k) for k in f.keys()}}  # noqa: SIM118 - safe_open has no items()
            state.update({k: json.loads(v) for k, v in (f.metadata() or {}).items()})
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file is the same one-line error
        raise WdmtError(path, f"not a readable safetensors file ({type(e).__name__})") from e
    return state


def checkpoint_file(path: Path) -> Path:
    """The file that holds checkpoint ``path``: itself, or where only ``<name>.safetensors`` exists (a shipped model)
    that one."""
    path, weights = Path(path), Path(path).with_suffix(".safetensors")
    return weights if not path.is_file() and weights.is_file() else path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint we wrote; pickled objects of any other kind are refused (weights_only). Where only
    ``<name>.safetensors`` exists (a shipped model), its weights."""
    path = checkpoint_file(path)
    if path.suffix == ".safetensors":
        return load_weights(path)
    if not path.is_file():
        raise WdmtError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncation, refused globals
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise WdmtError(path, f"not a wdmt checkpoint or unsafe to load ({type(e).__name__}: {first})") from e


def _float_or_none(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# Model defaults that have changed since runs began to record every option (wdmt after commit 10ea062), with their
# values before: a run written earlier named only the options that differed from the defaults of its day.
FORMER_DEFAULTS: dict[str, dict[str, Any]] = {"contrast": {"background_sigma": 12.0}}


def with_former_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A run's config as read from disk, with :data:`FORMER_DEFAULTS` filled in where it does not name them (a run
    that records every option always does), in a fused run's members too."""

    def fill(model: Any, opts: Any) -> Any:
        if not isinstance(opts, dict):
            return opts
        opts = {**FORMER_DEFAULTS.get(model, {}), **opts}
        for role in ("segmenter", "prior"):
            if f"{role}_options" in opts:
                opts[f"{role}_options"] = fill(opts.get(role), opts[f"{role}_options"])
        return opts

    if "model_options" not in data:
        return data
    return {**data, "model_options": fill(data.get("model"), data["model_options"])}


def recorded(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its model's options written out in full (:func:`wdmt.models.full_options`); a model wdmt does not
    know keeps its options as given."""
    from wdmt.models import MODELS, full_options, run_options

    if cfg.model not in MODELS:
        return cfg
    return replace(cfg, model_options=full_options(cfg.model, run_options(cfg)))


class RunDir:
    """One training run on disk. Cheap to create: nothing is read until asked for."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    # --- files ------------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def log_path(self) -> Path:
        return self.root / "log.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint_path(self, which: str) -> Path:
        """``best``, ``last`` or ``epoch-NNN``."""
        return self.checkpoints / f"{which}.pt"

    def read_json(self, name: str) -> Any:
        return json.loads((self.root / name).read_text(encoding="utf-8"))

    def write_json(self, name: str, obj: Any) -> Path:
        return write_json_atomic(self.root / name, obj)

    # --- config -----------------------------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The run's resolved config, without loading its weights; fields added to wdmt since take their defaults."""
        if not self.config_path.is_file():
            raise WdmtError(self.root, "not a run directory (no config.json)")
        try:
            return from_dict(TrainConfig, with_former_defaults(self.read_json("config.json")))
        except json.JSONDecodeError as e:
            raise WdmtError(self.config_path, f"not valid JSON: {e}") from e

    def config_differs(self, cfg: TrainConfig) -> bool:
        """Whether a config is on disk and trains otherwise than ``cfg`` (compared through :func:`from_dict`, so
        fields added to wdmt since the run was written count as their defaults). The evaluation settings are left
        out: they do not change the weights, and a run keeps the ones it recorded (a resume, a benchmark's reuse)
        when wdmt's defaults move. Model options are compared written out in full (:func:`recorded`), so a run that
        recorded every option matches a config that names only those differing from the defaults."""
        if not self.config_path.exists():
            return False
        return {**to_dict(recorded(self.config())), "eval": None} != {**to_dict(recorded(cfg)), "eval": None}

    def require_config(self, cfg: TrainConfig, reason: str) -> None:
        if self.config_differs(cfg):
            raise WdmtError(self.config_path, reason)

    def start(self, cfg: TrainConfig, env: dict[str, Any], data: dict[str, Any]) -> None:
        """A fresh run: its config, environment and data split on disk, and no log yet."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_json("config.json", to_dict(recorded(cfg)))
        self.write_json("env.json", env)
        self.write_json("data.json", data)
        self.log_path.unlink(missing_ok=True)

    # --- log --------------------------------------------------------------------------------------------------
    def log(self) -> list[dict[str, str]]:
        """The epoch rows of ``log.csv`` (empty before the first epoch ends)."""
        if not self.log_path.exists():
            return []
        return [r for r in read_csv(self.log_path) if r.get("epoch", "").isdigit()]

    def log_by_epoch(self) -> dict[int, dict[str, Any]]:
        """Per epoch, the log's alpha and validation error as numbers (None where a model has none)."""
        return {
            int(r["epoch"]): {"alpha": _float_or_none(r.get("alpha")), "val_error": _float_or_none(r.get("val_error"))}
            for r in self.log()
        }

    def append_log(self, row: dict[str, Any]) -> None:
        """Add one epoch under the file's header. A model whose logged keys change during a run (f-AnoGAN's second
        stage logs ``recon`` instead of ``critic`` and ``generator``) gets the header widened, with blanks where an
        epoch has no value: writing the row by its own keys would shift its values into other columns."""
        rows = read_csv(self.log_path) if self.log_path.exists() else []
        header = list(rows[0]) if rows else []
        write_csv_atomic(self.log_path, [*rows, row], header + [k for k in row if k not in header])

    def truncate_log(self, epochs: int) -> None:
        """Drop rows of epochs the checkpoint does not hold (a kill between the log and the checkpoint)."""
        if not self.log_path.exists():
            return
        rows = read_csv(self.log_path)
        kept = [r for r in rows if r.get("epoch", "").isdigit() and int(r["epoch"]) <= epochs]
        if kept:
            write_csv_atomic(self.log_path, kept, list(rows[0]))
        else:
            self.log_path.unlink()

    def kept_epoch(self) -> int | None:
        """The epoch ``best.pt`` holds: the last one the log marks best (the last epoch where none is)."""
        log = self.log()
        marked = [int(r["epoch"]) for r in log if r.get("best") == "1"]
        return marked[-1] if marked else (int(log[-1]["epoch"]) if log else None)

    # --- checkpoints ------------------------------------------------------------------------------------------
    def save(self, which: str, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path(which), state)

    def load(self, which: str) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(which))

    def kept_epochs(self) -> list[int]:
        """Epochs whose weights ``train --keep-epochs`` kept, in order."""
        found = []
        for p in self.checkpoints.glob("epoch-*.pt"):
            tail = p.stem.split("-", 1)[1]
            if tail.isdigit():
                found.append(int(tail))
        return sorted(found)

    def load_model(self, which: str = "best", fold: bool = True) -> tuple[Any, TrainConfig]:
        """The model of a finished run, in eval mode on the CPU, and its config. ``fold`` (default) turns it into its
        faster inference form (:meth:`AnomalyModel.fold_for_inference`): the same maps, but no more training."""
        from wdmt.models import build_from_config

        cfg = self.config()
        st = self.load(which)
        model = build_from_config(cfg, for_loading=True)
        model.load_state_dict(st["model"])  # strict: the backbone too comes from the checkpoint
        model.eval()
        if fold:
            model.fold_for_inference()
        return model, cfg

    # --- data -------------------------------------------------------------------------------------------------
    def dataset(self, root: str | Path | None = None) -> tuple[DatasetIndex, dict[str, Any]]:
        """The run's dataset with the splits it trained under (not re-drawn), and ``data.json`` itself. ``root``: the
        same dataset where it lies on this machine, for a run copied from another (``copy_results``)."""
        info = self.read_json("data.json")
        idx = open_dataset(root or info["root"], format=info["format"])
        self.apply_splits(idx, info)
        return idx, info

    @staticmethod
    def apply_splits(idx: DatasetIndex, info: dict[str, Any]) -> None:
        splits = info["splits"]
        idx.samples = [replace(s, split=splits.get(s.id, s.split)) for s in idx.samples]

    def reference_normals(self, purpose: str) -> tuple[list[Sample], bool]:
        """The normals that thresholds and tuning are chosen on, and whether they are the validation split. A folder
        dataset with 5 or fewer normals has none: then the training normals, with a warning naming ``purpose``, since
        the model saw them and what is chosen on them is optimistic."""
        idx, _ = self.dataset()
        val = idx.split("val")
        if val:
            return val, True
        warnings.warn(f"{self.root}: no validation images; {purpose} come from the training normals, which the model "
                      "saw: expect too many images and pixels called normal", stacklevel=3)
        return idx.split("train"), False

    def same_data(self, data: str | Path) -> bool:
        """Whether ``data`` is the folder this run trained on."""
        return Path(self.read_json("data.json")["root"]).resolve() == Path(data).resolve()

    # --- evaluation -------------------------------------------------------------------------------------------
    def calibrations(self) -> list[dict[str, Any]]:
        path = self.root / "calibration.json"
        return self.read_json("calibration.json") if path.exists() else []

    def eval_dir(self, split: str, which: str = "best") -> Path:
        return self.root / (f"eval-{split}" if which == "best" else f"eval-{split}-{which}")

    def copy_results(self, dest: str | Path) -> RunDir:
        """Copy the run without its weights and pictures (its records, log and evaluations: kilobytes, not megabytes)
        to ``dest``, so a long benchmark's finished runs can be kept, e.g. in git, after the machine that trained them
        is gone, and its tables rebuilt from them (``wdmt benchmark --report-only``). Each file is written atomically;
        files already in ``dest`` are replaced."""
        dest = Path(dest)
        for src in sorted(self.root.rglob("*")):
            rel = src.relative_to(self.root)
            weights_or_picture = rel.parts[0] == self.checkpoints.name or src.suffix == ".png"
            if src.is_dir() or weights_or_picture or src.name.startswith("."):  # "." : another writer's temporary
                continue
            with atomic_path(dest / rel) as tmp:
                tmp.write_bytes(src.read_bytes())
        return RunDir(dest)

    @property
    def grid_maps_path(self) -> Path:
        """The benchmark's cached heat maps of a few test images (:func:`wdmt.benchmark.report.grid_maps`)."""
        return self.root / "grid-maps.npz"

    @property
    def has_weights(self) -> bool:
        return self.checkpoint_path("best").exists()

    @property
    def finished_training(self) -> bool:
        return (self.root / "summary.json").exists()

    @property
    def resumable(self) -> bool:
        return self.checkpoint_path("last").exists() and self.config_path.exists()
