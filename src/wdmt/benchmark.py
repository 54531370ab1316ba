"""``wdmt benchmark``: the paper's three tables on any dataset, one run per (model, setting, seed), resumable.

Writes to OUT: ``runs/<run>/`` (each a normal run directory with its evaluations) and, per suite,
``results-<suite>.csv`` (one row per run), ``table-<suite>.md`` / ``.csv`` laid out like the paper's tables,
``roc-<suite>.png``, ``bars-<suite>.png``, ``maps-<suite>.png`` and one self-contained ``report-<suite>.html``. A
killed benchmark, started again, skips finished runs and resumes a half-trained one from its last epoch.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from wdmt import api
from wdmt.atomic import write_csv_atomic, write_text_atomic
from wdmt.config import TrainConfig, from_dict, resolve_config, to_dict
from wdmt.errors import WdmtError
from wdmt.figures import pyplot, save_figure
from wdmt.models import MODELS, model_config
from wdmt.rundir import RunDir

TABLE1 = ["ae", "unet", "wdmt-nohog", "ae-hog", "unet-hog", "wdmt"]
# The paper's Table 3, plus ae-baur (the dense autoencoder of the literature) beside the U-Net-shaped "ae".
TABLE3 = ["ae", "ae-baur", "memae", "bionet", "attn-unet", "anogan", "f-anogan", "ganomaly", "sparse-gan", "proxyano",
          "wdmt"]
DELTAS = (0.005, 0.01, 0.025, 0.05, 0.1)
PAPER_EPOCHS = 200

# The poster's numbers (AUC / ACC / F1), IDRiD and ADAM (method-spec 1.8), shown for reference beside ours.
PAPER = {
    "ae": ("0.686/0.627/0.537", "0.659/0.637/0.469"), "unet": ("0.553/0.564/0.532", "0.610/0.619/0.530"),
    "wdmt-nohog": ("0.725/0.667/0.680", "0.670/0.654/0.484"), "ae-hog": ("0.715/0.655/0.664", "0.662/0.643/0.470"),
    "unet-hog": ("0.640/0.597/0.539", "0.656/0.641/0.451"), "wdmt": ("0.748/0.694/0.711", "0.687/0.660/0.474"),
    "memae": ("0.647/0.592/0.567", "0.667/0.647/0.439"), "bionet": ("0.606/0.563/0.519", "0.642/0.612/0.481"),
    "attn-unet": ("0.581/0.555/0.558", "0.645/0.617/0.408"), "anogan": ("0.630/0.618/0.579", "0.677/0.661/0.455"),
    "f-anogan": ("0.698/0.686/0.637", "0.662/0.638/0.455"), "ganomaly": ("0.652/0.633/0.658", "0.673/0.618/0.539"),
    "sparse-gan": ("0.663/0.638/0.651", "0.667/0.627/0.500"), "proxyano": ("0.701/0.682/0.649", "0.675/0.648/0.451"),
    "wdmt delta=0.005": ("0.729/0.661/0.687", "0.676/0.663/0.451"), "wdmt delta=0.01": ("0.738/0.685/0.692", "0.678/0.662/0.482"),
    "wdmt delta=0.025": ("0.731/0.674/0.680", "0.673/0.663/0.465"), "wdmt delta=0.05": ("0.748/0.694/0.711", "0.687/0.660/0.474"),
    "wdmt delta=0.1": ("0.724/0.669/0.709", "0.674/0.660/0.471"),
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


def decay_settings(epochs: int) -> list[Setting]:
    """Table 2's deltas, scaled by 200 / epochs so that each closes the skips at the same fraction of training as in
    the paper's 200 epochs (0.05 closes them at 10 %): at the paper preset they are the paper's values, at the 40-epoch
    cpu preset five times larger. Unscaled, delta 0.005 over 40 epochs would leave alpha at 0.8 and never test the
    schedule the row names."""
    scale = PAPER_EPOCHS / epochs
    return [Setting("wdmt", {"delta": round(d * scale, 6)}, paper_key=f"wdmt delta={d}") for d in DELTAS]


def suite_settings(suite: str, models: list[str] | None = None, *, preset: str = "cpu",
                   epochs: int | None = None) -> dict[str, list[Setting]]:
    """{suite: rows} for ``ablation`` (Table 1), ``decay`` (Table 2), ``sota`` (Table 3) or ``all``."""
    n_epochs = epochs or resolve_config(preset, model="wdmt").epochs
    known = {"ablation": [Setting(m) for m in TABLE1],
             "decay": decay_settings(n_epochs),
             "sota": [Setting(m) for m in TABLE3]}
    if suite != "all" and suite not in known:
        raise WdmtError(None, f"unknown suite {suite!r}: use ablation, decay, sota or all")
    chosen = known if suite == "all" else {suite: known[suite]}
    if models:
        unknown = set(models) - set(MODELS)
        if unknown:
            raise WdmtError(None, f"unknown model(s) {', '.join(sorted(unknown))}")
        chosen = {k: [s for s in v if s.model in models] for k, v in chosen.items()}
    return chosen


def _normalise(s: Setting, preset: str = "cpu") -> Setting:
    """Drop options equal to what the preset already gives the model, so Table 2's row with the preset's own delta is
    the same run as Table 1's WDMT-Net."""
    default = {**asdict(model_config(s.model)), **resolve_config(preset, model=s.model).model_options}
    return replace(s, options={k: v for k, v in s.options.items() if default.get(k) != v})


