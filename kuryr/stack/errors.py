"""The one error the stack raises: a one-line reason plus the failing component's log."""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """A component could not be brought up or down. ``log`` is the file worth reading."""

    def __init__(self, component: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason
        self.log = log
