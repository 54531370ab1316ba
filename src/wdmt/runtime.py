"""Process-wide CPU float settings that training and inference depend on for speed.

A U-Net whose skips carry the signal (``unet``, and WDMT-Net before its skips close) lets deep activations and
gradients shrink into subnormal floats. x86 CPUs handle those in microcode: one IDRiD epoch of ``unet`` went from
30 s to 68 s on an idle machine, and a forward pass of the trained model from 0.39 s to 8.0 s (2 threads, batch 8 x 256^2). Flushing
subnormals to zero costs nothing in accuracy at these magnitudes (< 1.2e-38).

The flag is per thread, and measured here, torch's worker threads only honour it when it is set before torch runs
its first parallel op (the same forward pass stays at 7.8 s when the flag comes later). So the modules that compute
with torch (``wdmt.train``, ``wdmt.evaluate``) set it when they are imported: import wdmt before doing torch work.
"""

from __future__ import annotations

_state: bool | None = None


def flush_denormals() -> bool:
    """Turn on flush-to-zero for this process (idempotent); False on CPUs without the control (non-x86)."""
    global _state
    if _state is None:
        import torch

        _state = bool(torch.set_flush_denormal(True))
    return _state
