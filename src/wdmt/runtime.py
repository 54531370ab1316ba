"""The process around the models: float settings, the device, seeds, autocast, and what a run records of itself.

A U-Net whose skips carry the signal (``unet``, and WDMT-Net before its skips close) lets deep activations and
gradients shrink into subnormal floats, which x86 CPUs handle in microcode, many times slower (measured in
docs/performance.md, Training throughput). Flushing subnormals to zero costs nothing in accuracy at these magnitudes
(< 1.2e-38).

The flag is per thread, and torch's worker threads only honour it when it is set before torch runs its first
parallel op (measured: a later flag left the slow forward pass as slow). So the modules that compute with torch
(``wdmt.train``, ``wdmt.evaluate``) set it when they are imported: import wdmt before doing torch work. Torch itself
is imported inside the functions, so that importing this module costs nothing on the torch-free ONNX path.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_state: bool | None = None


def flush_denormals() -> bool:
    """Turn on flush-to-zero for this process (idempotent); False on CPUs without the control (non-x86)."""
    global _state
    if _state is None:
        import torch

        _state = bool(torch.set_flush_denormal(True))
    return _state


def pick_device(name: str = "auto") -> Any:
    """``auto``: CUDA, then Apple's MPS, then the CPU; anything else is a torch device string."""
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(model: Any, device: Any, channels_last: bool) -> Any:
    """Move a model to ``device``, in NHWC layout where asked (faster convolutions on CPU and GPU)."""
    import torch

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def seed_everything(seed: int) -> Any:
    """Seed torch (all devices) and numpy; return the generator that drives shuffling and augmentation."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def autocast_factory(device: Any, amp: bool, cpu_bf16: bool = False) -> Callable[[], Any]:
    """A zero-argument context factory: bf16 autocast on CUDA (``amp``, where supported) or on the CPU (``cpu_bf16``),
    a no-op otherwise. A factory, not a context, because each training step enters it afresh."""
    import torch

    if amp and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and device.type == "cpu":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


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


# The widest matrix or vector unit, named beside the model name: "AMD EPYC" alone covers CPUs 3x apart in training
# speed here (AVX2 only, or AVX-512 with bf16), and AMX is what makes --cpu-bf16 pay on a Xeon.
_CPU_UNITS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 bf16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def cpu_name() -> str:
    """The CPU's model name and its widest matrix or vector unit, to print beside every speed."""
    name, flags = "", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    unit = next((label for flag, label in _CPU_UNITS if flag in flags), None)
    name = name or platform.processor() or platform.machine()
    return f"{name} ({unit})" if unit else name


def environment(device: Any, seed: int) -> dict[str, Any]:
    """What a run records beside its config so that it can be reproduced: seed, versions, device, threads, source."""
    import numpy as np
    import PIL
    import skimage
    import torch

    from wdmt import __version__

    return {
        "wdmt": __version__, "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "pillow": PIL.__version__, "scikit-image": skimage.__version__, "platform": platform.platform(),
        "device": str(device), "cpu": cpu_name(), "threads": torch.get_num_threads(), "seed": seed,
        "cuda": torch.version.cuda if device.type == "cuda" else None, "flush_denormal": flush_denormals(),
        "source": source_revision(),
    }
