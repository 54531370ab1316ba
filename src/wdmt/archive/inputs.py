"""What ``wdmt predict`` was asked to score: files, folders (recursive) and list files (``@list.txt``).

Every photograph gets a key, the path its output files mirror: the path relative to the current folder, or for a
photograph outside it the absolute path without its root. Keys are therefore stable from one run to the next (a
resumed run writes to the same names) and two folders holding the same file names never write over each other.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from wdmt.archive.outputs import MANIFEST
from wdmt.errors import WdmtError
from wdmt.io import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Photo:
    """One photograph to score: its absolute path (symbolic links kept) and the key its outputs are named by."""

    path: Path
    key: str


def _key(path: Path, cwd: Path) -> PurePath:
    try:
        return path.relative_to(cwd)
    except ValueError:
        return PurePath(*path.parts[1:])  # outside the current folder: the whole path, its root dropped


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _walk(folder: Path, skip: Path | None) -> Iterable[Path]:
    """Every image under ``folder`` in sorted order; hidden entries, ``skip`` (this run's output folder) and the
    output folders of other runs (they hold a ``predict.json``: their overlays are pictures too) left out."""
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or r / d != skip)
                         and not (r / d / MANIFEST).is_file())
        yield from (r / f for f in sorted(files) if _is_image(r / f))


def _list_file(lst: Path) -> list[Path]:
    """``@list.txt``: one path a line (blank lines and ``#`` comments skipped), relative to the list's folder."""
    if not lst.is_file():
        raise WdmtError(lst, "list file not found")
    try:
        lines = lst.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise WdmtError(lst, "list file is not UTF-8 text") from e
    return [lst.parent / s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def expand(args: Sequence[str | os.PathLike], skip: str | os.PathLike | None = None,
           cwd: str | os.PathLike | None = None) -> list[Photo]:
    """The photographs ``args`` name, in order, each once. A folder contributes every image under it (by
    extension); a file is taken as named, so that one that cannot be read is reported, not skipped silently."""
    here = Path(os.path.abspath(cwd or os.getcwd()))
    skip_dir = Path(os.path.abspath(skip)) if skip is not None else None
    paths: list[Path] = []
    for arg in args:
        a = str(arg)
        if a.startswith("@") and len(a) > 1:
            paths += _list_file(here / a[1:])
        elif (here / a).is_dir():
            found = list(_walk(here / a, skip_dir))
            if not found:
                raise WdmtError(a, f"no photographs in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
            paths += found
        else:
            paths.append(here / a)
    return _with_keys([Path(os.path.abspath(p)) for p in paths], here)


def _with_keys(paths: list[Path], cwd: Path) -> list[Photo]:
    """Drop repeats; a key two photographs would share (``x.jpg`` and ``x.png`` side by side) keeps its suffix."""
    unique = list(dict.fromkeys(paths))
    stems = [_key(p, cwd).with_suffix("").as_posix() for p in unique]
    clash = {s for s, n in Counter(stems).items() if n > 1}
    return [Photo(p, _key(p, cwd).as_posix() if s in clash else s) for p, s in zip(unique, stems, strict=True)]
