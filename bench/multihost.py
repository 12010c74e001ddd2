"""The multi-host phase of ``make bench``, also run alone as ``python -m bench.multihost``
(which writes its figures into docs/benchmarks.json and the "Several hosts" section of
docs/benchmarks.md, leaving the rest of both as they are).

On the hosts of ``kuryr stack up --hosts 3``: the machine's own host and h2, each with its
own dockerd and Kuryr daemon, on one Neutron network that spans them (the machine's host
creates the Docker network and Kuryr the Neutron network; h2 adopts it with
``-o neutron.net.uuid``). Measured:

- how long ``kuryr stack`` takes to add the simulated hosts to a single-host stack and to
  remove them, only when no simulated host runs: the phase then adds them and removes them
  again at the end. Hosts someone else brought up are used as they are and left up;
- ``docker run -d`` on h2 against the machine's host, interleaved;
- from ``docker run -d`` returning until a container on the machine's host first gets a
  ping reply from the new container, on h2 (across hosts) and on the machine's host;
- ping RTT, TCP connect time and TCP throughput across the hosts and within the machine's
  host, with Docker's bridge (two containers on one user-defined bridge network of the
  machine's host) as the same-host reference;
- ``docker run --rm`` on h2, idle and then while the machine's host holds many running
  containers (200 by default) on the network that spans both;
- the memory of h2's processes;
- Neutron requests per container start and stop on the machine's host, counted for the
  daemons of all three hosts (bench.mhcount), on a network only the machine's host has and
  again once h2 and h3 have adopted it.

Everything it makes is named ``mhbench-`` and removed at the end: containers and the Docker
networks on every host, and so the Neutron networks Kuryr made for them."""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import sys
import time
import urllib.error
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import (
    machine,
    mhcount,
    mhhosts,
    mhload,
    mhmemory,
    mhprobe,
    mhthroughput,
    multihost_report,
    neutron,
    phase_cli,
)
from bench.dockercli import IMAGE, Outcome
from bench.mhhosts import Host
from bench.stats import Summary
from kuryr import config, naming
from kuryr.stack import hostplan
from kuryr.stack.layout import Layout

REPO = Path(__file__).resolve().parent.parent
PREFIX = "mhbench-"
# Each run's networks have names of their own: a network dockerd will not remove (it can
# keep an endpoint of a removed container) must not stop the next run from making its own.
RUN = secrets.token_hex(3)
NETWORK = f"{PREFIX}net-{RUN}"
BRIDGE = f"{PREFIX}bridge-{RUN}"
COUNTED = f"{PREFIX}cnt-{RUN}"
WORKDIR = REPO / "bench" / "results" / "multihost"
# Asked for when no simulated host runs: the stack of the README's multi-host example.
HOSTS = 3
REMOTE = "h2"
# Outside Kuryr's default pools (10.10/16) and the ranges of the other phases and the tests.
# The spanned network is a /22: it holds the load containers besides the pools' ports.
CIDR_BLOCK = "10.238"
COUNTED_BLOCK = "10.237"
CIDR_TRIES = 3
SLEEPER = ("sleep", "600")
SERVER = (
    "sh",
    "-c",
    "mkdir -p /www && echo mhbench > /www/index.html && exec httpd -f -p 80 -h /www",
)
HTTP_PORT = 80
# Left out of the time budget for the cleanup: removals on every host, Neutron's last
# deletes, and taking the hosts away when the phase added them.
RESERVE_S = 90.0
NEUTRON_GONE_S = 60.0
# At most this long waited for the machine to be idle before the first start.
SETTLE_LIMIT_S = 45.0
MAX_ERRORS = 3


@dataclass(frozen=True)
class Settings:
    starts: int = 20
    warmup: int = 2
    ready: int = 10
    ready_limit_s: float = 15.0
    pings: int = 20
    ping_interval_s: float = 0.2
    connects: int = 20
    transfers: int = 7
    transfer_mib: int = 64
    load_containers: int = 200
    load_runs: int = 10
    load_warmup: int = 1
    fill_width: int = 8
    count_reps: int = 6
    budget_s: float = 900.0


@dataclass(frozen=True)
class Route:
    """From the network namespace of process ``client`` to the container at ``address``
    (whose namespace is process ``server``'s)."""

    client: int
    server: int
    address: str


