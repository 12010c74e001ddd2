"""What the figures were measured on: hardware, kernel, and the versions of every piece."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from bench.params import IDLE_FRACTION, IDLE_LIMIT_S, IDLE_WINDOW_S


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "unknown"


def _deb_version(package: str) -> str:
    return _first_line(["dpkg-query", "-W", "-f", "${Version}", package])


def describe() -> dict[str, object]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _os_release(),
    }


def versions(repo: Path) -> dict[str, str]:
    return {
        "kuryr_commit": _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        "neutron_server": _deb_version("neutron-server"),
        "openvswitch": _deb_version("openvswitch-switch"),
        "ovn": _deb_version("ovn-host"),
        "python": platform.python_version(),
    }


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def wait_idle(
    min_idle: float = IDLE_FRACTION, window: float = IDLE_WINDOW_S, limit: float = IDLE_LIMIT_S
) -> float:
    """Wait until the CPUs were at least ``min_idle`` idle over one ``window`` (every
    daemon's background work after a burst is done), at most ``limit`` seconds; returns
    the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        idle0, total0 = _cpu_times()
        time.sleep(window)
        idle1, total1 = _cpu_times()
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) >= min_idle:
            break
    return time.monotonic() - started
