"""TCP throughput between containers for the multi-host phase: bench/tcpthroughput.py run in
the server container's network namespace as a sink, and in the client's as the sender, both
through ``nsenter`` like bench.mhprobe's probes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bench.mhprobe import in_netns
from kuryr.stack import proc

SCRIPT = Path(__file__).resolve().with_name("tcpthroughput.py")
PORT = 5201
SINK_STOP_S = 10.0
MB = 1_000_000


def _script(*args: str) -> list[str]:
    # -I: the script's directory (bench/) must not shadow the standard library.
    return [sys.executable, "-I", str(SCRIPT), *args]


class Sink:
    """The sink, listening in the network namespace of process ``pid`` while in the block."""

    def __init__(self, pid: int) -> None:
        self.argv = in_netns(pid, _script("sink", str(PORT)))
        self.child: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sink:
        self.child = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        # Its first line comes once it listens; an empty one means it exited.
        said = self.child.stdout.readline().strip() if self.child.stdout else ""
        if said != "listening":
            self.__exit__(None, None, None)
            raise RuntimeError(f"the throughput sink did not start: {' '.join(self.argv)}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.child is None:
            return
        proc.stop_child(self.child, timeout=SINK_STOP_S)
        if self.child.stdout is not None:
            self.child.stdout.close()


def transfer_s(pid: int, address: str, size: int) -> float | None:
    """Seconds to send ``size`` bytes from process ``pid``'s namespace to the sink at
    ``address`` (None: the transfer failed)."""
    done = subprocess.run(
        in_netns(pid, _script("send", address, str(PORT), str(size))),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tcpthroughput to {address} failed: {done.stderr.strip()[-300:]}")
    seconds: float | None = json.loads(done.stdout)
    return seconds


def rates_mb_s(size: int, seconds: Sequence[float | None]) -> list[float]:
    """MB/s (10^6 bytes) of each transfer that succeeded."""
    return [size / s / MB for s in seconds if s is not None and s > 0]