@dataclass(frozen=True)
class Probe:
    """The Kuryr container on the machine's host readiness is probed from, and each route
    traffic is measured on: "remote" from it to a server on h2, "main" to a server beside
    it, "bridge" between two containers on a Docker bridge network of the machine's host."""

    pid: int
    routes: dict[str, Route]


def summarize(samples: Sequence[float]) -> dict[str, float | int] | None:
    return Summary.of(samples).as_dict() if samples else None


def timings(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    samples = [o.elapsed for o in outcomes if o.ok]
    errors = sorted({o.error for o in outcomes if not o.ok})
    return {
        "samples": samples,
        "summary": summarize(samples),
        "errors": len(outcomes) - len(samples),
        "error_examples": errors[:MAX_ERRORS],
    }


def ready_summary(
    samples: list[float], probe_after: list[float], errors: list[str]
) -> dict[str, Any]:
    return {
        "samples": samples,
        "summary": summarize(samples),
        # When the first request went out after `docker run` returned (finding the new
        # container's address): a reply cannot be timed earlier than that.
        "probe_after_s": summarize(probe_after),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:MAX_ERRORS],
    }


def gateway(cidr: str) -> str:
    return cidr.rsplit(".", 1)[0] + ".1"


def create_args(cidr: str) -> tuple[str, ...]:
    return ("-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", cidr, "--gateway", gateway(cidr))


def adopt_args(cidr: str, neutron_id: str) -> tuple[str, ...]:
    """A Docker network on another host on the Neutron network ``neutron_id``."""
    return (
        *create_args(cidr),
        "--ipam-opt", f"neutron.subnet.name=kuryr-subnet-{cidr}",
        "-o", f"neutron.net.uuid={neutron_id}",
    )  # fmt: skip


def spanned_cidr() -> str:
    return f"{CIDR_BLOCK}.{4 * (secrets.randbelow(62) + 1)}.0/22"


def counted_cidr() -> str:
    return f"{COUNTED_BLOCK}.{secrets.randbelow(250) + 1}.0/24"


def order(roles: Sequence[str], round_: int) -> list[str]:
    """Which host goes first alternates from round to round, so neither always follows the
    other's background work."""
    return list(roles) if round_ % 2 == 0 else list(reversed(roles))


def must(outcome: Outcome) -> Outcome:
    if not outcome.ok:
        raise RuntimeError(f"{' '.join(outcome.argv)}: {outcome.error}")
    return outcome


def named(hosts: Sequence[Host], name: str) -> Host | None:
    return next((h for h in hosts if h.name == name), None)


def wait_until(done: Callable[[], bool], limit_s: float, every_s: float = 1.0) -> bool:
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True


