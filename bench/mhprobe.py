"""Probes sent from inside a container's network namespace (``nsenter -t PID -n``): the
machine's iputils ping, whose ``-D`` stamps each reply with the wall clock, and
bench/tcpconnect.py. The container's own busybox has neither the stamps nor a clock fine
enough, and ``docker exec`` would add its own start-up to every probe."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

TCPCONNECT = Path(__file__).resolve().with_name("tcpconnect.py")
# A reply line of ``ping -D -n``: "[1733405000.123456] 64 bytes from 10.0.0.5: ... time=0.51 ms".
_REPLY = re.compile(r"^\[(?P<at>\d+(?:\.\d+)?)\] \d+ bytes from .* time=(?P<ms>\d+(?:\.\d+)?) ms")
# How often the readiness probe sends while it waits for the first reply.
READY_INTERVAL_S = 0.01


def in_netns(pid: int, argv: list[str]) -> list[str]:
    return ["nsenter", "-t", str(pid), "-n", *argv]


def parse_reply(line: str) -> tuple[float, float] | None:
    """(wall-clock time the reply arrived, its RTT in ms) of a ``ping -D -n`` reply line."""
    match = _REPLY.match(line.strip())
    if match is None:
        return None
    return float(match["at"]), float(match["ms"])


def replies(output: str) -> list[tuple[float, float]]:
    return [r for r in (parse_reply(line) for line in output.splitlines()) if r is not None]


def rtts_ms(pid: int, address: str, count: int, interval_s: float) -> list[float]:
    """The RTT of each of ``count`` echo requests to ``address`` that got a reply."""
    argv = ["ping", "-D", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", "2", address]
    done = subprocess.run(
        in_netns(pid, argv),
        capture_output=True,
        text=True,
        timeout=count * interval_s + 30,
        check=False,
    )
    return [ms for _, ms in replies(done.stdout)]


def first_reply(pid: int, address: str, limit_s: float) -> float | None:
    """When the first echo reply from ``address`` arrived (wall clock), sending every
    READY_INTERVAL_S for at most ``limit_s``; None when none came. With a deadline (``-w``),
    ``-c 1`` makes ping stop at its first reply rather than after its first request; a ping
    that gave up early (an ICMP error) is started again while time is left."""
    deadline = time.monotonic() + limit_s
    while (left := deadline - time.monotonic()) > 0:
        argv = [
            "ping", "-D", "-n", "-c", "1", "-i", f"{READY_INTERVAL_S:g}",
            "-w", str(max(1, math.ceil(left))), address,
        ]  # fmt: skip
        done = subprocess.run(
            in_netns(pid, argv), capture_output=True, text=True, timeout=left + 10, check=False
        )
        found = replies(done.stdout)
        if found:
            return found[0][0]
    return None


def connects_ms(pid: int, address: str, port: int, count: int) -> list[float | None]:
    """Each of ``count`` TCP connects to ``address:port``, in ms (None: it failed)."""
    # -I: the script's directory (bench/) must not shadow the standard library.
    argv = [sys.executable, "-I", str(TCPCONNECT), address, str(port), str(count)]
    done = subprocess.run(
        in_netns(pid, argv), capture_output=True, text=True, timeout=count * 3 + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"tcpconnect to {address}:{port} failed: {done.stderr.strip()[-300:]}")
    measured: list[float | None] = json.loads(done.stdout)
    return measured
