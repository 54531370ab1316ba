"""The benchmark's pictures and its one self-contained HTML page (figures inlined; no script, style or font from the
internet)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from wdmt.atomic import atomic_path, write_text_atomic
from wdmt.benchmark.runner import RunResult
from wdmt.benchmark.suites import Setting
from wdmt.benchmark.tables import glossary
from wdmt.figures import pyplot, save_figure
from wdmt.rundir import RunDir

ADVERSARIAL = ("d_loss", "critic", "adv", "g_adv")  # log.csv columns of the two-player models, where collapse shows
PANEL_TITLES = {"val_error": "validation-normal error (dot: kept checkpoint)", "alpha": "alpha at epoch end",
                "adversarial": "adversarial losses"}


def roc_figure(out: Path, suite: str, rows: list[RunResult], settings: list[Setting]) -> Path:
    """Each row's pixel ROC (its first seed)."""
    fig, ax = pyplot().subplots(figsize=(5, 5), dpi=110)
    for s in settings:
        r = next((r for r in rows if r.row == s.label and r.roc), None)
        if r:
            ax.plot(r.roc["fpr"], r.roc["tpr"], label=f"{s.label} ({r.auc:.3f})", lw=1.2)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"pixel ROC, {suite} (seed {rows[0].seed})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out / f"roc-{suite}.png")


def bars_figure(out: Path, suite: str, rows: list[RunResult], settings: list[Setting]) -> Path:
    """Mean pixel AUROC per row with the std over seeds."""
    fig, ax = pyplot().subplots(figsize=(max(4, 0.8 * len(settings) + 2), 3.5), dpi=110)
    means, stds, labels = [], [], []
    for s in settings:
        v = [r.auc for r in rows if r.row == s.label and r.auc is not None]
        if v:
            labels.append(s.label)
            means.append(np.mean(v))
            stds.append(np.std(v, ddof=1) if len(v) > 1 else 0.0)
    ax.bar(range(len(means)), means, yerr=stds, capsize=3, color="#c0504d")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0.4, 1.0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("pixel AUROC (paper protocol)")
    fig.tight_layout()
    return save_figure(fig, out / f"bars-{suite}.png")