def training_minutes(log: list[dict[str, str]]) -> float:
    """Median epoch time x epochs: robust to a few epochs slowed by other work on the machine (a paused or
    shared run), which a plain sum would charge to the model."""
    secs = [float(r["seconds"]) for r in log]
    return float(np.median(secs)) * len(secs) / 60 if secs else float("nan")


def seed_list(seeds: int) -> list[int]:
    return [5 + i for i in range(max(1, seeds))]  # 5 is the official seed


def _run_and_config(s: Setting, seed: int, preset: str, out: Path, epochs: int | None,
                    keep_epochs: int = 0) -> tuple[Path, TrainConfig]:
    """Where a row's run lives and the config the benchmark asks of it. Keeping epochs changes no arithmetic, so a run
    keeps the policy it started with: runs trained without kept epochs are reused, and get no paper's-epoch columns."""
    norm = _normalise(s, preset)
    run = out / "runs" / norm.run_name(seed)
    saved = run / "config.json"
    if saved.exists():
        keep_epochs = int(json.loads(saved.read_text()).get("keep_epochs", 0))
    cfg = resolve_config(preset, model=s.model, seed=seed, epochs=epochs, model_options=norm.options,
                         keep_epochs=keep_epochs)
    return run, cfg


def _config_differs(run: Path, cfg: TrainConfig) -> bool:
    """A run on disk trained under another config (preset, --epochs) than ``cfg``; fields added since it was written
    take their defaults."""
    saved = run / "config.json"
    return saved.exists() and to_dict(from_dict(TrainConfig, json.loads(saved.read_text()))) != to_dict(cfg)


def _kept_epoch(log: list[dict[str, str]]) -> int | None:
    """The epoch ``best.pt`` holds: the last one the log marks best (the last epoch where none is)."""
    marked = [int(r["epoch"]) for r in log if r.get("best") == "1"]
    return marked[-1] if marked else (int(log[-1]["epoch"]) if log else None)


