"""The ``wdmt`` command: every verb is a thin wrapper over a plain function.

Errors in user input print one line (``wdmt: error: <file>: <reason>``) and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wdmt.errors import WdmtError


def _cmd_synth(a: argparse.Namespace) -> int:
    from wdmt.synth import generate, montage

    if a.out is None and a.montage is None:
        raise WdmtError(None, "synth: give --out DIR, --montage FILE or both")
    done: dict[str, Any] = {}
    if a.out is not None:
        out = generate(a.out, a.normal, a.abnormal, size=a.size, seed=a.seed, progress=not a.quiet and not a.json)
        done.update(out=str(out), normal=a.normal, abnormal=a.abnormal)
    if a.montage is not None:
        done["montage"] = str(montage(a.montage, size=min(a.size, 320), seed=a.seed))
    if a.json:
        print(json.dumps(done))
        return 0
    if "out" in done:
        print(f"wrote {a.normal} normal and {a.abnormal} abnormal images to {done['out']}")
    if "montage" in done:
        print(f"wrote {done['montage']}")
    return 0


def _cmd_data_check(a: argparse.Namespace) -> int:
    from wdmt.check import check_dataset, format_report

    report = check_dataset(a.dir, format=a.format, seed=a.seed, progress=not a.quiet and not a.json)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    for p in report["problems"]:
        print(f"wdmt: problem: {p}", file=sys.stderr)
    return 0 if report["usable"] else 2


def _model_options(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs for the model config (values parsed as YAML scalars: 16, 0.05, true, multi)."""
    import yaml

    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise WdmtError(None, f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def _at_least_one(text: str) -> int:
    if not (text.strip().isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _fold(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N); the range is checked against the dataset."""
    k, sep, n = text.partition("/")
    if not (sep and k.strip().isdigit() and n.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/5, got {text!r}")
    return int(k), int(n)


def _cmd_train(a: argparse.Namespace) -> int:
    from wdmt.api import train
    from wdmt.config import resolve_config
    from wdmt.models import model_config

    over = {"model": a.model, "epochs": a.epochs, "seed": a.seed, "batch_size": a.batch_size, "lr": a.lr,
            "device": a.device, "cpu_bf16": True if a.cpu_bf16 else None, "keep_epochs": a.keep_epochs}
    opts = _model_options(a.set)
    if opts:
        over["model_options"] = opts
    cfg = resolve_config(a.preset, a.config, **over)
    model_config(cfg.model, **cfg.model_options)  # fail early on a bad model option
    s = train(a.data, cfg, a.out, format=a.format, split_seed=a.split_seed, fold=a.fold, resume=a.resume,
              overwrite=a.overwrite, progress=not a.quiet and not a.json)
    if a.json and "calibration" in s:
        print(json.dumps(s, default=str))
    elif "calibration" in s:  # under torchrun only rank 0 reports
        print(
            f"trained {cfg.model} for {s['epochs']} epochs in {s['train_seconds']} s on {s['processes']} process(es)"
            + (f" (resumed at epoch {s['resumed_at_epoch']})" if s["resumed_at_epoch"] else "")
            + f"; run in {a.out}"
        )
    return 0


def _cmd_test(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from wdmt.api import test
    from wdmt.rundir import RunDir

    cfg = RunDir(a.run).config()
    ev = cfg.eval
    for k in ("fov", "score", "smooth_sigma", "precision", "tiling"):
        if getattr(a, k) is not None:
            ev = replace(ev, **{k: getattr(a, k)})
    r = test(
        a.run,
        a.data,
        format=a.format,
        split=a.split,
        protocol=a.protocol,
        ev=ev,
        out=a.out,
        which=a.checkpoint,
        pictures=a.pictures,
        progress=not a.quiet and not a.json,
        tuned=a.tuned,
        backend=a.backend,
    )
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        _print_test_summary(r)
    return 0


def _print_test_summary(r: dict) -> None:
    """The lines `wdmt test` prints for a person (``--json`` prints the whole result instead)."""
    p, i = r["pixel"], r["image"]
    if p.get("n_images"):
        print(
            f"pixel ({r['protocol']}): AUROC {p['auroc']:.3f} [{p['auroc_ci95'][0]:.3f}, "
            f"{p['auroc_ci95'][1]:.3f}]  "
            f"bal.acc {p['balanced_accuracy']:.3f}  F1-micro {p['f1_micro']:.3f}  Dice {p['f1']:.3f}  "
            f"AP {p['ap']:.3f}  AUPRO {p['aupro']:.3f}"
        )
        print(
            "pixel AUROC by FOV handling: " + ", ".join(f"{k} {v:.3f}" for k, v in r["pixel_auroc_by_fov"].items())
        )
    if "auroc" in i:
        print(
            f"image ({r['protocol']}): AUROC {i['auroc']:.3f}  AP {i['ap']:.3f}  bal.acc "
            f"{i['balanced_accuracy']:.3f}  F1 {i['f1']:.3f}"
        )
        o = r["image_own"]
        print(
            f"image, the model's own score ({o['definition']}): AUROC {o['auroc']:.3f}  bal.acc "
            f"{o['balanced_accuracy']:.3f}"
        )
    if "epoch_choice" in r:
        print(
            f"epoch {r['epoch_choice']['epoch']} chosen by test pixel AUROC among "
            f"{len(r['epoch_choice']['epochs'])} "
            "kept epochs (the paper's rule; tuned on test data): see epochs.csv"
        )
    print(f"wrote {r['out']}")


def _predict_spec(a: argparse.Namespace) -> Any:
    from wdmt.archive import EngineSpec

    if a.run is not None and a.onnx is not None:
        raise WdmtError(None, "predict: give either --run RUN or --onnx FILE, not both")
    if a.backend is not None and a.onnx is None:
        raise WdmtError(None, "predict: --backend chooses the runtime of an --onnx model")
    if a.run is None and a.onnx is None:
        from wdmt.shipped import card, shipped_run

        run, c = shipped_run(), card()
        print(f"wdmt: no --run given: using the shipped model {c['name']} ({c['model']}, trained on normal IDRiD and "
              f"HRF photographs; its card: {run / 'MODEL_CARD.md'})", file=sys.stderr)
    return EngineSpec(run=a.run, onnx=a.onnx, backend=a.backend or "onnxruntime", checkpoint=a.checkpoint,
                      tuned=a.tuned, eval={"precision": a.precision} if a.precision else None, device=a.device,
                      photos_per_batch=a.batch_size)


def _cmd_predict(a: argparse.Namespace) -> int:
    from wdmt.archive import SOME_FAILED, FileOptions, StreamOptions, score_archive

    spec = _predict_spec(a)
    files = FileOptions(overlays=not a.no_overlays, overlay_size=a.overlay_size, overlay_format=a.overlay_format,
                        maps=a.save_maps,
                        masks=a.save_masks)
    opts = StreamOptions(files=files, workers=a.workers, draft=a.draft, fail_fast=a.fail_fast,
                         progress=not a.quiet)

    def started(todo: int, skipped: int) -> None:
        if skipped:
            print(f"wdmt: {skipped} photograph(s) already scored in {a.out} with this model and settings: skipped; "
                  f"{todo} to score", file=sys.stderr)

    def row(r: dict[str, Any]) -> None:
        try:
            print(json.dumps(r), flush=True)
        except BrokenPipeError:  # a reader that stopped (| head) ends the echo, not the scoring: the files have it all
            _silence_stdout()

    s = score_archive(spec, a.images, a.out, opts, engine=a.engine, on_row=row, on_start=started,
                      ray_actors=a.ray_actors)
    if s["failed"] or not a.quiet:
        print(f"wdmt: scored {s['scored']}, skipped {s['skipped']}, failed {s['failed']} of {s['photographs']} "
              f"photograph(s) in {s['seconds']:.1f} s; wrote {a.out}/predictions.csv"
              + (f"; the failures are listed in {a.out}/errors.csv" if s["failed"] else ""), file=sys.stderr)
    return SOME_FAILED if s["failed"] else 0


def _cmd_serve(a: argparse.Namespace) -> int:
    from wdmt.serve import Scorer, make_server

    if a.backend is not None and a.onnx is None:
        raise WdmtError(None, "serve: --backend chooses the runtime of an --onnx model")
    scorer = Scorer(run=a.run, onnx=a.onnx, backend=a.backend or "onnxruntime", device=a.device)
    server = make_server(scorer, a.host, a.port, a.max_mb)
    host, port = server.server_address[:2]
    print(f"wdmt serve: model {scorer.name}; open http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _cmd_tune(a: argparse.Namespace) -> int:
    from wdmt.tune import tune_run

    t = tune_run(a.run, which=a.checkpoint, variants=a.variants, progress=not a.quiet and not a.json)
    if a.json:
        print(json.dumps(t, default=str))
        return 0
    px, im, th = t["chosen"]["pixel"], t["chosen"]["image"], t["thresholds"]
    print(f"proxy set: {t['proxy']['normal_images']} {t['proxy']['source']}, {t['proxy']['lesioned_images']} lesioned "
          "copies")
    print(f"chosen: tiling {px['tiling']}, smoothing sigma {px['smooth_sigma']} (proxy pixel AP {px['ap']:.3f}, "
          f"AUROC {px['auroc']:.3f}, inside the FOV); image score {im['score']} (proxy image AUROC {im['auroc']:.3f})")
    print(f"thresholds: pixel {th['pixel_threshold']:.4g}, image {th['image_threshold']:.4g} ({th['rule']})")
    print(f"wrote {Path(a.run) / 'tuning.json'}; use it with wdmt test --tuned / wdmt predict --tuned")
    return 0


def _cmd_fuse(a: argparse.Namespace) -> int:
    from wdmt.fuse import fuse_runs

    f = fuse_runs(a.segmenter, a.prior, a.out, weight=a.weight, segmenter_tiling=a.segmenter_tiling,
                  overwrite=a.overwrite, variants=a.variants, proxy=a.proxy)
    if a.json:
        print(json.dumps(f, default=str))
        return 0
    chosen = next(r for r in f["candidates"] if r["weight"] == f["proxy_choice"])
    print(f"proxy set: {f['proxy']['normal_images']} {f['proxy']['source']}, {f['proxy']['lesioned_images']} lesioned "
          f"copies ({f['proxy']['lesions']} lesions)")
    print(f"the proxy's weight: {f['proxy_choice']:g} of the prior's map / {f['scale']:.4g} (proxy pixel AUROC "
          f"{chosen['proxy_auroc']:.3f}, AP {chosen['proxy_ap']:.3f}, inside the FOV; rule: {f['rule']})")
    if f["weight"] != f["proxy_choice"]:
        print(f"weight used: {f['weight']:g} (given)")
    print(f"wrote the fused run {a.out}; score with wdmt test/predict/export/serve --run {a.out}")
    return 0


def _cmd_benchmark(a: argparse.Namespace) -> int:
    from wdmt.benchmark import benchmark, plan

    if a.plan:
        entries = plan(a.suite, a.out, preset=a.preset, seeds=a.seeds, models=a.models, epochs=a.epochs,
                       config=a.config)
        if a.json:
            print(json.dumps(entries, default=str))
            return 0
        print("| row | seed | state | training min left (est.) |\n|---|---|---|---|")
        for e in entries:
            est = "?" if e["minutes_left"] is None and e["epochs_left"] else f"{e['minutes_left'] or 0:.0f}"
            print(f"| {e['row']} | {e['seed']} | {e['state']} | {est} |")
        known = [e["minutes_left"] for e in entries if e["minutes_left"] is not None]
        unknown = sum(1 for e in entries if e["minutes_left"] is None and e["epochs_left"])
        print(
            f"{sum(e['state'] == 'done' for e in entries)} of {len(entries)} runs done; about "
            f"{sum(known):.0f} min of training left"
            + (f", plus {unknown} run(s) of models never timed here" if unknown else "")
            + " (epoch times of this output folder's runs; evaluation not counted)"
        )
        return 0
    r = benchmark(
        a.suite,
        a.data,
        a.out,
        preset=a.preset,
        seeds=a.seeds,
        fmt=a.format,
        models=a.models,
        progress=not a.quiet and not a.json,
        epochs=a.epochs,
        report_only=a.report_only,
        keep_epochs=a.keep_epochs,
        config=a.config,
        archive=a.archive,
        jobs=a.jobs,
    )
    if a.json:
        print(json.dumps(r, default=str))
        return 0
    for name in r["tables"]:
        print((Path(a.out) / f"table-{name}.md").read_text())
    print(f"report: {r['report']}")
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from wdmt.export import export_onnx

    r = export_onnx(a.run, a.out, which=a.checkpoint, tuned=a.tuned)
    if a.json:
        print(json.dumps(r, default=str))
        return 0
    diff = r.get("max_abs_diff")
    print(f"wrote {r['path']}" + ("" if diff is None else f" (max |torch - onnxruntime| of the maps: {diff:.2e})"))
    return 0


def _cmd_models(a: argparse.Namespace) -> int:
    from dataclasses import asdict

    from wdmt.models import MODELS

    rows = [asdict(e.info) for e in MODELS.values()]
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            size = r["input_size"] or "any"
            lr = f"lr={r['lr']:g} (own) " if r["lr"] is not None else ""
            print(
                f"{r['name']:12s} hog={'yes' if r['needs_hog'] else 'no ':3s} "
                f"adversarial={'yes' if r['adversarial'] else 'no ':3s} "
                f"input={size!s:4s} {lr}{r['description']}"
            )
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from wdmt.demo import demo

    r = demo(a.out, epochs=a.epochs, progress=not a.quiet and not a.json)
    if a.json:
        print(json.dumps(r, default=str))
    return 0


# wdmt.benchmark.SUITES plus "all", spelled out so that parsing imports no torch (tests/test_cli.py keeps them in step).
BENCHMARK_SUITES = ("ablation", "decay", "sota", "beyond", "all")
BACKENDS = ("onnxruntime", "openvino")  # literal so that parsing imports nothing; a test keeps it deploy.BACKENDS
DEVICES = ("auto", "cpu", "cuda")  # likewise wdmt.archive.engines.DEVICES
ENGINES = ("local", "ray")  # likewise wdmt.archive.ENGINES


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Options several verbs share, defined once."""
    from wdmt.datasets import FORMATS

    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bars")
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="print one JSON object with the results instead of lines for a "
                    "person")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="dataset layout (default: detect)")
    return {"quiet": quiet, "format": fmt, "json": js}


