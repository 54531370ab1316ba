"""How fast ``wdmt predict`` scores full-resolution photographs, where the time goes, and how much memory it keeps.

Measured in one run, on one machine, side by side:
* model only: the model's photographs per second on pictures already prepared in memory (the ceiling);
* end to end: ``wdmt predict``'s streaming engine on JPEG files, default settings (overlays on), and with
  ``--draft``; the seconds of each stage (decode, prepare, model, files) summed over photographs;
* serial: the same work one step after another on one thread, whole-resolution overlays (how predict ran before
  it streamed), as the baseline the streaming engine is compared with;
* peak memory (max RSS of a fresh process) of end-to-end runs over N photographs, for each N asked.

The photographs: IDRiD's development photographs (../shared/data/idrid, 1536 px) enlarged to the camera's 4288 x 2848
and saved as JPEG quality 95 (the originals are not in shared/data), repeated under new names to reach N.

    python benchmarks/predict_speed.py --n 20 --memory 20 400 --save docs/benchmarks/predict-speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "idrid"
FULL = (4288, 2848)


def make_photos(folder: Path, n: int, source: Path = SOURCE, size: tuple[int, int] = FULL) -> list[Path]:
    """``n`` distinct JPEG files at the camera's resolution: the first few made, the rest links to them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    originals = sorted((source / "normal").glob("*.jpg")) + sorted((source / "abnormal").glob("*.jpg"))
    if not originals:
        raise SystemExit(f"no photographs under {source}: this benchmark needs ../shared/data/idrid")
    made = []
    for src in originals[: min(n, 12)]:
        dst = folder / f"{src.stem}.jpg"
        if not dst.exists():
            Image.open(src).convert("RGB").resize(size, Image.LANCZOS).save(dst, quality=95)
        made.append(dst)
    out = list(made)
    for i in range(len(made), n):
        link = folder / f"copy{i:05d}.jpg"
        if not link.exists():
            link.symlink_to(made[i % len(made)].name)
        out.append(link)
    return out[:n]


def model_only(spec, photos: list[Path], repeats: int = 1) -> dict:
    """Photographs per second of the model alone, on pictures prepared beforehand (median over photographs)."""
    from wdmt.io import read_photo
    from wdmt.preprocess import prepare

    engine = spec.build()
    pictures = [prepare(read_photo(p)[0], engine.preprocess) for p in photos]
    engine.score(pictures[:1])  # warm-up: the first call pays for allocation
    times = []
    for _ in range(repeats):
        for pic in pictures:
            t0 = time.perf_counter()
            engine.score([pic])
            times.append(time.perf_counter() - t0)
    return {"photos_per_s": 1 / median(times), "median_s": median(times), "n": len(times)}


def end_to_end(spec, photos: list[Path], out: Path, **opts) -> dict:
    """One ``score_archive`` call on the JPEG files; photographs per second over the scoring (model loaded)."""
    from wdmt.archive import FileOptions, StreamOptions, score_archive

    files = FileOptions(overlay_size=opts.pop("overlay_size", 2048))
    s = score_archive(spec, photos, out, StreamOptions(files=files, progress=False, **opts))
    n = s["scored"]
    return {"photos_per_s": n / s["seconds"], "seconds": s["seconds"], "n": n, "failed": s["failed"],
            "stage_seconds_per_photo": {k: round(v / max(n, 1), 4) for k, v in s["stage_seconds"].items()},
            "scores": [r["score"] for r in s["rows"]]}


def peak_memory(photos_dir: Path, n: int, work: Path, run: str | None = None) -> dict:
    """Max RSS of a fresh process scoring ``n`` photographs end to end (default settings)."""
    code = ("import json, resource, sys, time; from wdmt.archive import EngineSpec, StreamOptions, score_archive; "
            "t = time.perf_counter(); "
            f"photos = sorted(__import__('pathlib').Path({str(photos_dir)!r}).glob('*.jpg'))[:{n}]; "
            f"s = score_archive(EngineSpec(run={run!r}), photos, {str(work / f'mem{n}')!r}, "
            "StreamOptions(progress=False)); "
            "print(json.dumps({'scored': s['scored'], 'seconds': time.perf_counter() - t, "
            "'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"n": n, **json.loads(p.stdout.strip().splitlines()[-1])}


def run(args: argparse.Namespace) -> dict:
    from wdmt.archive import EngineSpec
    from wdmt.runtime import cpu_name

    work = Path(args.work or tempfile.mkdtemp(prefix="wdmt-predict-speed-"))
    size = tuple(args.size) if args.size else FULL
    photos = make_photos(work / "photos", max([args.n, *args.memory]), size=size)
    spec = EngineSpec(run=args.run)
    res: dict = {"cpu": f"{cpu_name()}, {os.cpu_count()} logical CPUs",
                 "threads": __import__("torch").get_num_threads(), "photographs": args.n,
                 "photograph_size": list(size), "model": args.run or "shipped (fundus-v4)"}
    res["model_only"] = model_only(spec, photos[: args.n])
    res["streaming"] = end_to_end(spec, photos[: args.n], work / "stream")
    res["streaming_draft"] = end_to_end(spec, photos[: args.n], work / "draft", draft=True)
    res["serial"] = end_to_end(spec, photos[: args.n], work / "serial", workers=0, overlay_size=0)
    base = res["streaming"]["scores"]
    res["draft_score_change"] = _changes(base, res["streaming_draft"]["scores"])
    res["serial_score_max_diff"] = max(abs(a - b) for a, b in zip(base, res["serial"]["scores"], strict=True))
    res["ratios"] = {"streaming_over_model_only": res["streaming"]["photos_per_s"] / res["model_only"]["photos_per_s"],
                     "streaming_over_serial": res["streaming"]["photos_per_s"] / res["serial"]["photos_per_s"],
                     "draft_over_model_only": res["streaming_draft"]["photos_per_s"]
                     / res["model_only"]["photos_per_s"]}
    res["memory"] = [peak_memory(work / "photos", n, work, args.run) for n in args.memory]
    if len(res["memory"]) > 1:
        res["ratios"]["peak_memory_largest_over_smallest"] = res["memory"][-1]["max_rss_mb"] / res["memory"][0][
            "max_rss_mb"]
    return res


def _changes(base: list[float], other: list[float]) -> dict:
    rel = sorted(abs(b / a - 1) for a, b in zip(base, other, strict=True) if a > 0)
    return {"median_relative": median(rel), "max_relative": rel[-1],
            "max_absolute": max(abs(a - b) for a, b in zip(base, other, strict=True))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="photographs for the speed runs (default 20)")
    ap.add_argument("--memory", type=int, nargs="*", default=[20, 400], help="photograph counts for peak memory")
    ap.add_argument("--run", help="run directory (default: the shipped model)")
    ap.add_argument("--work", help="folder for the photographs and outputs (default: a new temporary folder)")
    ap.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="photograph size (default 4288 2848)")
    ap.add_argument("--save", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    res = run(args)
    for k in ("streaming", "streaming_draft", "serial"):
        res[k].pop("scores")
    text = json.dumps(res, indent=2)
    print(text)
    if args.save:
        from wdmt.atomic import write_text_atomic

        write_text_atomic(args.save, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