def run_one(s: Setting, seed: int, data: str | Path, preset: str, out: Path, fmt: str, progress: bool,
            epochs: int | None = None, keep_epochs: int = 0) -> dict[str, Any]:
    """Train (or resume, or skip) one run and evaluate it under both protocols, and where it kept its epochs under the
    paper's epoch choice too; returns its result row."""
    run, cfg = _run_and_config(s, seed, preset, out, epochs, keep_epochs)
    paper_m, strict_m = run / "eval-test" / "metrics.json", run / "eval-test-strict" / "metrics.json"
    if _config_differs(run, cfg):
        # A finished run is never trusted by its name alone: another preset or --epochs must not be mixed in.
        raise WdmtError(run / "config.json", "this run was trained with another config than the benchmark asks for; "
                        "use another --out or the same --preset/--epochs")
    if not (run / "summary.json").exists():
        partial = (run / "checkpoints" / "last.pt").exists() and (run / "config.json").exists()
        api.train(data, cfg, run, format=fmt, overwrite=not partial, resume=partial, progress=progress)
    if not paper_m.exists():
        api.test(run, protocol="paper", out=run / "eval-test", pictures=0, progress=False)
    if not strict_m.exists():
        api.test(run, protocol="strict", out=run / "eval-test-strict", pictures=0, progress=False)
    overlap_m = run / "eval-test-overlap" / "metrics.json"
    if not overlap_m.exists():  # the seam-free tiling beside the paper's grid
        api.test(run, protocol="paper", ev=replace(cfg.eval, tiling="overlap"), out=overlap_m.parent, pictures=0,
                 progress=False)
    chosen_m = run / "eval-test-paper" / "metrics.json"
    if not chosen_m.exists() and RunDir(run).kept_epochs():  # the official epoch choice, beside ours, never instead
        api.test(run, protocol="paper", which="paper", out=chosen_m.parent, pictures=0, progress=False)
    chosen = json.loads(chosen_m.read_text()) if chosen_m.exists() else {}
    p, st, ov = (json.loads(m.read_text()) for m in (paper_m, strict_m, overlap_m))
    with open(run / "log.csv", newline="") as f:
        log = list(csv.DictReader(f))
    pp, sp, si = p["pixel"], st["pixel"], st["image"]
    return {
        "row": s.label, "model": s.model, "seed": seed, "run": str(run),
        "auc": pp.get("auroc"), "acc": pp.get("balanced_accuracy"), "f1_micro": pp.get("f1_micro"), "dice": pp.get("f1"),
        "auc_lo": (pp.get("auroc_ci95") or [None, None])[0], "auc_hi": (pp.get("auroc_ci95") or [None, None])[1],
        "ap": sp.get("ap"), "aupro": sp.get("aupro"), "dice_strict": sp.get("f1"), "acc_strict": sp.get("balanced_accuracy"),
        "auc_fov_zero": p.get("pixel_auroc_by_fov", {}).get("zero"), "auc_fov_inside": p.get("pixel_auroc_by_fov", {}).get("inside"),
        "image_auc": si.get("auroc"), "image_acc_strict": si.get("balanced_accuracy"),
        "error_contrast": pp.get("error", {}).get("contrast"),
        "auc_overlap": ov["pixel"].get("auroc"), "auc_overlap_fov_zero": ov.get("pixel_auroc_by_fov", {}).get("zero"),
        "train_min": round(training_minutes(log), 2),
        "epoch": _kept_epoch(log), "epoch_paper_choice": chosen.get("epoch_choice", {}).get("epoch"),
        "auc_paper_choice": chosen.get("pixel", {}).get("auroc"), "aupro_paper_choice": chosen.get("pixel", {}).get("aupro"),
        "roc": pp.get("roc"),
    }


def _fmt(vals: list[float | None]) -> str:
    v = [x for x in vals if x is not None and np.isfinite(x)]
    if not v:
        return "-"
    return f"{np.mean(v):.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "")


def reference_setting(settings: list[Setting], preset: str) -> Setting | None:
    """The row others are compared with: WDMT-Net as the preset trains it (Table 2: its Delta = 0.05 row)."""
    return next((s for s in settings if s.model == "wdmt" and not _normalise(s, preset).options), None)


def _paired_delta(rs: list[dict[str, Any]], ref: list[dict[str, Any]]) -> str:
    """AUROC minus the reference's, seed by seed (same seed, same split, same test images): mean ± std, and on how
    many seeds this row was the higher. Training noise is what the std measures; the test images are the same."""
    by_seed = {r["seed"]: r["auc"] for r in ref if r["auc"] is not None}
    d = [r["auc"] - by_seed[r["seed"]] for r in rs if r["auc"] is not None and r["seed"] in by_seed]
    if not d:
        return "-"
    sd = f" ± {np.std(d, ddof=1):.3f}" if len(d) > 1 else ""
    return f"{np.mean(d):+.3f}{sd} ({sum(x > 0 for x in d)}/{len(d)} higher)"


