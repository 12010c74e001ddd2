"""Neutron requests per container start and stop for the multi-host phase, counted for the
daemons of every host at once.

Each host's daemon is restarted with a copy of its config whose ``[neutron] endpoint`` is a
counting proxy (bench.proxy) of its own: the machine's on the machine's loopback, a simulated
host's inside that host's network namespace, forwarding through the host's Neutron relay as
its daemon does. The copies also turn periodic reconciliation off (``[reconcile] interval =
0``): its queries come every few seconds from every daemon whatever the containers do, so
with them the windows would count more calls the more daemons run. Afterwards each daemon is
started again as the stack runs it, and the proxies are stopped."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import neutron, procs
from bench.calls import Call, count_window, parse_log
from bench.dockercli import Outcome
from bench.mhhosts import Host
from bench.ourdaemon import Launch, OurDaemon, write_config_copy
from bench.params import QUIET_GAP_S, QUIET_MAX_S
from kuryr.stack import daemon, hostplan
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import SimHost
from kuryr.stack.layout import Layout
from kuryr.stack.simdocker import SimDaemon, in_host

REPO = Path(__file__).resolve().parent.parent
# The proxies' ports, one per host in the order of ``kuryr stack hosts``; apart from the
# single-host counting phase's (bench.params.PROXY_PORTS).
FIRST_PORT = 19701
START_S = 30.0
# /proc/PID/net/tcp's state of a listening socket.
TCP_LISTEN = "0A"


def counting_settings(endpoint: str) -> dict[tuple[str, str], str]:
    return {("neutron", "endpoint"): endpoint, ("reconcile", "interval"): "0"}


def listens(tcp_table: str, port: int) -> bool:
    """Whether /proc/PID/net/tcp (``tcp_table``) has a socket listening on ``port``."""
    for line in tcp_table.splitlines()[1:]:
        cells = line.split()
        if len(cells) > 3 and cells[3] == TCP_LISTEN and cells[1].endswith(f":{port:04X}"):
            return True
    return False


def _listening(pid: int, port: int) -> bool:
    try:
        return listens(Path(f"/proc/{pid}/net/tcp").read_text(), port)
    except OSError:
        return False


def settle(calls: Callable[[], list[Call]], since: float) -> float:
    """Wait until no daemon made a call for QUIET_GAP_S after ``since`` (at most QUIET_MAX_S
    after it); returns that moment."""
    deadline = since + QUIET_MAX_S
    while True:
        now = time.time()
        last = max((c.arrived for c in calls()), default=0.0)
        if now - max(last, since) >= QUIET_GAP_S or now >= deadline:
            return now
        time.sleep(0.25)


def window(
    calls: Iterable[Call], who: Sequence[str], outcome: Outcome, quiet: float
) -> dict[str, Any]:
    """The calls of each of ``who`` while ``outcome``'s command ran and until ``quiet``,
    summed over them, with each daemon's total. Every one of ``who`` is a Kuryr daemon of this
    checkout, which sends each Docker request's id: sync is told by id (bench.calls)."""
    listed = list(calls)
    counts = {
        w: count_window(listed, w, outcome.started, outcome.returned, quiet, marked=True)
        for w in who
    }
    kinds: dict[str, int] = {}
    for count in counts.values():
        for kind, n in (count.sync_kinds + count.background_kinds).items():
            kinds[kind] = kinds.get(kind, 0) + n
    return {
        "ok": outcome.ok,
        "sync": sum(c.sync for c in counts.values()),
        "async": sum(c.background for c in counts.values()),
        "total": sum(c.total for c in counts.values()),
        "http_errors": sum(c.errors for c in counts.values()),
        "by_host": {w: c.total for w, c in counts.items()},
        "kinds": dict(sorted(kinds.items())),
    }


def summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The medians of the windows (``window``) whose command succeeded, and every window."""
    good = [r for r in runs if r["ok"]]
    if not good:
        return {"runs": list(runs), "median": None}
    hosts = list(dict.fromkeys(h for r in good for h in r["by_host"]))
    median: dict[str, Any] = {
        k: statistics.median(r[k] for r in good) for k in ("sync", "async", "total")
    }
    median["by_host"] = {h: statistics.median(r["by_host"].get(h, 0) for r in good) for h in hosts}
    return {"runs": list(runs), "median": median, "failed": len(runs) - len(good)}


@dataclass
class Redirect:
    """One host's daemon while it runs through its proxy."""

    host: Host
    proxy_pid: int
    daemon_pid: int


