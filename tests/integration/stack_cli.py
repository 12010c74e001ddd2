"""``kuryr stack ...`` as a user runs it, in a process of its own (the stack tests)."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuryr.cli", "stack", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