def aggregate(rows: list[dict[str, Any]], settings: list[Setting], reference: Setting | None = None) -> list[dict[str, str]]:
    """One table row per setting: mean ± std over seeds; the AUROC interval is the mean of the per-seed bootstrap
    95 % intervals (images resampled); with a reference, the paired AUROC difference to it."""
    out = []
    ref_rows = [r for r in rows if reference and r["row"] == reference.label]
    for s in settings:
        rs = [r for r in rows if r["row"] == s.label]
        if not rs:
            continue
        delta = {} if not ref_rows else {
            f"AUC - {reference.model}": "-" if s == reference else _paired_delta(rs, ref_rows)}
        lo, hi = _fmt([r["auc_lo"] for r in rs]), _fmt([r["auc_hi"] for r in rs])
        paper = PAPER.get(s.paper_key or s.label) or PAPER.get(s.model if not s.options else "", ("", ""))
        out.append({
            "method": s.label, "seeds": str(len(rs)),
            "AUC": _fmt([r["auc"] for r in rs]), "AUC 95% CI": f"{lo.split(' ')[0]}-{hi.split(' ')[0]}", **delta,
            "ACC": _fmt([r["acc"] for r in rs]), "F1 (micro)": _fmt([r["f1_micro"] for r in rs]),
            "Dice": _fmt([r.get("dice") for r in rs]),
            "AUC, FOV zeroed": _fmt([r["auc_fov_zero"] for r in rs]), "AUC, FOV only": _fmt([r["auc_fov_inside"] for r in rs]),
            "AUC, overlapping tiles": _fmt([r.get("auc_overlap") for r in rs]),
            "AUC, overlap + FOV zeroed": _fmt([r.get("auc_overlap_fov_zero") for r in rs]),
            "AP": _fmt([r["ap"] for r in rs]), "AUPRO": _fmt([r["aupro"] for r in rs]),
            "strict ACC": _fmt([r["acc_strict"] for r in rs]), "strict Dice": _fmt([r["dice_strict"] for r in rs]),
            "image AUC": _fmt([r["image_auc"] for r in rs]),
            "lesion/normal error": _fmt([r.get("error_contrast") for r in rs]),
            "train min": _fmt([r["train_min"] for r in rs]),
            "AUC, paper's epoch choice": _fmt([r.get("auc_paper_choice") for r in rs]),
            "epoch, ours / paper's": " ".join(f"{r.get('epoch') or '-'}/{r.get('epoch_paper_choice') or '-'}" for r in rs),
            "paper IDRiD": paper[0], "paper ADAM": paper[1],
        })
    if not any(r.get("auc_paper_choice") is not None for r in rows):  # no run kept its epochs: no empty columns
        for o in out:
            del o["AUC, paper's epoch choice"], o["epoch, ours / paper's"]
    return out


def _markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plots(out: Path, suite: str, rows: list[dict[str, Any]], settings: list[Setting]) -> list[Path]:
    plt = pyplot()
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    for s in settings:
        r = next((r for r in rows if r["row"] == s.label and r.get("roc")), None)
        if r:
            ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], label=f"{s.label} ({r['auc']:.3f})", lw=1.2)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"pixel ROC, {suite} (seed {rows[0]['seed']})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    paths.append(out / f"roc-{suite}.png")
    save_figure(fig, paths[-1])

    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(settings) + 2), 3.5), dpi=110)
    means, stds, labels = [], [], []
    for s in settings:
        v = [r["auc"] for r in rows if r["row"] == s.label and r["auc"] is not None]
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
    paths.append(out / f"bars-{suite}.png")
    save_figure(fig, paths[-1])
    return paths


ADVERSARIAL = ("d_loss", "critic", "adv", "g_adv")  # log.csv columns of the two-player models, where collapse shows


