"""What every stack component offers the orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Component(Protocol):
    name: str

    @property
    def log(self) -> Path: ...

    def start(self) -> None:
        """Bring the component up if it is not; raise StackError with a reason if it cannot."""

    def stop(self) -> None:
        """Stop by PID what start() started and remove what it created on the host."""

    def check(self) -> tuple[bool, str]:
        """Probe the component for real: (healthy, a short detail)."""

    def purge(self) -> None:
        """Drop data kept outside the stack directory (called after stop())."""
