"""Finding the stack's processes by their argv, against real mount namespaces (root)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from kuryr.stack import proc


@pytest.fixture
def sleepers() -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """Two processes with one marker in their argv: one here, one in a new mount namespace
    (as a simulated host's containerd runs the machine's paths in its own)."""
    marker = f"/tmp/kuryr-proc-test-{secrets.token_hex(4)}"
    # The marker is the shell's $0; the shell stays (a command follows sleep).
    script = ["sh", "-c", "sleep 300; :", marker]
    here = subprocess.Popen(script)
    elsewhere = subprocess.Popen(["unshare", "--mount", *script])

    def started() -> bool:
        # unshare's own argv holds the marker too; only once it has exec'd sh is the process
        # in its new mount namespace.
        return all(proc.cmdline(child.pid).startswith("sh ") for child in (here, elsewhere))

    try:
        assert proc.wait_for(started, 10), "sleepers did not start"
        yield marker, here, elsewhere
    finally:
        for child in (here, elsewhere):
            child.kill()
            child.wait()


def test_find_skips_processes_of_other_mount_namespaces(
    sleepers: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    marker, here, elsewhere = sleepers
    assert elsewhere.poll() is None and marker in proc.cmdline(elsewhere.pid)
    assert proc.find(marker) == [here.pid]
