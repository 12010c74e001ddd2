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

from bench import neutron, procs
from bench.calls import Call, count_window, last_arrival, parse_log
from bench.dockercli import IMAGE, PREFIX, Outcome, docker
from bench.drivers import Driver
from bench.params import PROXY_PORTS, QUIET_GAP_S, QUIET_MAX_S

PROXY_MARKER = "bench.proxy"
# The daemons that send each Docker request's id with the Neutron requests made for it
# (Kuryr's: kuryr.request_ids), so their sync calls are told by id (bench.calls); the stack's
# daemon runs this checkout. kuryr-libnetwork sends none: its calls are told by time.
MARKS_REQUESTS = frozenset({"kuryr"})
# Subnet indexes (Driver.subnet) of the counting networks: the containers' one, then one per
# counted network create/rm.
CONTAINERS_SUBNET = 99
FIRST_COUNTED_SUBNET = 100
OPERATIONS = (
    "network_create",
    "network_rm",
    "start",
    "stop",
    "run_rm",
    "start_pool_miss",
    "stop_pool_miss",
)


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
    counted = count_window(
        proxy.calls(),
        who,
        outcome.started,
        outcome.returned,
        quiet,
        marked=who in MARKS_REQUESTS,
    )
    result = counted.as_dict()
    result["ok"] = outcome.ok
    if not outcome.ok:
        result["error"] = outcome.error
    return result


def _create(driver: Driver, network: str, index: int) -> Outcome:
    command = driver.create_command(network, index)
    if command is None:
        raise ValueError(f"{driver.key} has no network to create")
    return docker(*command)


def _miss_addresses(driver: Driver, count: int) -> list[str]:
    """Addresses at the top of the containers' subnet that no port holds: a start asking
    for one finds no pool port with it (Kuryr's pool ports take addresses Neutron picks)."""
    hosts = list(driver.subnet(CONTAINERS_SUBNET).hosts())
    free = (str(a) for a in reversed(hosts) if not neutron.holds(str(a)))
    return [address for address, _ in zip(free, range(count), strict=False)]


def count_driver(proxy: Proxy, driver: Driver, reps: int) -> dict[str, Any]:
    """``reps`` times each: create and remove a network; start and stop a container; run a
    ``--rm`` one; and, for a pooling daemon, start and stop one whose address no pool port
    holds (the pool-miss case, counted apart from the pool hits of ``start``)."""
    who = driver.daemon
    if who is None:
        raise ValueError(f"{driver.key} makes no Neutron calls")
    ops: dict[str, list[dict[str, Any]]] = {op: [] for op in OPERATIONS}
    _settle(proxy, who, time.time())
    for rep in range(reps):
        name = f"{PREFIX}cnt-{driver.key}-n{rep}"
        made = _create(driver, name, FIRST_COUNTED_SUBNET + rep)
        ops["network_create"].append(_measure(proxy, who, made))
        if made.ok:
            ops["network_rm"].append(_measure(proxy, who, docker("network", "rm", name)))
    network = f"{PREFIX}cnt-{driver.key}"
    made = _create(driver, network, CONTAINERS_SUBNET)
    if not made.ok:
        return {"error": f"no network to count containers on: {made.error}"}
    _settle(proxy, who, time.time())
    for i in range(reps):
        name = f"{PREFIX}cnt-{driver.key}-{i}"
        started = docker("run", "-d", "--name", name, f"--net={network}", IMAGE, "sleep", "600")
        ops["start"].append(_measure(proxy, who, started))
        ops["stop"].append(_measure(proxy, who, docker("rm", "-f", name)))
    for _ in range(reps):
        ran = docker("run", "--rm", f"--net={network}", IMAGE, "true")
        ops["run_rm"].append(_measure(proxy, who, ran))
    if who == "kuryr":
        for i, address in enumerate(_miss_addresses(driver, reps)):
            name = f"{PREFIX}cnt-{driver.key}-miss{i}"
            argv = ["run", "-d", "--name", name, f"--net={network}", "--ip", address, IMAGE]
            ops["start_pool_miss"].append(_measure(proxy, who, docker(*argv, "sleep", "600")))
            ops["stop_pool_miss"].append(_measure(proxy, who, docker("rm", "-f", name)))
    docker("network", "rm", network)
    return {op: {"runs": runs, "median": _medians(runs)} for op, runs in ops.items() if runs}


def _medians(runs: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    good = [r for r in runs if r["ok"]]
    if not good:
        return None
    return {key: statistics.median(r[key] for r in good) for key in ("sync", "async", "total")}
