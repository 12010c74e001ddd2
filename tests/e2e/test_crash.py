"""The daemon SIGKILLed at random moments while containers start and stop at once; after it is
back it heals by itself (kuryr.ops.healing): no ``kuryr gc``, nothing leaks, nothing in use is
lost.

Each round removes the previous round's survivors and starts CONTAINERS containers
concurrently, half of which are removed again at once, while a killer SIGKILLs the stack's
Kuryr daemon at a random moment and starts it again (dockerd retries a plugin it cannot
reach). The kills that hit a live daemon are counted (at least ROUNDS - 1), and containers
must have started and run. Then the host is polled, up to HEAL_BOUND seconds, until it is
clean: the test network's Kuryr ports are exactly the running containers' plus free pool
ports within the pool's max, no reservation is left, OVS holds the same set, no VIF of a gone
port and no stray veth. Every container is networked or failed with an error, and removing
the network leaves no network, subnet or subnetpool in Neutron.

Disruptive: kills the shared daemon; conftest runs this file after the other tests.
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest

from kuryr.domain.ports.port import Port
from kuryr.stack import lifecycle
from kuryr.stack.docker import Docker
from tests.conftest import StackFacts
from tests.e2e.daemon_kill import (
    Outcome,
    containers_removed,
    crash_rounds,
    names_on,
    running_on,
    start,
)
from tests.e2e.helpers import (
    PORT_OWNER,
    DockerEnv,
    Endpoint,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    eth0,
    run,
)
from tests.e2e.scenario import free_subnet

pytestmark = pytest.mark.stack

ROUNDS = 6
CONTAINERS = 16
# The README's bound for what a crash orphaned to be reclaimed after the daemon is back (the
# stack's daemon passes every 10 s with a grace of 20 s: about 35 s).
HEAL_BOUND = 120.0
POLL_SECONDS = 3.0
# The stack's daemon's [pool] max (kuryr.stack.daemon).
POOL_MAX = 40
# Outside the default pool (the network gets its own kuryrPool), and not in use: a run cut
# short may leave its network behind (a stale endpoint in dockerd's store blocks its removal).
CIDR_TEMPLATE, CIDR_CHOICES = "10.{}.0.0/20", range(224, 240)
HOST_IF = re.compile(r"^tap[0-9a-f]{11}$")


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


def leftovers(neutron: Neutron, network_id: str, live: dict[str, Endpoint]) -> list[str]:
    """What the host holds for the test network beyond its live endpoints and its pool within
    max (empty: clean)."""
    found: list[str] = []
    ports = neutron.find("ports", network_id=network_id, device_owner=PORT_OWNER)
    by_id = {p["id"]: p for p in ports}
    bound = {p["device_id"]: p for p in ports if p["device_id"]}
    wanted = {ep.endpoint_id for ep in live.values()}
    found += [
        f"port {p['id']} of gone endpoint {e[:12]}" for e, p in bound.items() if e not in wanted
    ]
    found += [f"endpoint {e[:12]} has no port naming it" for e in wanted - set(bound)]
    # A pool port is named so in its create (its pool tag follows a moment later).
    free = [p for p in ports if not p["device_id"] and Port.from_neutron(p).in_pool]
    found += [
        f"reservation {p['id']}"
        for p in ports
        if not p["device_id"] and not Port.from_neutron(p).in_pool
    ]
    if len(free) > POOL_MAX:
        found.append(f"{len(free)} free pool ports, max {POOL_MAX}")
    in_use = {bound[e]["id"] for e in wanted if e in bound} | {p["id"] for p in free}
    every_port = {p["id"] for p in neutron.find("ports", device_owner=PORT_OWNER)}
    for name, (iface_id, _) in kuryr_interfaces().items():
        if iface_id in by_id and iface_id not in in_use:
            found.append(f"OVS interface {name} of orphaned port {iface_id}")
        elif iface_id not in every_port:
            found.append(f"OVS interface {name} of deleted port {iface_id}")
    found += [f"stray veth {name}" for name in sorted(stray_veths())]
    return found


def test_sigkill_during_concurrent_starts_and_stops(stack: StackFacts, env: DockerEnv) -> None:
    env.prefix = f"rel-{secrets.token_hex(4)}"
    with containers_removed(f"{env.prefix}-"):
        crash_rounds_then_check(stack, env)


def crash_rounds_then_check(stack: StackFacts, env: DockerEnv) -> None:
    neutron = Neutron()
    cidr = free_subnet(neutron, CIDR_TEMPLATE, CIDR_CHOICES)
    net = env.network("--ipam-driver", "kuryr", "--subnet", cidr)
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    subnet_ids = {s["id"] for s in neutron.find("subnets", network_id=neutron_net["id"])}
    pools = {s["subnetpool_id"] for s in neutron.find("subnets", network_id=neutron_net["id"])}

    def starter(name: str, _round: int, i: int, outcome: Outcome) -> None:
        start(name, net, outcome, remove=i % 2 == 1)

    outcome = crash_rounds(stack, f"{env.prefix}-", ROUNDS, CONTAINERS, starter, max_delay=6.0)

    # Not vacuous: the kills met a serving daemon, and containers started and ran between them.
    assert outcome.kills >= ROUNDS - 1, f"only {outcome.kills} kill(s) hit a live daemon"
    assert len(outcome.started) >= ROUNDS * CONTAINERS // 4, (
        f"{len(outcome.started)} of {ROUNDS * CONTAINERS} containers started: {outcome.failed}"
    )
    running = running_on(f"{env.prefix}-")
    assert running, "no container of the last round is running"
    endpoints = {name: endpoint(name, net) for name in running}
    for name, ep in endpoints.items():
        assert ep.ipv4 in eth0(name).addresses, f"{name} runs without its address"

    # No `kuryr gc`: the daemon reclaims by itself within the bound.
    deadline = time.monotonic() + HEAL_BOUND
    while found := leftovers(neutron, neutron_net["id"], endpoints):
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    assert found == [], f"left {HEAL_BOUND:.0f} s after the daemon was back: {found}"
    assert running_on(f"{env.prefix}-") == running, "a container stopped while the host healed"

    ports = neutron.find("ports", network_id=neutron_net["id"], device_owner=PORT_OWNER)
    bound = {p["device_id"]: p for p in ports if p["device_id"]}
    for name, ep in endpoints.items():
        port = bound[ep.endpoint_id]
        assert {f["ip_address"] for f in port["fixed_ips"]} == {ep.ipv4}, name
        assert {f["subnet_id"] for f in port["fixed_ips"]} <= subnet_ids
        assert ep.ipv4 in eth0(name).addresses, name
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
