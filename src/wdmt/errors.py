"""The one exception type users see: every failure names the file and the reason."""

from __future__ import annotations

from pathlib import Path


class WdmtError(Exception):
    """A problem with user input (a file, a folder, a config), reported as one line.

    Args:
        path: the file or folder at fault, or None when no single file is to blame.
        reason: what is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)
