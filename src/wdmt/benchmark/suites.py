"""What a benchmark runs: the paper's three tables as rows (a model and the options that differ from its defaults),
and the paper's own numbers to set beside ours."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from wdmt.config import resolve_config
from wdmt.errors import WdmtError
from wdmt.models import MODELS, model_config

TABLE1 = ["ae", "unet", "wdmt-nohog", "ae-hog", "unet-hog", "wdmt"]
# The paper's Table 3, plus ae-baur (the dense autoencoder of the literature) beside the U-Net-shaped "ae".
TABLE3 = ["ae", "ae-baur", "memae", "bionet", "attn-unet", "anogan", "f-anogan", "ganomaly", "sparse-gan", "proxyano",
          "wdmt"]
# Not in the paper: feature embedding and lesion synthesis beside WDMT-Net, same data, split, preset and
# metrics.
BEYOND = ["patchcore", "padim", "synth-seg", "wdmt-synth", "wdmt"]
DELTAS = (0.005, 0.01, 0.025, 0.05, 0.1)
PAPER_EPOCHS = 200
SUITES = ("ablation", "decay", "sota", "beyond")
# A YAML/JSON file of config keys applied to every run after the preset (``wdmt train --config``): a benchmark under
# other training defaults, e.g. configs/fill-fov.yaml, without a preset of its own.
Config = str | Path | None


@dataclass(frozen=True)
class PaperResult:
    """One cell group of the poster's tables: pixel AUC, ACC and F1 (method-spec 1.8)."""

    auc: float
    acc: float
    f1: float

    def __str__(self) -> str:
        return f"{self.auc:.3f}/{self.acc:.3f}/{self.f1:.3f}"


def _p(auc: float, acc: float, f1: float) -> PaperResult:
    return PaperResult(auc, acc, f1)


# The poster's numbers per row: (IDRiD, ADAM).
PAPER: dict[str, tuple[PaperResult, PaperResult]] = {
    "ae": (_p(0.686, 0.627, 0.537), _p(0.659, 0.637, 0.469)),
    "unet": (_p(0.553, 0.564, 0.532), _p(0.610, 0.619, 0.530)),
    "wdmt-nohog": (_p(0.725, 0.667, 0.680), _p(0.670, 0.654, 0.484)),
    "ae-hog": (_p(0.715, 0.655, 0.664), _p(0.662, 0.643, 0.470)),
    "unet-hog": (_p(0.640, 0.597, 0.539), _p(0.656, 0.641, 0.451)),
    "wdmt": (_p(0.748, 0.694, 0.711), _p(0.687, 0.660, 0.474)),
    "memae": (_p(0.647, 0.592, 0.567), _p(0.667, 0.647, 0.439)),
    "bionet": (_p(0.606, 0.563, 0.519), _p(0.642, 0.612, 0.481)),
    "attn-unet": (_p(0.581, 0.555, 0.558), _p(0.645, 0.617, 0.408)),
    "anogan": (_p(0.630, 0.618, 0.579), _p(0.677, 0.661, 0.455)),
    "f-anogan": (_p(0.698, 0.686, 0.637), _p(0.662, 0.638, 0.455)),
    "ganomaly": (_p(0.652, 0.633, 0.658), _p(0.673, 0.618, 0.539)),
    "sparse-gan": (_p(0.663, 0.638, 0.651), _p(0.667, 0.627, 0.500)),
    "proxyano": (_p(0.701, 0.682, 0.649), _p(0.675, 0.648, 0.451)),
    "wdmt delta=0.005": (_p(0.729, 0.661, 0.687), _p(0.676, 0.663, 0.451)),
    "wdmt delta=0.01": (_p(0.738, 0.685, 0.692), _p(0.678, 0.662, 0.482)),
    "wdmt delta=0.025": (_p(0.731, 0.674, 0.680), _p(0.673, 0.663, 0.465)),
    "wdmt delta=0.05": (_p(0.748, 0.694, 0.711), _p(0.687, 0.660, 0.474)),
    "wdmt delta=0.1": (_p(0.724, 0.669, 0.709), _p(0.674, 0.660, 0.471)),
}


