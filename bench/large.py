"""500 containers on one host, run on demand: ``python -m bench.large`` (it is not part of
``make bench``: filling 500 takes about ten minutes a driver on this machine).

For the bridge and Kuryr (Kuryr IPAM; ``--docker-ipam 1`` adds Docker IPAM), the start
latency of ``docker run --rm`` on a network holding 10 and then ``--containers`` running
containers (bench.scenarios.scale), and, while the last step's containers still run, the
memory of the host's processes by role: the Kuryr daemon (RSS now and its peak), dockerd,
containerd, the shims and the containers. Each network is a /22: a /23 holds make bench's
200 containers, not 500 and a pool beside them.

The figures go to docs/benchmarks.json (its ``large`` key, which make bench carries over),
its section of docs/benchmarks.md and the lines of the goals' section they give; the rest of
both stays as it is."""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import (
    dockercli,
    goals_report,
    machine,
    mhmemory,
    multihost_report,
    phase_cli,
    procs,
    scenarios,
)
from bench.drivers import BRIDGE, KURYR, KURYR_DOCKER_IPAM, Driver
from bench.large_report import HEADING, section
from bench.markdown import splice_section
from bench.ourdaemon import OurDaemon
from kuryr.stack.layout import Layout

NAME = "large"
CONTAINERD_PIDFILE = Path("/var/run/docker/containerd/containerd.pid")
CONTAINERD_SOCKET = "/var/run/docker/containerd/containerd.sock"
# The sections a page without a "500 containers" one gets it before.
BEFORE = ("## Peak RSS of each daemon (VmHWM, after the scale phase)", "## How to reproduce")


@dataclasses.dataclass(frozen=True)
class Settings:
    containers: int = 500
    first: int = 10
    probes: int = 10
    fill_width: int = 8
    fill_budget_s: float = 2400.0
    docker_ipam: int = 0


def drivers(settings: Settings) -> list[Driver]:
    chosen = [BRIDGE, KURYR] + ([KURYR_DOCKER_IPAM] if settings.docker_ipam else [])
    return [dataclasses.replace(d, prefix_len=22) for d in chosen]


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields after it are plain.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def host_memory() -> dict[str, Any]:
    """The main host's processes by role (PSS and RSS summed), the Kuryr daemon's peak RSS."""
    kuryr = OurDaemon().pid()
    named = {
        "kuryr": kuryr,
        "dockerd": procs.read_pid(Layout.resolve(None).pidfile("dockerd")),
        "containerd": procs.read_pid(CONTAINERD_PIDFILE),
    }
    roles: dict[int, str] = {pid: role for role, pid in named.items() if pid is not None}
    everyone = _pids()
    shims = {
        pid
        for pid in everyone
        if procs.comm(pid).startswith("containerd-shim") and CONTAINERD_SOCKET in procs.argv(pid)
    }
    roles.update(dict.fromkeys(shims, "shim"))
    roles.update({pid: "container" for pid in everyone if _ppid(pid) in shims})
    rows = []
    for pid, role in roles.items():
        measured = procs.memory_kib(pid)
        if measured is not None:
            rows.append((role, *measured))
    return {
        "roles": mhmemory.by_role(rows),
        "kuryr_peak_rss_kib": procs.peak_rss_kib(kuryr) if kuryr else None,
    }


def _remove_networks(chosen: Sequence[Driver]) -> None:
    for driver in chosen:
        dockercli.docker("network", "rm", driver.network)


def measure(settings: Settings) -> dict[str, Any]:
    chosen = drivers(settings)
    begun = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "settings": dataclasses.asdict(settings),
        "machine": machine.describe(),
    }
    dockercli.cleanup()
    _remove_networks(chosen)
    try:
        for driver in chosen:
            command = driver.create_command(driver.network)
            assert command is not None
            made = dockercli.docker(*command)
            if not made.ok:
                return {**results, "error": f"{driver.key}: {made.error}"}
        results["scale"] = scenarios.scale(
            chosen,
            [settings.first, settings.containers],
            settings.probes,
            settings.fill_width,
            settings.fill_budget_s,
            at_top=lambda _driver: host_memory(),
        )
    finally:
        dockercli.cleanup()
        _remove_networks(chosen)
    results["duration_s"] = round(time.monotonic() - begun, 1)
    return results


def write(measured: dict[str, Any], docs: Path) -> None:
    """Into docs/benchmarks.json's ``large`` key and its section of docs/benchmarks.md."""
    results = multihost_report.previous_of(docs)
    results[NAME] = measured
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "benchmarks.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    page = docs / "benchmarks.md"
    markdown = page.read_text() if page.exists() else "# Benchmarks\n"
    markdown = splice_section(markdown, HEADING, section(results), BEFORE)
    goals = goals_report.section(results)
    if goals:
        # A page of before the goals' section gets it first, as make bench writes it.
        first = [line for line in markdown.split("\n") if line.startswith("## ")][:1]
        markdown = splice_section(markdown, goals_report.HEADING, goals, first)
    page.write_text(markdown)


def main(argv: Sequence[str] | None = None) -> int:
    args = phase_cli.parse_args(NAME, __doc__, Settings, argv)
    return phase_cli.main(NAME, args, Settings, measure, write)


if __name__ == "__main__":
    sys.exit(main())