class Counting:
    """The hosts' daemons running through counting proxies between ``start`` and ``restore``."""

    def __init__(self, hosts: Sequence[Host], workdir: Path) -> None:
        self.hosts = list(hosts)
        self.workdir = workdir
        self.log = workdir / "mh-neutron-calls.jsonl"
        self.layout = Layout.resolve(None)
        self.redirects: list[Redirect] = []
        self.proxies: list[int] = []
        self.main_launch: Launch | None = None

    def names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def calls(self) -> list[Call]:
        with open(self.log) as lines:
            return list(parse_log(lines))

    def measure(self, outcome: Outcome) -> dict[str, Any]:
        """The calls of every daemon from ``outcome``'s command until they were all quiet."""
        quiet = settle(self.calls, outcome.returned)
        return window(self.calls(), self.names(), outcome, quiet)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        for i, host in enumerate(self.hosts):
            endpoint = f"http://127.0.0.1:{FIRST_PORT + i}"
            proxy = self._proxy(host, FIRST_PORT + i)
            self.proxies.append(proxy)
            pid = self._main(endpoint) if host.main else self._sim(host, endpoint)
            self.redirects.append(Redirect(host, proxy, pid))

    def _proxy(self, host: Host, port: int) -> int:
        argv = [
            sys.executable, "-m", "bench.proxy", "--upstream", neutron.NEUTRON_URL,
            "--log", str(self.log), "--listen", f"{host.name}=127.0.0.1:{port}",
        ]  # fmt: skip
        if not host.main:
            argv = ["nsenter", f"--net={self._sim_host(host).netns_path}", *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        out = self.workdir / f"mh-proxy-{host.name}.out"
        pid = procs.spawn(argv, out, None, env)
        if not procs.wait_for(lambda: _listening(pid, port) or not procs.alive(pid), START_S):
            raise RuntimeError(f"the counting proxy of {host.name} did not listen; see {out}")
        if not procs.alive(pid):
            raise RuntimeError(f"the counting proxy of {host.name} exited; see {out}")
        return pid

    def _sim_host(self, host: Host) -> SimHost:
        return hostplan.host(self.layout.root, host.name)

    def _sim_daemon(self, host: Host) -> SimDaemon:
        """The host's daemon as the stack runs it (a simulated VM's has more config)."""
        return SimDaemon(self._sim_host(host))

    def _main(self, endpoint: str) -> int:
        ours = OurDaemon(self.layout)
        self.main_launch = ours.launch()
        if self.main_launch is None:
            raise RuntimeError("the machine's Kuryr daemon does not run")
        copy = self.workdir / "mh-kuryr-main.conf"
        return ours.restart_with(self.main_launch, counting_settings(endpoint), copy)

    def _sim(self, host: Host, endpoint: str) -> int:
        sim = self._sim_host(host)
        copy = self.workdir / f"mh-kuryr-{host.name}.conf"
        write_config_copy(sim.config, counting_settings(endpoint), copy)
        self._sim_daemon(host).stop()
        argv = [daemon.executable(), "--config-file", str(copy), "serve"]
        pid = procs.spawn(in_host(sim, argv), sim.log("kuryr"), None)
        ready = procs.wait_for(lambda: daemon.activates(sim.plugin_sock)[0], START_S)
        if not ready or not procs.alive(pid):
            # Not left to answer on the socket beside the stack's daemon that restore starts.
            procs.terminate(pid)
            raise RuntimeError(f"the Kuryr daemon of {host.name} did not start through its proxy")
        return pid

    def disturbed(self) -> list[str]:
        """Daemons that no longer run through their proxy (someone restarted them)."""
        return [r.host.name for r in self.redirects if not procs.alive(r.daemon_pid)]

    def restore(self) -> list[str]:
        """Every daemon back as the stack runs it, the proxies stopped; what failed."""
        notes = []
        for redirect in self.redirects:
            procs.terminate(redirect.daemon_pid)
        if self.main_launch is not None:
            try:
                OurDaemon(self.layout).restore(self.main_launch)
            except RuntimeError as exc:
                notes.append(f"the machine's daemon: {exc}")
        for host in self.hosts:
            if host.main:
                continue
            try:
                self._sim_daemon(host).start()
            except StackError as exc:
                notes.append(f"{host.name}'s daemon: {exc.reason}")
        for pid in self.proxies:
            procs.terminate(pid)
        return notes
