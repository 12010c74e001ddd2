"""The counting phase: Neutron requests per network create/rm and container start/stop,
per driver, seen by the counting proxy (bench.proxy) that each daemon is pointed at."""

from __future__ import annotations

import socket
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.calls import Call, count_window, last_arrival, parse_log
from bench.dockercli import IMAGE, PREFIX, Outcome, docker
from bench.drivers import Driver

# A daemon is quiet once it made no call for this long after the command returned.
QUIET_GAP_S = 2.0
QUIET_MAX_S = 15.0
PROXY_MARKER = "bench.proxy"
PROXY_PORTS = {"kuryrlib": 19696, "kuryr": 19697}


@dataclass(frozen=True)
class Proxy:
    log: Path
    pidfile: Path
    upstream: str

    def endpoint(self, who: str) -> str:
        return f"http://127.0.0.1:{PROXY_PORTS[who]}"

    def start(self) -> None:
        self.stop()
        self.log.write_text("")
        argv = [
            sys.executable,
            "-m",
            "bench.proxy",
            "--upstream",
            self.upstream,
            "--log",
            str(self.log),
        ]
        for who, port in PROXY_PORTS.items():
            argv += ["--listen", f"{who}=127.0.0.1:{port}"]
        pid = procs.spawn(argv, self.log.with_suffix(".out"), self.pidfile)
        if not procs.wait_for(lambda: _listening(PROXY_PORTS.values()) or not procs.alive(pid), 20):
            raise RuntimeError("the counting proxy did not start")

    def stop(self) -> None:
        procs.stop_pidfile(self.pidfile, PROXY_MARKER)

    def calls(self) -> list[Call]:
        with open(self.log) as lines:
            return list(parse_log(lines))


def _listening(ports: Iterable[int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


def _settle(proxy: Proxy, who: str, returned: float) -> float:
    """Wait until ``who`` has been quiet for QUIET_GAP_S; returns that moment."""
    deadline = returned + QUIET_MAX_S
    while True:
        now = time.time()
        last = last_arrival(proxy.calls(), who) or 0.0
        if now - max(last, returned) >= QUIET_GAP_S or now >= deadline:
            return now
        time.sleep(0.25)


def _measure(proxy: Proxy, who: str, outcome: Outcome) -> dict[str, Any]:
    quiet = _settle(proxy, who, outcome.returned)
    counted = count_window(proxy.calls(), who, outcome.started, outcome.returned, quiet)
    result = counted.as_dict()
    result["ok"] = outcome.ok
    if not outcome.ok:
        result["error"] = outcome.error
    return result


def count_driver(proxy: Proxy, driver: Driver, reps: int) -> dict[str, Any]:
    """Create a network, start and stop containers on it, run ``--rm`` ones, remove it."""
    who = driver.daemon
    if who is None or driver.create_args is None:
        raise ValueError(f"{driver.key} makes no Neutron calls")
    network = f"{PREFIX}cnt-{driver.key}"
    ops: dict[str, list[dict[str, Any]]] = {
        "network_create": [],
        "start": [],
        "stop": [],
        "run_rm": [],
        "network_rm": [],
    }
    command = driver.create_command(network, index=100)
    assert command is not None
    _settle(proxy, who, time.time())
    ops["network_create"].append(_measure(proxy, who, docker(*command)))
    for i in range(reps):
        name = f"{PREFIX}cnt-{driver.key}-{i}"
        started = docker("run", "-d", "--name", name, f"--net={network}", IMAGE, "sleep", "600")
        ops["start"].append(_measure(proxy, who, started))
        ops["stop"].append(_measure(proxy, who, docker("rm", "-f", name)))
    for _ in range(reps):
        ran = docker("run", "--rm", f"--net={network}", IMAGE, "true")
        ops["run_rm"].append(_measure(proxy, who, ran))
    ops["network_rm"].append(_measure(proxy, who, docker("network", "rm", network)))
    return {op: {"runs": runs, "median": _medians(runs)} for op, runs in ops.items()}


def _medians(runs: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    good = [r for r in runs if r["ok"]]
    if not good:
        return None
    return {key: statistics.median(r[key] for r in good) for key in ("sync", "async", "total")}