def neutron_has(path: str) -> bool:
    try:
        neutron.call("GET", path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def say(text: str) -> None:
    print(f"bench.multihost: {text}", flush=True)


class Phase:
    """One run of the phase: what it found, what it made (to remove it), what it measured."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.deadline = time.monotonic() + settings.budget_s
        self.results: dict[str, Any] = {}
        self.brought = False
        self.hosts: list[Host] = []
        # The Neutron network Kuryr made for each of the phase's Kuryr networks, and its CIDR.
        self.made: dict[str, tuple[str, str]] = {}

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline - RESERVE_S

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        r = self.results
        r.update(date=now(), parameters=asdict(self.s), load_before=load(), cores=os.cpu_count())
        r["kuryr_commit"] = machine.versions(REPO)["kuryr_commit"]
        try:
            main, remote = self._acquire()
            self._measure(main, remote)
        # Whatever failed, the cleanup below runs and the failure is reported: within
        # `make bench` the other phases' figures must still be written.
        except Exception as exc:
            r["error"] = f"{type(exc).__name__}: {exc}"
            say(f"failed: {r['error']}")
        finally:
            r["cleanup"] = self._cleanup()
            if self.brought:
                r.setdefault("lifecycle", {}).update(self._release())
        r["load_after"] = load()
        r["duration_s"] = round(time.monotonic() - began, 1)
        return r

    def _acquire(self) -> tuple[Host, Host]:
        self.hosts = mhhosts.describe()
        remote = named(self.hosts, REMOTE)
        if remote is None:
            if len(self.hosts) > 1:
                raise RuntimeError(f"simulated hosts run, but not {REMOTE}: left alone")
            self._bring_up()
            remote = named(self.hosts, REMOTE)
            if remote is None:
                raise RuntimeError(f"kuryr stack up --hosts {HOSTS} left no {REMOTE}")
        else:
            self.results["lifecycle"] = {
                "skipped": "the simulated hosts were already up: used as they were and left up"
            }
        self.results["hosts_brought_up"] = self.brought
        if not remote.answers():
            raise RuntimeError(f"the dockerd of {REMOTE} does not answer")
        # A run that died half-way left its containers and networks: they would be in the way.
        self._clear_docker()
        return next(h for h in self.hosts if h.main), remote

    def _bring_up(self) -> None:
        say(f"kuryr stack up --hosts {HOSTS} ...")
        # Set first: the hosts of an `up` that failed half-way are ours to remove too.
        self.brought = True
        up = mhhosts.kuryr("stack", "up", "--hosts", str(HOSTS))
        self.results["lifecycle"] = {"up": mhhosts.command_row(up)}
        self.hosts = mhhosts.describe()
        if not up.ok:
            raise RuntimeError(
                f"kuryr stack up --hosts {HOSTS} failed: {mhhosts.command_row(up)['error']}"
            )
        self.results["lifecycle"]["up"]["hosts_added"] = len(self.hosts) - 1

    def _release(self) -> dict[str, Any]:
        """Remove the hosts this phase added, then put the machine's daemon back on its
        single-host configuration: with simulated hosts it runs with TX checksum offload
        off, and only an ``up`` without them turns it on again."""
        say("kuryr stack down --hosts-only, kuryr stack up ...")
        down = mhhosts.kuryr("stack", "down", "--hosts-only")
        restore = mhhosts.kuryr("stack", "up")
        return {"down": mhhosts.command_row(down), "restore": mhhosts.command_row(restore)}

    def _measure(self, main: Host, remote: Host) -> None:
        r = self.results
        pair = {"main": main, "remote": remote}
        r["hosts"] = {role: host.name for role, host in pair.items()}
        r["daemons"] = daemon_configs()
        say("network across the hosts ...")
        r["network"] = self._span(main, remote)
        probe = self._fixtures(main, remote)
        # The new network's pools fill in the background (Neutron creates their ports):
        # the starts are measured once that is over, as a user's would be.
        r["settle_s"] = round(machine.wait_idle(limit=SETTLE_LIMIT_S), 1)
        say("docker run -d on each host ...")
        r["start"], r["rm"] = self._starts(pair)
        say("readiness across the hosts ...")
        r["readiness"] = self._readiness(pair, probe)
        say("ping, TCP connect and throughput ...")
        r["rtt_ms"] = self._rtts(probe)
        r["tcp_connect_ms"] = self._connects(probe)
        r["throughput_mb_s"] = self._throughput(probe)
        say(
            f"docker run --rm on {remote.name}, idle then beside {self.s.load_containers}"
            f" containers on {main.name} ..."
        )
        r["load"] = self._loaded(main, remote)
        r["memory"] = self._memory()
        say("Neutron requests per start and stop, on 1 host and on 3 ...")
        r["neutron_requests"] = self._counts(main)

    def _span(self, main: Host, remote: Host) -> dict[str, Any]:
        made = self._create_first(main, NETWORK, spanned_cidr)
        cidr, neutron_id = self.made[NETWORK]
        adopted = must(remote.docker("network", "create", *adopt_args(cidr, neutron_id), NETWORK))
        return {
            "name": NETWORK,
            "cidr": cidr,
            "neutron_network": neutron_id,
            "create_on_main_s": made.elapsed,
            "adopt_on_remote_s": adopted.elapsed,
        }

    def _create_first(self, main: Host, network: str, cidr_of: Callable[[], str]) -> Outcome:
        """The Docker network on the machine's host, Kuryr making its Neutron network (kept
        in ``self.made``); a CIDR someone else's subnetpool holds is tried again with
        another."""
        for _ in range(CIDR_TRIES):
            cidr = cidr_of()
            made = main.docker("network", "create", *create_args(cidr), network)
            if made.ok:
                self.made[network] = (cidr, neutron_of(main, network))
                return made
        raise RuntimeError(f"docker network create {network} on {main.name}: {made.error}")

    def _fixtures(self, main: Host, remote: Host) -> Probe:
        probe = f"{PREFIX}probe"
        must(main.docker("run", "-d", "--name", probe, "--net", NETWORK, IMAGE, *SLEEPER))
        client = main.pid_of(probe)
        routes = {}
        for role, host in (("main", main), ("remote", remote)):
            server = f"{PREFIX}srv-{role}"
            must(host.docker("run", "-d", "--name", server, "--net", NETWORK, IMAGE, *SERVER))
            routes[role] = Route(client, host.pid_of(server), host.address(server, NETWORK))
        must(main.docker("network", "create", BRIDGE))
        pair = {}
        for end, command in (("client", SLEEPER), ("server", SERVER)):
            name = f"{PREFIX}br-{end}"
            must(main.docker("run", "-d", "--name", name, "--net", BRIDGE, IMAGE, *command))
            pair[end] = name
        routes["bridge"] = Route(
            main.pid_of(pair["client"]),
            main.pid_of(pair["server"]),
            main.address(pair["server"], BRIDGE),
        )
        return Probe(client, routes)

    def _starts(self, pair: dict[str, Host]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``docker run -d`` on each host in turn, each container removed (timed too) before
        the next start, so every start finds its host as the previous one did."""
        started: dict[str, list[Outcome]] = {role: [] for role in pair}
        removed: dict[str, list[Outcome]] = {role: [] for role in pair}
        for round_ in range(self.s.warmup + self.s.starts):
            if not self.time_left():
                break
            for role in order(list(pair), round_):
                name = f"{PREFIX}st-{role}-{round_}"
                host = pair[role]
                run = host.docker("run", "-d", "--name", name, "--net", NETWORK, IMAGE, *SLEEPER)
                rm = host.docker("rm", "-f", name)
                if round_ >= self.s.warmup:
                    started[role].append(run)
                    if run.ok:
                        removed[role].append(rm)
        return (
            {role: timings(o) for role, o in started.items()},
            {role: timings(o) for role, o in removed.items()},
        )

    def _readiness(self, pair: dict[str, Host], probe: Probe) -> dict[str, Any]:
        found: dict[str, tuple[list[float], list[float], list[str]]] = {
            role: ([], [], []) for role in pair
        }
        for round_ in range(self.s.ready):
            if not self.time_left():
                break
            for role in order(list(pair), round_):
                self._ready_once(pair[role], f"{PREFIX}rdy-{role}-{round_}", probe, found[role])
        return {role: ready_summary(*lists) for role, lists in found.items()}

    def _ready_once(
        self,
        host: Host,
        name: str,
        probe: Probe,
        into: tuple[list[float], list[float], list[str]],
    ) -> None:
        samples, probe_after, errors = into
        run = host.docker("run", "-d", "--name", name, "--net", NETWORK, IMAGE, *SLEEPER)
        if not run.ok:
            errors.append(run.error)
            host.docker("rm", "-f", name)
            return
        try:
            address = host.address(name, NETWORK)
            probing = time.time()
            reply = mhprobe.first_reply(probe.pid, address, self.s.ready_limit_s)
        finally:
            host.docker("rm", "-f", name)
        if reply is None:
            errors.append(f"no ping reply within {self.s.ready_limit_s:g} s")
            return
        samples.append(max(0.0, reply - run.returned))
        probe_after.append(probing - run.returned)

    def _rtts(self, probe: Probe) -> dict[str, Any]:
        measured = {}
        for role, route in probe.routes.items():
            # One ping first: the figures are of a path whose neighbours are known.
            mhprobe.rtts_ms(route.client, route.address, 1, self.s.ping_interval_s)
            samples = mhprobe.rtts_ms(
                route.client, route.address, self.s.pings, self.s.ping_interval_s
            )
            measured[role] = {
                "samples": samples,
                "summary": summarize(samples),
                "lost": self.s.pings - len(samples),
            }
        return measured

    def _connects(self, probe: Probe) -> dict[str, Any]:
        measured = {}
        for role, route in probe.routes.items():
            each = mhprobe.connects_ms(route.client, route.address, HTTP_PORT, self.s.connects)
            samples = [ms for ms in each if ms is not None]
            measured[role] = {
                "samples": samples,
                "summary": summarize(samples),
                "failed": len(each) - len(samples),
            }
        return measured

    def _throughput(self, probe: Probe) -> dict[str, Any]:
        """``transfers`` transfers of ``transfer_mib`` MiB on each route after one unmeasured,
        the routes taking turns."""
        size = self.s.transfer_mib * 2**20
        took: dict[str, list[float | None]] = {role: [] for role in probe.routes}
        with ExitStack() as sinks:
            for route in probe.routes.values():
                sinks.enter_context(mhthroughput.Sink(route.server))
            for round_ in range(1 + self.s.transfers):
                if not self.time_left():
                    break
                for role in order(list(probe.routes), round_):
                    route = probe.routes[role]
                    seconds = mhthroughput.transfer_s(route.client, route.address, size)
                    if round_ > 0:
                        took[role].append(seconds)
        return {role: throughput_row(size, seconds) for role, seconds in took.items()}

    def _loaded(self, main: Host, remote: Host) -> dict[str, Any]:
        """``docker run --rm`` on ``remote``, idle, then once ``main`` holds
        ``load_containers`` more running containers on the spanned network."""
        result: dict[str, Any] = {"network": NETWORK, "holder": main.name}
        result["idle"] = timings(self._run_rms(remote))
        names = [f"{PREFIX}load-{i}" for i in range(self.s.load_containers)]
        began = time.monotonic()
        filled = mhload.fill(main, NETWORK, names, self.s.fill_width)
        result["fill"] = mhload.fill_row(names, filled, time.monotonic() - began)
        try:
            result["settle_s"] = round(machine.wait_idle(limit=SETTLE_LIMIT_S), 1)
            result["loaded"] = timings(self._run_rms(remote))
        finally:
            began = time.monotonic()
            emptied = mhload.empty(main, mhload.started(names, filled), self.s.fill_width)
            result["empty"] = {
                "seconds": round(time.monotonic() - began, 1),
                "errors": sum(not o.ok for o in emptied),
            }
        return result

    def _run_rms(self, host: Host) -> list[Outcome]:
        ran = [
            host.docker("run", "--rm", "--net", NETWORK, IMAGE, "true")
            for _ in range(self.s.load_warmup + self.s.load_runs)
        ]
        return ran[self.s.load_warmup :]

    def _counts(self, main: Host) -> dict[str, Any]:
        hosts = self.hosts[:HOSTS]
        if len(hosts) < HOSTS:
            return {"skipped": f"{len(hosts)} hosts run, {HOSTS} are needed"}
        counting = mhcount.Counting(hosts, WORKDIR)
        result: dict[str, Any] = {"hosts": counting.names(), "reps": self.s.count_reps}
        try:
            counting.start()
            result.update(self._count_spans(main, hosts, counting))
            result["disturbed"] = counting.disturbed()
        finally:
            say("putting the daemons back as the stack runs them ...")
            result["restore_notes"] = counting.restore()
        return result

    def _count_spans(
        self, main: Host, hosts: Sequence[Host], counting: mhcount.Counting
    ) -> dict[str, Any]:
        mhcount.settle(counting.calls, time.time())
        self._create_first(main, COUNTED, counted_cidr)
        cidr, neutron_id = self.made[COUNTED]
        mhcount.settle(counting.calls, time.time())
        one = self._count_ops(main, counting, "one")
        for host in hosts:
            if not host.main:
                must(host.docker("network", "create", *adopt_args(cidr, neutron_id), COUNTED))
        mhcount.settle(counting.calls, time.time())
        three = self._count_ops(main, counting, "three")
        return {"cidr": cidr, "one_host": one, "three_hosts": three}

    def _count_ops(self, main: Host, counting: mhcount.Counting, label: str) -> dict[str, Any]:
        """``count_reps`` times: a container started on ``main``, then removed, each counted
        from its command's start until every daemon was quiet."""
        runs: dict[str, list[dict[str, Any]]] = {"start": [], "stop": []}
        for i in range(self.s.count_reps):
            if not self.time_left():
                break
            name = f"{PREFIX}cnt-{label}-{i}"
            ran = main.docker("run", "-d", "--name", name, "--net", COUNTED, IMAGE, *SLEEPER)
            runs["start"].append(counting.measure(ran))
            runs["stop"].append(counting.measure(main.docker("rm", "-f", name)))
        return {op: mhcount.summary(done) for op, done in runs.items()}

    def _memory(self) -> dict[str, Any]:
        remote = named(mhhosts.describe(), REMOTE)
        if remote is None:
            raise RuntimeError(f"{REMOTE} vanished during the phase")
        return mhmemory.of_host(remote.pids)

    def _clear_docker(self) -> list[str]:
        """The phase's containers, then its Docker networks, on every host; the machine's
        host last, as it made the Neutron network: leaving last, its daemon deletes it."""
        ordered = sorted(self.hosts, key=lambda h: h.main)
        notes = [note for host in ordered for note in clear_containers(host)]
        return notes + [note for host in ordered for note in clear_networks(host)]

    def _cleanup(self) -> dict[str, Any]:
        say("cleanup ...")
        notes = self._clear_docker()
        try:
            for cidr, network_id in self.made.values():
                notes += neutron_gone(network_id, cidr)
        except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
            notes.append(f"Neutron could not be checked: {exc}")
        return {"ok": not notes, "notes": notes}