def _column(log: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
    pts = [(int(e["epoch"]), float(e[key])) for e in log if e.get(key) not in (None, "")]
    return [p[0] for p in pts], [p[1] for p in pts]


def _curve_panel(ax: Any, panel: str, logs: list[tuple[str, list[dict[str, str]]]]) -> None:
    for i, (label, log) in enumerate(logs):
        colour, line = f"C{i % 10}", "-" if i < 10 else "--"  # 11 rows: the 11th must not look like the 1st
        if panel == "adversarial":
            for key, style in zip(ADVERSARIAL, ("-", "--", ":", "-."), strict=True):
                if key in log[0]:
                    ax.plot(*_column(log, key), style, color=colour, lw=1, label=f"{label}: {key}")
            continue
        if panel not in log[0]:
            continue
        ax.plot(*_column(log, panel), line, color=colour, lw=1, label=label)
        best = [e for e in log if e.get("best") == "1"]
        if panel == "val_error" and best:
            ax.plot(int(best[-1]["epoch"]), float(best[-1]["val_error"]), "o", color=colour, ms=4)
    ax.set_xlabel("epoch")
    ax.set_title(PANEL_TITLES[panel], fontsize=9)
    if panel == "val_error":
        ax.set_yscale("log")
    ax.legend(fontsize=6)


def curves_figure(out: Path, suite: str, rows: list[RunResult], settings: list[Setting]) -> Path | None:
    """Per epoch, one line per row (its first seed): validation-normal error with the selected epoch marked, alpha
    where a row decays it, and the adversarial losses where a row has them, so a collapse or a skip that never
    closes is visible in the report."""
    logs = []
    for s in settings:
        r = next((r for r in rows if r.row == s.label), None)
        log = RunDir(r.run).log() if r else []
        if log:
            logs.append((s.label, log))
    if not logs:
        return None
    panels = ["val_error"]
    if any(len({e.get("alpha") for e in log}) > 1 for _, log in logs):
        panels.append("alpha")
    if any(k in log[0] for _, log in logs for k in ADVERSARIAL):
        panels.append("adversarial")
    fig, axes = pyplot().subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        _curve_panel(ax, panel, logs)
    fig.tight_layout()
    return save_figure(fig, out / f"curves-{suite}.png")


GRID_SIDE = 256  # px of each cached heat map: the grid draws panels about 200 px wide


def grid_samples(rd: RunDir, n_images: int = 3, data: str | Path | None = None) -> list[Any]:
    """The grid's rows: the first few annotated test images of the run's split (``data``: where the dataset lies
    here, if not where the run recorded it)."""
    idx, _ = rd.dataset(data)
    return [s for s in idx.split("test") if s.label == 1 and s.masks][:n_images]


def grid_maps(rd: RunDir, samples: list[Any]) -> np.ndarray | None:
    """A run's heat maps of the grid's test images, each scaled to [0, 255] by its 0.999 quantile (the figure's colour
    range) at ``GRID_SIDE`` px, as uint8. Cached in the run (:attr:`RunDir.grid_maps_path`, tens of kilobytes), so a
    copy of it without weights (``--archive``) still draws its column; None where neither cache nor weights exist."""
    from PIL import Image

    from wdmt.config import to_dict
    from wdmt.evaluate import infer
    from wdmt.pipeline import load_samples

    # what the maps depend on besides the weights file: the images, the map settings, the epoch kept
    key = np.array(json.dumps({"ids": [s.id for s in samples], "eval": to_dict(rd.config().eval),
                               "epoch": rd.kept_epoch()}, sort_keys=True))
    if rd.grid_maps_path.exists():
        with np.load(rd.grid_maps_path, allow_pickle=False) as z:
            if "key" in z and z["key"] == key:
                return z["maps"]
    if not rd.has_weights:
        return None
    model, cfg = rd.load_model()
    maps = []
    for r in infer(model, load_samples(samples, cfg.preprocess, None, progress=False), cfg):
        m = r.map(cfg.eval)
        top = float(np.quantile(m, 0.999)) or 1.0
        u8 = Image.fromarray(np.uint8(np.clip(m / top, 0, 1) * 255))
        maps.append(np.asarray(u8.resize((GRID_SIDE, round(GRID_SIDE * m.shape[0] / m.shape[1])), Image.BILINEAR)))
    with atomic_path(rd.grid_maps_path) as tmp:
        np.savez_compressed(tmp, key=key, maps=np.stack(maps))
    return np.stack(maps)


def maps_figure(
    out: Path, suite: str, rows: list[RunResult], settings: list[Setting], n_images: int = 3,
    data: str | Path | None = None,
) -> Path | None:
    """Rows: the first few annotated test images; columns: input, ground truth, every method's heat map (runs kept
    without weights draw theirs from :func:`grid_maps`'s cache, and are left out where they have none)."""
    from wdmt.pipeline import load_samples

    runs = [(s, next((r.run for r in rows if r.row == s.label), None)) for s in settings]
    runs = [(s, RunDir(r)) for s, r in runs if r]
    if not runs:
        return None
    samples = grid_samples(runs[0][1], n_images, data)
    cols = [(s.label, m) for s, rd in runs if samples and (m := grid_maps(rd, samples)) is not None]
    if not cols:
        return None
    prepared = load_samples(samples, runs[0][1].config().preprocess, None, progress=False)
    width_in = 2.2 * (len(cols) + 2)
    dpi = min(90, 1600 / width_in)  # at most 1600 px wide: the grid is inlined in the report and committed to docs
    fig, axes = pyplot().subplots(
        len(samples), len(cols) + 2, figsize=(width_in, 2.3 * len(samples)), dpi=dpi, squeeze=False
    )
    for row, p in enumerate(prepared):
        axes[row, 0].imshow(p.prepared.image, cmap="gray")
        axes[row, 1].imshow(p.prepared.lesion, cmap="gray")
        axes[row, 0].set_ylabel(p.sample.id, fontsize=8)
    for col, (label, maps) in enumerate(cols):
        for row, m in enumerate(maps):
            axes[row, col + 2].imshow(m, cmap="inferno", vmin=0, vmax=255)
        axes[0, col + 2].set_title(label, fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    axes[0, 1].set_title("lesions", fontsize=8)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, out / f"maps-{suite}.png")


def figures(out: Path, suite: str, rows: list[RunResult], settings: list[Setting], maps: bool,
            data: str | Path | None = None) -> list[Path]:
    if not rows:
        return []
    pics = [
        roc_figure(out, suite, rows, settings),
        bars_figure(out, suite, rows, settings),
        curves_figure(out, suite, rows, settings),
        maps_figure(out, suite, rows, settings, data=data) if maps else None,
    ]
    return [p for p in pics if p is not None]


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
    "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
    "img{max-width:100%}dt{font-weight:bold;margin-top:.4em}"
)


def _table_html(rows: list[dict[str, str]]) -> list[str]:
    head = list(rows[0])
    return (
        ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        + ["<tr>" + "".join(f"<td>{html.escape(r[h])}</td>" for h in head) + "</tr>" for r in rows]
        + ["</table>"]
    )


def html_report(out: Path, sections: list[tuple[str, list[dict[str, str]], list[Path]]], meta: dict[str, Any]) -> Path:
    """One page per suite (a later suite must not overwrite an earlier one): tables, figures, and what each column
    means."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>wdmt benchmark</title>",
        f"<style>{STYLE}</style>",
        f"<h1>wdmt benchmark</h1><p>{html.escape(json.dumps(meta))}</p>",
    ]
    columns: list[str] = []
    for title, rows, pics in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if rows:
            parts += _table_html(rows)
            columns += [c for c in rows[0] if c not in columns]
        for p in pics:
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<p><img alt='{html.escape(p.name)}' src='data:image/png;base64,{data}'></p>")
    terms = glossary(columns)
    if terms:
        parts.append("<h2>What the columns mean</h2><dl>")
        parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in terms.items()]
        parts.append("</dl>")
    return write_text_atomic(out / f"report-{meta['suite']}.html", "\n".join(parts))
