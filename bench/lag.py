"""Neutron bookkeeping lag: from ``docker run -d`` returning to Neutron listing the
container's port under its device_id (what anyone looking a container up in Neutron waits).

A thread polls Neutron for the network's ports every POLL_S and notes when each device_id
first shows up; a container's lag is that moment minus the moment its ``docker run``
returned (so the figure is late by at most one poll and one Neutron GET). Containers are
started one at a time (*single*: each waits for the previous one's port) and all at once
(*burst*), under each bookkeeping mode (the daemon restarted with ``[pool] bookkeeping``
changed, then put back)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import neutron
from bench.dockercli import IMAGE, PREFIX, Outcome, docker, remove_containers
from bench.drivers import Driver
from bench.machine import wait_idle
from bench.ourdaemon import OurDaemon
from bench.params import LAG_POLL_S as POLL_S
from bench.stats import Summary, percentile
from kuryr import naming

# A port not listed by then counts as missing: it is reported, not waited for.
SEEN_WITHIN_S = 30.0
MODES = ("deferred", "immediate")
LAG_SUBNET = 97


class DeviceWatch:
    """When each device_id first appeared on a Neutron network's ports."""

    def __init__(self, network_id: str) -> None:
        self.network_id = network_id
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        path = f"/v2.0/ports?network_id={self.network_id}&fields=device_id"
        while not self._stop.is_set():
            ports = neutron.call("GET", path)["ports"]
            now = time.time()
            for port in ports:
                if port["device_id"]:
                    self.seen.setdefault(port["device_id"], now)
            self._stop.wait(POLL_S)

    def wait_for(self, device_ids: Sequence[str], timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not all(d in self.seen for d in device_ids):
            time.sleep(POLL_S)

    @contextmanager
    def running(self) -> Iterator[DeviceWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=10)


def _endpoint_id(container: str, network: str) -> str:
    template = f'{{{{(index .NetworkSettings.Networks "{network}").EndpointID}}}}'
    return docker("inspect", "-f", template, container).stdout.strip()


def _start(name: str, network: str) -> Outcome:
    return docker("run", "-d", "--name", name, f"--net={network}", IMAGE, "sleep", "600")


def _at_once(names: Sequence[str], network: str) -> list[Outcome]:
    """Every start at the same moment, each with its own return time."""
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: _start(name, network), names))


def lag_of(returned: dict[str, float], seen: dict[str, float], errors: int) -> dict[str, Any]:
    """Lags of the device_ids ``returned`` maps to their ``docker run`` return times, by when
    ``seen`` says each first showed in Neutron; those never seen are counted as missing. A
    port Neutron listed before ``docker run`` returned kept nobody waiting: its lag is 0."""
    raw = [seen[d] - at for d, at in returned.items() if d in seen]
    samples = [max(0.0, lag) for lag in raw]
    return {
        "samples": samples,
        "summary": summarize(samples),
        "before_return": sum(1 for lag in raw if lag <= 0),
        "missing": len(returned) - len(samples),
        "errors": errors,
    }


def lags(watch: DeviceWatch, network: str, started: Sequence[Outcome]) -> dict[str, Any]:
    """Each started container's lag; containers that failed to start are errors."""
    ok = [o for o in started if o.ok]
    returned = {_endpoint_id(o.argv[4], network): o.returned for o in ok}
    watch.wait_for(list(returned), SEEN_WITHIN_S)
    return lag_of(returned, watch.seen, len(started) - len(ok))


def summarize(samples: Sequence[float]) -> dict[str, float | int] | None:
    if not samples:
        return None
    summary = Summary.of(samples).as_dict()
    summary["p99"] = percentile(samples, 0.99)
    return summary


def _measure_mode(network: str, network_id: str, single: int, burst: int) -> dict[str, Any]:
    # From an idle machine: the restarted daemon has refilled the network's pool.
    wait_idle()
    names = [f"{PREFIX}lag-s{i}" for i in range(single)]
    with DeviceWatch(network_id).running() as watch:
        started = []
        for name in names:
            started.append(_start(name, network))
            if started[-1].ok:
                watch.wait_for([_endpoint_id(name, network)], SEEN_WITHIN_S)
        result = {"single": lags(watch, network, started)}
        remove_containers(names)
        names = [f"{PREFIX}lag-b{i}" for i in range(burst)]
        result["burst"] = lags(watch, network, _at_once(names, network))
        remove_containers(names)
    return result


def measure(
    driver: Driver, ours: OurDaemon, single: int, burst: int, workdir: Path
) -> dict[str, Any]:
    """Lags per bookkeeping mode on a network of ``driver`` (a Kuryr one)."""
    launch = ours.launch()
    if launch is None:
        return {"error": "the Kuryr daemon is not running"}
    network = f"{PREFIX}lag"
    command = driver.create_command(network, LAG_SUBNET)
    if command is None:
        raise ValueError(f"{driver.key} has no network")
    made = docker(*command)
    if not made.ok:
        return {"error": f"no network: {made.error}"}
    results: dict[str, Any] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    pid = ours.pid()
    try:
        docker_id = docker("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()
        tags = naming.id_tag_filter(docker_id)
        network_id = neutron.call("GET", f"/v2.0/networks?tags={tags}")["networks"][0]["id"]
        for mode in MODES:
            pid = ours.restart_with(launch, {("pool", "bookkeeping"): mode}, workdir / "lag.conf")
            results[mode] = _measure_mode(network, network_id, single, burst)
            if ours.pid() != pid:
                results[mode] = {"error": "the Kuryr daemon was restarted by someone else"}
    finally:
        docker("network", "rm", network)
        # A daemon someone else restarted meanwhile already runs as usual: leave it.
        if ours.pid() in (None, pid):
            ours.restore(launch)
    return results