def _add_data_verbs(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    s = sub.add_parser("synth", parents=[par["quiet"], par["json"]],
        help="write a synthetic fundus dataset (folder layout)")
    s.add_argument("--out", help="dataset folder to create")
    s.add_argument("--normal", type=int, default=40, help="how many healthy photographs")
    s.add_argument("--abnormal", type=int, default=10, help="how many with painted lesions (and their masks)")
    s.add_argument("--size", type=int, default=768, help="side of each square photograph, px")
    s.add_argument("--seed", type=int, default=0, help="seed of the painter: the same seed, the same photographs")
    s.add_argument("--montage", help="also write a grid picture of synthetic images to this PNG")
    s.set_defaults(func=_cmd_synth)

    d = sub.add_parser("data", help="inspect datasets")
    dsub = d.add_subparsers(dest="data_verb", required=True)
    c = dsub.add_parser(
        "check", parents=[par["quiet"], par["format"], par["json"]],
        help="counts, sizes, mask coverage and problems of a dataset"
    )
    c.add_argument("dir", help="the dataset folder")
    c.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split of normal images")
    c.set_defaults(func=_cmd_data_check)


def _add_train(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "train", parents=[par["quiet"], par["format"], par["json"]],
        help="train a model on the normal images of a dataset"
    )
    t.add_argument("--data", required=True, help="dataset folder (normal/, abnormal/, masks/; IDRiD and ADAM too)")
    t.add_argument("--model", default="wdmt", help="see 'wdmt models'")
    t.add_argument("--preset", default="cpu", help="cpu, paper or tiny")
    t.add_argument("--config", help="YAML file of config keys (applied after the preset)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    t.add_argument("--batch-size", type=int, help="training tiles per step (default: the preset's)")
    t.add_argument("--lr", type=float, help="learning rate (adversarial models: see 'wdmt models' for their own)")
    t.add_argument("--seed", type=int, help="seed of the weights and the batches (default: the preset's, 5)")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split of normal images")
    t.add_argument("--fold", type=_fold, metavar="K/N",
                   help="cross-validation: the normals of fold K of N (split by --split-seed) are the test split")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps")
    t.add_argument("--cpu-bf16", action="store_true", help="bfloat16 autocast on CPU (faster on CPUs with AMX)")
    t.add_argument(
        "--keep-epochs",
        type=int,
        metavar="K",
        help="also keep every K-th epoch's weights, for the paper's epoch choice (wdmt test --checkpoint paper)",
    )
    t.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="model option, e.g. --set width=32 --set delta=0.1"
    )
    t.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="delete --out first if it holds a run")
    t.set_defaults(func=_cmd_train)


def _add_test(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    from wdmt.config import EvalConfig, literal_choices

    e = sub.add_parser("test", parents=[par["quiet"], par["format"], par["json"]],
        help="evaluate a run (pixel and image level)")
    e.add_argument("--run", required=True, help="a trained or fused run directory")
    e.add_argument("--data", help="dataset (default: the run's own)")
    e.add_argument("--split", default="test", choices=["test", "all", "val", "train"],
                   help="which images: the run's test split, or all images of another dataset")
    e.add_argument("--protocol", default="paper", choices=["paper", "strict", "proxy"],
                   help="whose thresholds decide: paper (Youden's J on the test data), strict (quantiles of validation "
                        "normals), proxy (chosen by 'wdmt tune' on validation normals with synthetic lesions)")
    e.add_argument("--tuned", action="store_true",
                   help="evaluate as 'wdmt tune' chose on the proxy validation set (tiling, smoothing, image score)")
    e.add_argument(
        "--checkpoint",
        default="best",
        choices=["best", "last", "paper"],
        help="best: lowest validation-normal error (default); paper: the official code's choice, the kept epoch "
        "with the highest test pixel AUROC (needs train --keep-epochs; tunes on test data)",
    )
    e.add_argument("--fov", choices=literal_choices(EvalConfig, "fov"),
                   help="field of view: none (every pixel, the paper), zero (zeroed outside), inside (its pixels only; "
                        "default: the run's)")
    e.add_argument("--score", choices=literal_choices(EvalConfig, "score"),
                   help="image score from the map (default: the run's; topk: mean of the top 1 %%)")
    e.add_argument("--smooth-sigma", type=float, help="Gaussian smoothing of the map, px (default: the run's)")
    e.add_argument(
        "--precision",
        choices=literal_choices(EvalConfig, "precision"),
        help="inference arithmetic (bf16: faster on AMX CPUs)",
    )
    e.add_argument(
        "--tiling", choices=literal_choices(EvalConfig, "tiling"), help="overlap: half-tile strides, blended (no seams)"
    )
    e.add_argument("--backend", default="torch", choices=("torch", *BACKENDS),
                   help="torch (default), or the exported graph under onnxruntime or openvino (the run's tiling)")
    e.add_argument("--pictures", type=int, default=4, help="how many test images get a picture grid")
    e.add_argument("--out", help="output folder (default RUN/eval-SPLIT)")
    e.set_defaults(func=_cmd_test)


def _add_fitting_verbs(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    """Verbs that choose on validation data after training: tune, fuse."""
    tu = sub.add_parser("tune", parents=[par["quiet"], par["json"]],
                        help="choose tiling, map smoothing, image score and thresholds on validation normals with "
                             "synthetic lesions (never on test images)")
    tu.add_argument("--run", required=True, help="a trained or fused run directory")
    tu.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights of the run")
    tu.add_argument("--variants", type=int, default=3, help="lesioned copies of each validation normal")
    tu.set_defaults(func=_cmd_tune)

    fu = sub.add_parser("fuse", parents=[par["json"]],
        help="one run from a fitted lesion segmenter and a fitted feature model: the "
                        "segmenter's map over a small share of the other's, the share chosen on the proxy set")
    fu.add_argument("--segmenter", required=True, help="a finished run of a segmenter (synth-seg)")
    fu.add_argument("--prior", required=True, help="a finished run of a feature model (padim, patchcore), same data")
    fu.add_argument("--out", required=True, help="the fused run directory to write")
    fu.add_argument("--overwrite", action="store_true", help="replace --out if it holds a run")
    fu.add_argument("--variants", type=int, default=3, help="lesioned copies of each validation normal")
    fu.add_argument("--segmenter-tiling", default="overlap", choices=["overlap", "whole"],
                    help="the segmenter on overlapping tiles of its training tile (default) or the whole picture")
    fu.add_argument("--proxy", default="painted",
                    help="the proxy's lesions: 'painted', exact masks (default), or 'annotated', haemorrhages "
                         "outlined as annotators draw them")
    fu.add_argument("--weight", type=float, help="the prior's share as given, instead of the proxy's choice (0: the "
                    "segmenter alone, scored as the fusion scores it)")
    fu.set_defaults(func=_cmd_fuse)


def _add_predict(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    from wdmt.config import EvalConfig, literal_choices

    pr = sub.add_parser(
        "predict", parents=[par["quiet"]],
        help="score fundus photographs (the shipped model, a trained run or an ONNX file)",
        description="Score photographs, folders and lists of them into one output folder, streaming and resumable: a "
                    "rerun skips what is scored. Prints one JSON line per photograph scored. Exit code 0: all "
                    "scored; 3: some could not be (errors.csv); 2: nothing scored (a usage error, or --fail-fast "
                    "and a bad photograph).")
    pr.add_argument("images", nargs="+", metavar="PHOTO",
                    help="photographs: files, folders (searched recursively for .jpg .jpeg .png .tif .tiff .bmp) "
                         "and @LIST files (one path a line, relative to the list's folder)")
    pr.add_argument("--run", help="run directory (torch; default: the model shipped with wdmt)")
    pr.add_argument("--onnx", help="exported model (no torch needed)")
    pr.add_argument("--backend", choices=BACKENDS,
                    help="runtime for --onnx: onnxruntime (default) or openvino (pip install openvino onnx)")
    pr.add_argument("--out", default="wdmt-predictions", help="output folder; files mirror each photograph's path")
    pr.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights of --run")
    pr.add_argument("--precision", choices=literal_choices(EvalConfig, "precision"),
                    help="inference arithmetic (default: the run's; bf16 is faster on AMX CPUs)")
    pr.add_argument("--tuned", action="store_true",
                    help="the evaluation and thresholds 'wdmt tune' chose on the proxy validation set")
    pr.add_argument("--device", default="auto", choices=DEVICES,
                    help="where a --run model computes: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda")
    pr.add_argument("--batch-size", type=_at_least_one, metavar="N",
                    help="photographs per model call (default: 1 on a CPU, 8 on a GPU)")
    pr.add_argument("--workers", type=int, default=2, metavar="N",
                    help="threads that decode photographs and write files beside the model (0: none)")
    pr.add_argument("--save-maps", action="store_true", help="also write each anomaly map (model resolution, "
                    "float16 .npy)")
    pr.add_argument("--save-masks", action="store_true", help="also write each lesion mask at the pixel threshold "
                    "(binary PNG, the photograph's resolution)")
    pr.add_argument("--no-overlays", action="store_true", help="no heat-map overlay pictures (faster)")
    pr.add_argument("--overlay-size", type=int, default=2048, metavar="PX",
                    help="longest side of an overlay picture (0: the photograph's own)")
    pr.add_argument("--overlay-format", default="jpg", choices=("jpg", "png"),
                    help="overlay pictures as JPEG (quality 90) or PNG (lossless, ten times the bytes)")
    pr.add_argument("--draft", action="store_true",
                    help="decode large JPEGs at the smallest DCT scale the model and overlay still need: faster, but "
                         "scores move (docs/usage.md says how much)")
    pr.add_argument("--fail-fast", action="store_true",
                    help="check every photograph first and stop at the first bad one, writing nothing (exit 2)")
    pr.add_argument("--engine", default="local", choices=ENGINES,
                    help="local: this machine; ray: Ray Data actors (pip install 'wdmt[ray]'; RAY_ADDRESS joins a "
                         "cluster)")
    pr.add_argument("--ray-actors", type=_at_least_one, metavar="N",
                    help="--engine ray: model copies (default: one per GPU with --device cuda, else one per 2 CPUs)")
    pr.set_defaults(func=_cmd_predict)


def _add_use_verbs(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:

    _add_predict(sub, par)

    sv = sub.add_parser("serve", help="a local web page: drop photographs, see their heat maps")
    sv.add_argument("--run", help="run directory (default: the model shipped with wdmt)")
    sv.add_argument("--onnx", help="exported model instead (no torch needed)")
    sv.add_argument("--backend", choices=BACKENDS, help="runtime for --onnx (default onnxruntime)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    sv.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free one)")
    sv.add_argument("--max-mb", type=float, default=25.0, help="largest upload accepted (default 25 MB)")
    sv.add_argument("--device", default="auto", choices=DEVICES,
                    help="where a --run model computes: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda")
    sv.set_defaults(func=_cmd_serve)

    _add_fitting_verbs(sub, par)

    x = sub.add_parser("export", parents=[par["json"]],
        help="export a run's model (ONNX, dynamic batch) with its thresholds")
    x.add_argument("--run", required=True, help="a trained or fused run directory")
    x.add_argument("--out", required=True, help="the ONNX file to write, e.g. model.onnx")
    x.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which weights of the run")
    x.add_argument("--tuned", action="store_true", help="ship the evaluation and thresholds 'wdmt tune' chose")
    x.set_defaults(func=_cmd_export)

    m = sub.add_parser("models", parents=[par["json"]], help="list the registered models")
    m.set_defaults(func=_cmd_models)

    dm = sub.add_parser(
        "demo", parents=[par["quiet"], par["json"]],
        help="synthesise data, train WDMT-Net (cpu preset), evaluate, show the pictures"
    )
    dm.add_argument("--out", default="wdmt-demo", help="folder for the data, the run and the pictures")
    dm.add_argument("--epochs", type=int, default=None, help="training epochs (default: 10)")
    dm.set_defaults(func=_cmd_demo)


def _add_benchmark(sub: Any, par: dict[str, argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "benchmark",
        parents=[par["quiet"], par["format"], par["json"]],
        help="reproduce the paper's tables: train and evaluate every model of a suite",
    )
    b.add_argument("--suite", default="ablation", choices=BENCHMARK_SUITES,
                   help="ablation: Table 1; decay: Table 2; sota: Table 3; beyond: the newer families")
    b.add_argument("--data", required=True, help="dataset folder")
    b.add_argument("--preset", default="cpu", help="cpu, paper or tiny")
    b.add_argument("--config", help="YAML file of config keys applied to every run after the preset (as in train)")
    b.add_argument("--seeds", type=int, default=1, help="seeds per row (5, 6, 7, ...)")
    b.add_argument("--models", nargs="+", help="only these models of the suite")
    b.add_argument("--epochs", type=int, help="every run's epochs instead of the preset's (decay rates follow)")
    b.add_argument(
        "--keep-epochs",
        type=int,
        default=0,
        metavar="K",
        help="new runs keep every K-th epoch's weights, and runs that kept them get the paper's epoch choice "
        "(best test AUROC) in columns of their own, beside ours",
    )
    b.add_argument("--out", required=True, help="folder for the runs, tables, figures and report")
    b.add_argument(
        "--plan", action="store_true", help="list every run, done or not, with the training left; run nothing"
    )
    b.add_argument(
        "--report-only",
        action="store_true",
        help="tables and report from the finished runs only; train and evaluate nothing",
    )
    b.add_argument(
        "--jobs",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="train N runs at once, each in its own process with cores/N threads (small models use many cores "
        "poorly, so this trains more runs per hour); evaluation follows, one run at a time",
    )
    b.add_argument(
        "--archive",
        metavar="DIR",
        help="also copy every finished run, without its weights, to DIR/runs/ (kilobytes a run); "
        "'--report-only --out DIR' rebuilds the tables and figures from them on any machine with the dataset",
    )
    b.set_defaults(func=_cmd_benchmark)


EXAMPLES = {
    "synth": "wdmt synth --out synth-data --normal 40 --abnormal 10",
    "data": "wdmt data check ../shared/data/idrid",
    "check": "wdmt data check ../shared/data/idrid --json",
    "train": "wdmt train --data ../shared/data/idrid --model padim --out runs/padim",
    "test": "wdmt test --run runs/padim --protocol strict",
    "predict": "wdmt predict archive/ @more.txt --out scores --save-masks",
    "serve": "wdmt serve --run runs/padim --port 8765",
    "tune": "wdmt tune --run runs/padim",
    "fuse": "wdmt fuse --segmenter runs/synth-seg --prior runs/padim --out runs/fused",
    "export": "wdmt export --run runs/padim --out padim.onnx",
    "models": "wdmt models --json",
    "demo": "wdmt demo --out wdmt-demo",
    "benchmark": "wdmt benchmark --suite ablation --data ../shared/data/idrid --seeds 3 --out bench/idrid-cpu",
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help, unless the help says it or there is none to show (an unset option,
    an off switch); the example below each verb kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action)


def _finish(parser: argparse.ArgumentParser) -> None:
    """Every verb: defaults shown, its example below its options."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, verb in action.choices.items():
                verb.formatter_class = _Formatter
                if name in EXAMPLES:
                    verb.epilog = f"example:\n  {EXAMPLES[name]}"
                _finish(verb)


def build_parser() -> argparse.ArgumentParser:
    from wdmt import __version__

    p = argparse.ArgumentParser(prog="wdmt", description="Unsupervised lesion detection in fundus photographs.")
    p.add_argument("--version", action="version", version=f"wdmt {__version__}")
    p.add_argument(
        "--debug", action="store_true", help="show tracebacks (with their causes) instead of one-line errors"
    )
    sub = p.add_subparsers(dest="verb", required=True)
    par = _parents()
    _add_data_verbs(sub, par)
    _add_train(sub, par)
    _add_test(sub, par)
    _add_use_verbs(sub, par)
    _add_benchmark(sub, par)
    _finish(p)
    return p


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that nothing more is written to a pipe whose reader has gone."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 must not crash a report
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WdmtError as e:
        if args.debug:
            raise
        print(f"wdmt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wdmt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): no traceback, as other tools
        _silence_stdout()
        return 141


if __name__ == "__main__":
    sys.exit(main())
