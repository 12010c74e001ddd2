"""The daemon SIGKILLed at random moments while 20 containers start and stop at once, 10
rounds; after restart and reconciliation nothing leaks and nothing in use is lost.

Each round removes the previous round's survivors and starts 20 containers concurrently,
half of which are removed again at once, while a killer SIGKILLs the stack's Kuryr daemon
at a random moment and starts it again (dockerd retries a plugin it cannot reach). Then
``kuryr gc --apply`` runs on the test's network and the host is checked: Kuryr ports there
are exactly the running containers' (pool ports aside), no reservation is left, OVS holds
the same set, no stray veth, every container is networked or failed with an error, and
removing the network leaves no network, subnet or subnetpool in Neutron.

Disruptive: kills the shared daemon; conftest runs this file after the other tests.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from kuryr.naming import is_pool_port
from kuryr.stack import lifecycle, proc
from kuryr.stack.daemon import MARKER, KuryrDaemon, executable
from kuryr.stack.docker import Docker
from tests.conftest import StackFacts, bring_up
from tests.e2e.helpers import (
    IMAGE,
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    eth0,
    run,
    settle,
)
from tests.e2e.scenario import free_subnet

pytestmark = pytest.mark.stack

ROUNDS = 10
CONTAINERS = 20
# Outside the default pool (the network gets its own kuryrPool), and not in use: a run cut
# short may leave its network behind (a stale endpoint in dockerd's store blocks its removal).
CIDR_TEMPLATE, CIDR_CHOICES = "10.{}.0.0/20", range(224, 240)
HOST_IF = re.compile(r"^tap[0-9a-f]{11}$")


@dataclass
class Outcome:
    """What `docker run` said for each container of the test."""

    failed: dict[str, str] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def journal_pending(stack: StackFacts) -> int:
    """Neutron writes the stack's daemon has journaled and not yet applied (-1: no answer)."""
    done = subprocess.run(
        [executable(), "--config-file", str(stack.layout.sub("kuryr.conf")), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return int(json.loads(done.stdout)["journal_pending"]) if done.returncode == 0 else -1


def kill_and_restart(stack: StackFacts, delay: float) -> None:
    time.sleep(delay)
    pid = proc.running(stack.layout.pidfile("kuryr"), MARKER)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        proc.wait_for(lambda: not proc.alive(pid), 10)
    time.sleep(random.uniform(0, 1.0))
    # Under the stack's lock: a concurrent `kuryr stack up` may be restarting it too.
    with lifecycle.locked(stack.layout):
        KuryrDaemon(stack.layout).start()


def start(name: str, net: str, outcome: Outcome, remove: bool) -> None:
    done = run(
        ["docker", "run", "-d", "--name", name, "--net", net, IMAGE, "sleep", "3600"],
        check=False,
    )
    with outcome.lock:
        if done.returncode == 0:
            outcome.started.add(name)
        else:
            outcome.failed[name] = done.stderr.strip()
    if remove:
        run(["docker", "rm", "-f", name], check=False)


def names_on(prefix: str) -> list[str]:
    out = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}")
    return [n for n in out.split() if n.startswith(prefix)]


def remove_network(net: str) -> bool:
    done = run(["docker", "network", "rm", net], check=False)
    assert done.returncode == 0 or "has active endpoints" in done.stderr, done.stderr
    return done.returncode == 0


def kuryr_interfaces() -> dict[str, tuple[str, str]]:
    """OVS interfaces Kuryr plugged: name -> (iface-id, endpoint id)."""
    out = run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"])
    found = {}
    for name, ext in json.loads(out.stdout)["data"]:
        ids = dict(ext[1])
        if "kuryr-endpoint" in ids:
            found[name] = (ids.get("iface-id", ""), ids["kuryr-endpoint"])
    return found


def stray_veths() -> set[str]:
    links = run(["ip", "-o", "link", "show", "type", "veth"]).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    on_ovs = set(run(["ovs-vsctl", "list-ports", "br-int"]).stdout.split())
    return {n for n in names if HOST_IF.match(n) and n not in on_ovs}


def test_sigkill_during_concurrent_starts_and_stops(stack: StackFacts, env: DockerEnv) -> None:
    env.prefix = f"rel-{secrets.token_hex(4)}"
    try:
        crash_rounds_then_check(stack, env)
    finally:
        # The rounds' containers are not the env's own: removed before its network goes.
        leftovers = names_on(f"{env.prefix}-")
        if leftovers:
            run(["docker", "rm", "-f", *leftovers], check=False)


def crash_rounds_then_check(stack: StackFacts, env: DockerEnv) -> None:
    neutron = Neutron()
    cidr = free_subnet(neutron, CIDR_TEMPLATE, CIDR_CHOICES)
    net = env.network("--ipam-driver", "kuryr", "--subnet", cidr)
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    subnet_ids = {s["id"] for s in neutron.find("subnets", network_id=neutron_net["id"])}
    pools = {s["subnetpool_id"] for s in neutron.find("subnets", network_id=neutron_net["id"])}
    outcome = Outcome()
    workers = ThreadPoolExecutor(CONTAINERS + 1)
    try:
        for round_no in range(ROUNDS):
            survivors = names_on(f"{env.prefix}-")
            # The jobs are waited on for their exceptions only; their results are dropped.
            jobs: list[Future[object]] = [
                workers.submit(run, ["docker", "rm", "-f", *survivors], check=False)
            ]
            jobs += [
                workers.submit(
                    start, f"{env.prefix}-r{round_no}-{i}", net, outcome, remove=i % 2 == 1
                )
                for i in range(CONTAINERS)
            ]
            jobs.append(workers.submit(kill_and_restart, stack, random.uniform(0.2, 6.0)))
            for job in jobs:
                job.result(timeout=300)
    finally:
        workers.shutdown()
        bring_up(stack.layout)

    # What the restarted daemon owes Neutron (bookkeeping journaled before a SIGKILL) lands
    # first: gc judges Neutron as the daemon leaves it.
    assert settle(lambda: journal_pending(stack), 0, timeout=120) == 0
    gc = subprocess.run(
        [
            executable(),
            "--config-file",
            str(stack.layout.sub("kuryr.conf")),
            "gc",
            "--json",
            "--apply",
            "--grace",
            "0",
            "--network",
            neutron_net["id"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert gc.returncode == 0, gc.stdout + gc.stderr

    running = {
        name
        for name in names_on(f"{env.prefix}-")
        if docker("inspect", "-f", "{{.State.Running}}", name) == "true"
    }
    endpoints = {name: endpoint(name, net) for name in running}
    ports = neutron.find("ports", network_id=neutron_net["id"], device_owner="compute:kuryr")
    bound = {p["device_id"]: p for p in ports if p["device_id"]}
    unbound = {ep.endpoint_id[:12]: ep.ipv4 for ep in endpoints.values()}
    holders = {
        eid: [
            (p["id"], p["name"], p["device_id"][:12], p["tags"])
            for p in ports
            if ip in {f["ip_address"] for f in p["fixed_ips"]}
        ]
        for eid, ip in unbound.items()
        if not any(d.startswith(eid) for d in bound)
    }
    assert set(bound) == {ep.endpoint_id for ep in endpoints.values()}, (holders, gc.stdout)

    def reservations() -> list[str]:
        # A pool port is named so in its create (its pool tag follows a moment later).
        found = neutron.find("ports", network_id=neutron_net["id"], device_owner="compute:kuryr")
        return [p["id"] for p in found if not p["device_id"] and not is_pool_port(p)]

    nothing: list[str] = []
    assert settle(reservations, nothing) == []

    for name, ep in endpoints.items():
        port = bound[ep.endpoint_id]
        assert {f["ip_address"] for f in port["fixed_ips"]} == {ep.ipv4}, name
        assert {f["subnet_id"] for f in port["fixed_ips"]} <= subnet_ids
        assert ep.ipv4 in eth0(name).addresses, name
    by_id = {p["id"]: p for p in ports}
    plugged = {
        iface_id
        for iface_id, endpoint_id in kuryr_interfaces().values()
        if iface_id in by_id or endpoint_id in bound
    }
    # Free pool ports are plugged ahead of their containers (kuryr.prewire).
    ahead = {pid for pid in plugged if pid in by_id and not by_id[pid]["device_id"]}
    assert all(is_pool_port(by_id[pid]) for pid in ahead), ahead
    assert plugged - ahead == {bound[ep.endpoint_id]["id"] for ep in endpoints.values()}
    gone = {p for p, _ in kuryr_interfaces().values()} - {
        p["id"] for p in neutron.find("ports", device_owner="compute:kuryr")
    }
    assert gone == set(), f"OVS interfaces of deleted ports: {gone}"
    assert stray_veths() == set()
    for name in set(names_on(f"{env.prefix}-")) - running:
        state = docker("inspect", "-f", "{{.State.Status}} {{.State.Error}}", name)
        assert name in outcome.failed or state.split()[0] in ("created", "exited"), state
        assert name not in outcome.started or state.split()[0] == "exited", (name, state)
    for name, error in outcome.failed.items():
        assert error, f"{name}: docker run failed without an error message"

    docker("rm", "-f", *names_on(f"{env.prefix}-"))
    if not remove_network(net):
        # A DeleteEndpoint cut by the SIGKILL leaves a stale endpoint in dockerd's own
        # store (no container holds it, no CLI lists it); dockerd drops it when it restarts.
        with lifecycle.locked(stack.layout):
            Docker(stack.layout).stop()
            Docker(stack.layout).start()
        assert remove_network(net), "the network cannot be removed after a dockerd restart"
    neutron.wait_gone("networks", neutron_net["id"])
    assert neutron.find("subnets", network_id=neutron_net["id"]) == []
    for pool in pools:
        neutron.wait_gone("subnetpools", pool)
