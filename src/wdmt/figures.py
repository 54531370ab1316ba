"""matplotlib without a display, and figures written atomically: the one place wdmt touches the backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wdmt.atomic import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (headless machines, CI), imported only when a picture is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """Save and close ``fig``; a killed run never leaves half a PNG where a finished one was."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    pyplot().close(fig)
    return Path(path)