def neutron_of(host: Host, network: str) -> str:
    """The id of the Neutron network Kuryr made for ``host``'s Docker network ``network``."""
    docker_id = must(host.docker("network", "inspect", "-f", "{{.Id}}", network)).stdout
    tags = naming.id_tag_filter(docker_id.strip())
    found = neutron.call("GET", f"/v2.0/networks?tags={tags}")["networks"]
    if not found:
        raise RuntimeError(f"Neutron has no network tagged with {network}'s id")
    return str(found[0]["id"])


def neutron_gone(network_id: str, cidr: str) -> list[str]:
    notes = []
    if not wait_until(lambda: not neutron_has(f"/v2.0/networks/{network_id}"), NEUTRON_GONE_S):
        notes.append(
            f"Neutron network {network_id} was still there {NEUTRON_GONE_S:g} s after"
            " its Docker networks were removed: deleted by the bench"
        )
        notes += delete_network(network_id)
    pools = neutron.call("GET", f"/v2.0/subnetpools?name=kuryrPool-{cidr}")
    for pool in pools["subnetpools"]:
        notes.append(f"subnetpool kuryrPool-{cidr} was left: deleted by the bench")
        neutron.call("DELETE", f"/v2.0/subnetpools/{pool['id']}")
    return notes


def throughput_row(size: int, seconds: Sequence[float | None]) -> dict[str, Any]:
    rates = mhthroughput.rates_mb_s(size, seconds)
    return {"samples": rates, "summary": summarize(rates), "failed": len(seconds) - len(rates)}