def _curves(out: Path, suite: str, rows: list[dict[str, Any]], settings: list[Setting]) -> Path | None:
    """Per epoch, one line per row (its first seed): validation-normal error with the selected epoch marked, alpha
    where a row decays it, and the adversarial losses where a row has them, so a collapse or a skip that never
    closes is visible in the report."""
    plt = pyplot()
    logs = []
    for s in settings:
        r = next((r for r in rows if r["row"] == s.label), None)
        path = Path(r["run"]) / "log.csv" if r else None
        if path and path.is_file():
            logs.append((s.label, list(csv.DictReader(open(path)))))
    if not logs:
        return None

    def column(log: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
        pts = [(int(e["epoch"]), float(e[key])) for e in log if e.get(key) not in (None, "")]
        return [p[0] for p in pts], [p[1] for p in pts]

    panels = ["val_error"]
    if any(len({e.get("alpha") for e in log}) > 1 for _, log in logs):
        panels.append("alpha")
    if any(k in log[0] for _, log in logs for k in ADVERSARIAL):
        panels.append("adversarial")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for i, (label, log) in enumerate(logs):
            colour, line = f"C{i % 10}", "-" if i < 10 else "--"  # 11 rows: the 11th must not look like the 1st
            if panel == "adversarial":
                for key, style in zip(ADVERSARIAL, ("-", "--", ":", "-.")):
                    if key in log[0]:
                        ax.plot(*column(log, key), style, color=colour, lw=1, label=f"{label}: {key}")
                continue
            if panel not in log[0]:
                continue
            ax.plot(*column(log, panel), line, color=colour, lw=1, label=label)
            if panel == "val_error":
                best = [e for e in log if e.get("best") == "1"]
                if best:
                    ax.plot(int(best[-1]["epoch"]), float(best[-1]["val_error"]), "o", color=colour, ms=4)
        ax.set_xlabel("epoch")
        ax.set_title({"val_error": "validation-normal error (dot: kept checkpoint)", "alpha": "alpha at epoch end",
                      "adversarial": "adversarial losses"}[panel], fontsize=9)
        if panel == "val_error":
            ax.set_yscale("log")
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = out / f"curves-{suite}.png"
    save_figure(fig, path)
    return path


def _map_grid(out: Path, suite: str, rows: list[dict[str, Any]], settings: list[Setting], n_images: int = 3) -> Path | None:
    """Rows: the first few annotated test images; columns: input, ground truth, every method's heat map."""
    plt = pyplot()
    from wdmt.evaluate import infer
    from wdmt.pipeline import load_samples

    runs = [(s, next((r["run"] for r in rows if r["row"] == s.label), None)) for s in settings]
    runs = [(s, r) for s, r in runs if r]
    if not runs:
        return None
    idx, _ = RunDir(runs[0][1]).dataset()
    samples = [s for s in idx.split("test") if s.label == 1 and s.masks][:n_images]
    if not samples:
        return None
    width_in = 2.2 * (len(runs) + 2)
    dpi = min(90, 1600 / width_in)  # at most 1600 px wide: the grid is inlined in the report and committed to docs
    fig, axes = plt.subplots(len(samples), len(runs) + 2, figsize=(width_in, 2.3 * len(samples)), dpi=dpi,
                             squeeze=False)
    for col, (s, run) in enumerate(runs):
        model, cfg = RunDir(run).load_model()
        items = load_samples(samples, cfg.preprocess, None, progress=False)
        res = infer(model, items, cfg)
        for row, r in enumerate(res):
            m = r.map(cfg.eval)
            if col == 0:
                axes[row, 0].imshow(r.item.prepared.image, cmap="gray")
                axes[row, 1].imshow(r.item.prepared.lesion, cmap="gray")
                axes[row, 0].set_ylabel(r.item.sample.id, fontsize=8)
            axes[row, col + 2].imshow(m, cmap="inferno", vmin=0, vmax=float(np.quantile(m, 0.999)) or 1.0)
            if row == 0:
                axes[0, col + 2].set_title(s.label, fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    axes[0, 1].set_title("lesions", fontsize=8)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    path = out / f"maps-{suite}.png"
    save_figure(fig, path)
    return path


def _html(out: Path, sections: list[tuple[str, list[dict[str, str]], list[Path]]], meta: dict[str, Any]) -> Path:
    parts = ["<!doctype html><meta charset='utf-8'><title>wdmt benchmark</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
             "img{max-width:100%}</style>",
             f"<h1>wdmt benchmark</h1><p>{html.escape(json.dumps(meta))}</p>",
             "<p>AUC, ACC, F1 (micro), Dice: the paper protocol, pooled pixels of the abnormal test images, threshold by "
             "Youden's J on those test pixels. AP and AUPRO need no threshold. Strict: the threshold from validation "
             "normals only. ± is the std over seeds. AUC - wdmt: the AUC minus WDMT-Net's (as the preset trains it), seed by "
             "seed on the same test images, and on how many seeds the row was higher. train min: median epoch time x "
             "epochs (robust to epochs slowed by other work on the machine). lesion/normal error: mean map on lesion pixels over "
             "the mean on lesion-free pixels inside the field of view (near 1: the model reproduces lesions). Overlapping "
             "tiles: eval.tiling=overlap, half-tile strides blended, no seams (not the paper's protocol).</p>"]
    for title, rows, pics in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if rows:
            head = list(rows[0])
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(r[h])}</td>" for h in head) + "</tr>" for r in rows]
            parts.append("</table>")
        for p in pics:
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<p><img alt='{html.escape(p.name)}' src='data:image/png;base64,{data}'></p>")
    path = out / f"report-{meta['suite']}.html"  # one per suite: a later suite must not overwrite an earlier one
    write_text_atomic(path, "\n".join(parts))
    return path


def _finished(run: Path) -> bool:
    evals = ("eval-test", "eval-test-strict", "eval-test-overlap") + (("eval-test-paper",) if RunDir(run).kept_epochs() else ())
    return (run / "summary.json").exists() and all((run / d / "metrics.json").exists() for d in evals)


def plan(suite: str, out: str | Path, *, preset: str = "cpu", seeds: int = 1, models: list[str] | None = None,
         epochs: int | None = None) -> list[dict[str, Any]]:
    """What a benchmark would do, without doing it: one entry per run (rows sharing a run appear once) with its state
    and, where a finished or half-trained run of the same model gives an epoch time, the minutes of training left."""
    out = Path(out)
    entries: dict[str, dict[str, Any]] = {}
    epoch_s: dict[str, list[float]] = {}
    for settings in suite_settings(suite, models, preset=preset, epochs=epochs).values():
        for s in settings:
            for seed in seed_list(seeds):
                run, cfg = _run_and_config(s, seed, preset, out, epochs)
                if run.name in entries:
                    continue
                log = list(csv.DictReader(open(run / "log.csv"))) if (run / "log.csv").exists() else []
                done_epochs = len(log)
                if log:
                    epoch_s.setdefault(s.model, []).append(float(np.median([float(r["seconds"]) for r in log])))
                if _config_differs(run, cfg):
                    state = "refused: trained with another config"
                elif (run / "summary.json").exists():
                    state = "done" if _finished(run) else "trained, to evaluate"
                elif (run / "checkpoints" / "last.pt").exists():
                    state = f"partial: epoch {done_epochs}/{cfg.epochs}"
                else:
                    state = "to train"
                entries[run.name] = {"row": s.label, "seed": seed, "run": str(run), "model": s.model, "state": state,
                                     "epochs_left": 0 if state.startswith(("done", "trained", "refused"))
                                     else cfg.epochs - done_epochs}
    for e in entries.values():
        per_epoch = epoch_s.get(e["model"])
        e["minutes_left"] = float(np.median(per_epoch)) * e["epochs_left"] / 60 if per_epoch else None
    return list(entries.values())


def benchmark(suite: str, data: str | Path, out: str | Path, *, preset: str = "cpu", seeds: int = 1, fmt: str = "auto",
              models: list[str] | None = None, progress: bool = True, maps: bool = True,
              epochs: int | None = None, report_only: bool = False, keep_epochs: int = 0) -> dict[str, Any]:
    """Run a suite (see the module docstring); returns the aggregated rows per suite and the report's path.
    ``epochs`` overrides the preset's for every run (a smaller budget, e.g. on synthetic data); decay rates follow it.
    ``report_only`` trains and evaluates nothing: the tables and report cover the finished runs and name the missing
    ones, so a long benchmark can be read while it runs. ``keep_epochs`` makes new runs keep every k-th epoch's weights,
    and every run that kept them is also evaluated under the paper's epoch choice, reported in columns of its own."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suites = suite_settings(suite, models, preset=preset, epochs=epochs)
    seeds_run = seed_list(seeds)
    all_rows: list[dict[str, Any]] = []
    done: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    sections = []
    for name, settings in suites.items():
        rows = []
        for s in settings:
            for seed in seeds_run:
                key = _normalise(s, preset).run_name(seed)
                if report_only and key not in done and not _finished(out / "runs" / key):
                    missing.append(key)
                    continue
                if key not in done:
                    done[key] = run_one(s, seed, data, preset, out, fmt, progress, epochs, keep_epochs)
                rows.append({**done[key], "row": s.label})
        all_rows += rows
        table = aggregate(rows, settings, reference_setting(settings, preset))
        write_text_atomic(out / f"table-{name}.md", _markdown(table))
        write_csv_atomic(out / f"table-{name}.csv", table, None if table else ["method"])
        pics = _plots(out, name, rows, settings) if rows else []
        curves = _curves(out, name, rows, settings) if rows else None
        if curves:
            pics.append(curves)
        if maps and rows:
            grid = _map_grid(out, name, rows, settings)
            if grid:
                pics.append(grid)
        sections.append((f"{name} ({preset} preset, {len(seeds_run)} seed(s))", table, pics))
    write_csv_atomic(out / f"results-{suite}.csv", all_rows,
                     [k for k in all_rows[0] if k != "roc"] if all_rows else ["row"])
    meta = {"data": str(data), "preset": preset, "epochs": epochs, "seeds": seeds_run, "suite": suite}
    if report_only:
        meta["runs not finished (left out)"] = missing
    report = _html(out, sections, meta)
    return {"tables": {name: aggregate(all_rows, st, reference_setting(st, preset)) for name, st in suites.items()},
            "report": str(report)}
