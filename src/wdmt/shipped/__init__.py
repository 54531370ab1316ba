"""A model that works out of the box: a trained run shipped inside the package, weights as safetensors.

A shipped model is a run directory without its training state: ``config.json``, ``calibration.json`` (its strict
thresholds), ``env.json``, ``summary.json``, ``log.csv`` (a trained run) or ``fusion.json`` (a fused one),
``checkpoints/best.safetensors``, and its model card (``card.json`` with every number, ``MODEL_CARD.md`` rendered from
it). Everything that takes ``--run`` takes it;
``wdmt predict`` without ``--run`` uses :data:`DEFAULT`. It is built by ``scripts/build_shipped_model.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from wdmt.atomic import write_json_atomic, write_text_atomic
from wdmt.errors import WdmtError

ROOT = Path(__file__).resolve().parent
DEFAULT = "fundus-v4"
RUN_FILES = ("config.json", "calibration.json", "env.json", "summary.json", "data.json")
OPTIONAL_RUN_FILES = ("log.csv", "fusion.json")  # a trained run's log; a fused run's choice of weight
MAX_BYTES = 25 * 10**6  # the 25 MB, decimal


def shipped_run(name: str = DEFAULT) -> Path:
    """The directory of a shipped model; a one-line error where this installation has none."""
    run = ROOT / name
    if not (run / "checkpoints" / "best.safetensors").is_file():
        raise WdmtError(run, "no shipped model in this installation: give --run RUN (a trained run) or --onnx FILE")
    return run


def card(name: str = DEFAULT) -> dict[str, Any]:
    return json.loads((shipped_run(name) / "card.json").read_text())


def pack(run: str | Path, out: str | Path, card_data: dict[str, Any]) -> Path:
    """Copy a finished, calibrated run into ``out`` as a shipped model: its files, the chosen weights as
    safetensors (refused over :data:`MAX_BYTES`), the card as JSON and Markdown."""
    from wdmt.rundir import RunDir, save_weights

    rd, out = RunDir(run), Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for f in RUN_FILES + tuple(f for f in OPTIONAL_RUN_FILES if (rd / f).is_file()):
        shutil.copy2(rd / f, out / f)
    state = rd.load("best")
    weights = out / "checkpoints" / "best.safetensors"
    save_weights(weights, {"model": state["model"], "epoch": state.get("epoch"), "model_name": state["model_name"]})
    weights.chmod(0o644)
    size = weights.stat().st_size
    if size > MAX_BYTES:
        weights.unlink()
        raise WdmtError(weights, f"{size / 1e6:.1f} MB: over the {MAX_BYTES / 1e6:.0f} MB a shipped model may take")
    card_data = {**card_data, "weights_mb": round(size / 1e6, 2)}
    write_json_atomic(out / "card.json", card_data)
    write_text_atomic(out / "MODEL_CARD.md", render_card(card_data))
    return out


def render_card(c: dict[str, Any]) -> str:
    """MODEL_CARD.md from ``card.json``: every number in it comes from there."""
    m = c["metrics"]
    lines = [
        f"# Model card: {c['name']} ({c['model']})",
        "",
        f"{c['summary']}",
        "",
        "## Training data",
        "",
        *[f"- {d}" for d in c["training_data"]],
        "",
        f"Licences: {c['licence']}. No diseased photograph was used in training.",
        "",
        "## Preprocessing",
        "",
        c["preprocessing"],
        "",
        "## Decisions",
        "",
        f"- pixel threshold {c['thresholds']['pixel_threshold']:.4g}, image threshold "
        f"{c['thresholds']['image_threshold']:.4g}",
        f"- rule: {c['thresholds']['rule']}",
        "",
        "## Measured accuracy",
        "",
        f"On the {m['n_images']} IDRiD photographs with lesion masks, never seen in training (the pixel metrics of",
        "this command, whose test split holds them beside some normals the model was fitted to):",
        "",
        f"    {c['reproduce']}",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in m["values"].items()],
        "",
        "## Known limits",
        "",
        *[f"- {x}" for x in c["limits"]],
        "",
        f"Built by `{c['command']}` (weights {c['weights_mb']} MB, safetensors).",
        "",
    ]
    return "\n".join(lines)