def daemon_configs() -> dict[str, Any]:
    """The pool and binding settings of the two daemons measured, as they read them."""
    layout = Layout.resolve(None)
    paths = {"main": layout.sub("kuryr.conf"), "remote": hostplan.host(layout.root, REMOTE).config}
    configs = {}
    for role, path in paths.items():
        loaded = config.load(path)
        configs[role] = {
            "pool": asdict(loaded.pool),
            "tx_checksum_offload": loaded.binding.tx_checksum_offload,
        }
    return configs


def _listed(host: Host, prefix: str, *listing: str) -> list[str] | None:
    done = host.docker(*listing, "--filter", f"name={prefix}", "--format", "{{.Names}}")
    if not done.ok:
        return None
    return [n for n in done.stdout.split() if n.startswith(prefix)]


def clear_containers(host: Host, prefix: str = PREFIX) -> list[str]:
    names = _listed(host, prefix, "ps", "-a")
    if names is None:
        return [f"{host.name}: its containers could not be listed"]
    removed = host.docker("rm", "-f", *names) if names else None
    return [f"{host.name}: docker rm -f: {removed.error}"] if removed and not removed.ok else []


def clear_networks(host: Host, prefix: str = PREFIX) -> list[str]:
    listed = host.docker("network", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}")
    if not listed.ok:
        return [f"{host.name}: its networks could not be listed"]
    notes = []
    for name in (n for n in listed.stdout.split() if n.startswith(prefix)):
        removed = host.docker("network", "rm", name)
        if not removed.ok:
            notes.append(f"{host.name}: docker network rm {name}: {removed.error}")
    return notes


def delete_network(network_id: str) -> list[str]:
    """Kuryr's own ports on the network (what kept it), then the network."""
    notes = []
    ports = neutron.call("GET", f"/v2.0/ports?network_id={network_id}")["ports"]
    for port in ports:
        if port["device_owner"] in (naming.DEVICE_OWNER, naming.ANCHOR_OWNER):
            neutron.call("DELETE", f"/v2.0/ports/{port['id']}")
    try:
        neutron.call("DELETE", f"/v2.0/networks/{network_id}")
    except urllib.error.HTTPError as exc:
        notes.append(f"Neutron network {network_id} could not be deleted: HTTP {exc.code}")
    return notes


def measure(settings: Settings | None = None) -> dict[str, Any]:
    return Phase(settings or Settings()).run()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return phase_cli.parse_args("multihost", __doc__, Settings, argv)


def main(argv: Sequence[str] | None = None) -> int:
    return phase_cli.main("multihost", parse_args(argv), Settings, measure, multihost_report.write)


if __name__ == "__main__":
    sys.exit(main())