@dataclass(frozen=True)
class Setting:
    """One row of a table: a model and the options that differ from its defaults."""

    model: str
    options: dict[str, Any] = field(default_factory=dict)
    paper_key: str = ""  # the paper's row this setting stands for, when its options differ from the paper's

    @property
    def own(self) -> str:
        """What is run: the model and its options."""
        return self.model + "".join(f" {k}={v}" for k, v in sorted(self.options.items()))

    @property
    def label(self) -> str:
        return f"{self.paper_key} (run as {self.own})" if self.paper_key and self.paper_key != self.own else self.own

    def run_name(self, seed: int) -> str:
        """Named by what is run, not by the paper's row it stands for: two rows that run the same thing (Table 2's
        preset delta and Table 1's WDMT-Net) share one run."""
        return self.own.replace(" ", "_").replace("=", "") + f"-s{seed}"

    def paper(self) -> tuple[PaperResult, PaperResult] | None:
        """The poster's numbers for this row, if it has any."""
        return PAPER.get(self.paper_key or self.label) or (PAPER.get(self.model) if not self.options else None)


def decay_settings(epochs: int) -> list[Setting]:
    """Table 2's deltas, scaled by 200 / epochs so that each closes the skips at the same fraction of training as in
    the paper's 200 epochs (0.05 closes them at 10 %): at the paper preset they are the paper's values, at the 40-epoch
    cpu preset five times larger. Unscaled, delta 0.005 over 40 epochs would leave alpha at 0.8 and never test the
    schedule the row names."""
    scale = PAPER_EPOCHS / epochs
    return [Setting("wdmt", {"delta": round(d * scale, 6)}, paper_key=f"wdmt delta={d}") for d in DELTAS]


def suite_settings(suite: str, models: list[str] | None = None, *, preset: str = "cpu",
                   epochs: int | None = None, config: Config = None) -> dict[str, list[Setting]]:
    """{suite: rows} for ``ablation`` (Table 1), ``decay`` (Table 2), ``sota`` (Table 3), ``beyond`` (methods the
    paper did not compare, with WDMT-Net as the reference) or ``all``."""
    n_epochs = epochs or resolve_config(preset, config, model="wdmt").epochs
    known = {"ablation": [Setting(m) for m in TABLE1],
             "decay": decay_settings(n_epochs),
             "sota": [Setting(m) for m in TABLE3],
             "beyond": [Setting(m) for m in BEYOND]}
    if suite != "all" and suite not in known:
        raise WdmtError(None, f"unknown suite {suite!r}: use {', '.join(SUITES)} or all")
    chosen = known if suite == "all" else {suite: known[suite]}
    if models:
        unknown = set(models) - set(MODELS)
        if unknown:
            raise WdmtError(None, f"unknown model(s) {', '.join(sorted(unknown))}")
        chosen = {k: [s for s in v if s.model in models] for k, v in chosen.items()}
    return chosen


def normalise(s: Setting, preset: str = "cpu", config: Config = None) -> Setting:
    """Drop options equal to what the preset (and config file) already give the model, so Table 2's row with the
    preset's own delta is the same run as Table 1's WDMT-Net."""
    default = {**asdict(model_config(s.model)), **resolve_config(preset, config, model=s.model).model_options}
    return replace(s, options={k: v for k, v in s.options.items() if default.get(k) != v})


def reference_setting(settings: list[Setting], preset: str, config: Config = None) -> Setting | None:
    """The row others are compared with: WDMT-Net as the preset trains it (Table 2: its Delta = 0.05 row)."""
    return next((s for s in settings if s.model == "wdmt" and not normalise(s, preset, config).options), None)


def seed_list(seeds: int) -> list[int]:
    return [5 + i for i in range(max(1, seeds))]  # 5 is the official seed


def runs_of(settings: list[Setting], seeds: int, preset: str, config: Config = None
            ) -> Iterator[tuple[Setting, int, str]]:
    """Each (row, seed) of a suite with the name of the run it uses (rows that run the same thing share one)."""
    for s in settings:
        for seed in seed_list(seeds):
            yield s, seed, normalise(s, preset, config).run_name(seed)
