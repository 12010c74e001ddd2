"""A simulated host dies: every process of h3 (its dockerd, containerd, shims and containers,
its Kuryr daemon, OVS and ovn-controller, its Neutron relay) gets SIGKILL. Containers on the
other hosts keep talking; ``kuryr stack up --hosts 3`` brings h3 back, its container with a
restart policy runs again and is reachable from both other hosts, and its daemon leaves it
one port.

A host gone for good (h4, made for the test, killed and never brought back): ``kuryr gc
--host h4`` on the machine's host refuses while Neutron reports its chassis alive, then, once
Neutron reports it dead, makes a dry run that changes nothing, and with ``--apply`` removes
its ports, the network only it used (with its CIDR's claim on the default pool), and leaves
the network the others share to them.

Disrupting for h3 (it runs among the tests that stop a component and restore it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from kuryr import naming
from kuryr.domain.ports.port import Port
from kuryr.stack import hostplan, hosts, lifecycle, ovn, proc
from kuryr.stack.daemon import executable
from tests.conftest import StackFacts
from tests.e2e.conftest import HOSTS
from tests.e2e.helpers import IMAGE, Neutron, side_by_side, wait_for
from tests.e2e.multihost import SERVER, Container, Host, HostsEnv, hosts_from, span
from tests.removals_wait import admin_status

pytestmark = pytest.mark.stack


@pytest.fixture
def mh_env() -> Iterator[HostsEnv]:
    env = HostsEnv()
    try:
        yield env
    finally:
        env.close()


def kill_host(stack: StackFacts, name: str) -> list[int]:
    """SIGKILL every process of the host at once; the PIDs, once all are gone."""
    pids = hosts.members(hostplan.host(stack.layout.root, name))
    assert len(pids) >= 8, f"{name} runs fewer processes than a host does: {pids}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(proc.alive(p) for p in pids), f"every process of {name} to die")
    return pids


def talk(a: Container, b: Container, network: str) -> list[str]:
    """What fails between a and b: ping both ways, and a download each way (md5 checked);
    the two ways side by side."""

    def one_way(client: Container, server: Container) -> list[str]:
        failed = []
        address = server.address(network, 4)
        if not client.pings(address):
            failed.append(f"ping {client.host.name}->{server.host.name}")
        if client.md5_from(address) != server.served_md5():
            failed.append(f"tcp {client.host.name}<-{server.host.name}")
        return failed

    there, back = side_by_side(lambda: one_way(a, b), lambda: one_way(b, a))
    return there + back


def h3_container_ports(neutron: Neutron, network_id: str) -> list[dict[str, object]]:
    ports = neutron.find(
        "ports",
        network_id=network_id,
        device_owner=naming.DEVICE_OWNER,
        **{"binding:host_id": "h3"},
    )
    return [p for p in ports if not Port.from_neutron(p).in_pool]


def test_a_dead_host_does_not_stop_the_others_and_comes_back(
    stack: StackFacts, sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    main, h2, h3 = sim_hosts
    net = span(mh_env, neutron, sim_hosts, dual_stack=False)
    name = net.docker_name
    on_main, on_h2 = mh_env.container(main, name), mh_env.container(h2, name)
    on_h3 = mh_env.container(h3, name, "--restart", "always")
    assert talk(on_main, on_h3, name) + talk(on_h2, on_h3, name) == []

    killed = kill_host(stack, "h3")
    assert talk(on_main, on_h2, name) == [], "main and h2 stopped talking when h3 died"
    # A plain up leaves the dead host (and its stale pidfiles) to status, and does not fail.
    plain = lifecycle.start(stack.layout)
    assert [h.name for h in plain if not h.healthy] == []

    report = lifecycle.start(stack.layout, HOSTS)
    assert [h for h in report if h.name == "h3" and not h.healthy] == []
    assert not set(killed) & set(hosts.members(hostplan.host(stack.layout.root, "h3")))
    wait_for(
        lambda: (
            h3.docker("inspect", "-f", "{{.State.Running}}", on_h3.name) == "true"
            and on_h3.address(name, 4)
        ),
        "h3's container to run again (restart policy)",
    )
    wait_for(lambda: talk(on_main, on_h3, name) == [], "main and h3 to talk again")
    assert talk(on_h2, on_h3, name) == []

    port = neutron.port_of_endpoint(on_h3.endpoint_id(name))
    assert port["binding:host_id"] == "h3"
    neutron.wait_active(port["id"])
    # What the crash left of the container's earlier endpoint is given back.
    wait_for(
        lambda: [p["id"] for p in h3_container_ports(neutron, net.network["id"])] == [port["id"]],
        "h3 to hold one container port on the network",
    )


GONE = "h4"
# Neutron reports a chassis dead once NB_Global.nb_cfg is 2 ahead of the chassis' and its last
# answer is agent_down_time (75 s, Neutron's default, which the stack keeps) old.
AGENT_DEAD_WITHIN = 120.0


@pytest.fixture
def gone_host(stack: StackFacts, sim_hosts: list[Host]) -> Iterator[Host]:
    """h4, up beside the session's hosts; taken away for good at teardown, dead or not."""
    report = lifecycle.start(stack.layout, HOSTS + 1)
    try:
        assert [h for h in report if h.name == GONE and not h.healthy] == []
        described = hosts_from(hosts.describe(stack.layout, stack.chassis_hostname))
        yield next(h for h in described if h.name == GONE)
    finally:
        with lifecycle.locked(stack.layout):
            errors = hosts.remove(stack.layout, hostplan.host(stack.layout.root, GONE))
        assert errors == [], f"removing {GONE}: {errors}"


def gc_host(stack: StackFacts, *extra: str) -> subprocess.CompletedProcess[str]:
    conf = str(stack.layout.sub("kuryr.conf"))
    argv = [executable(), "--config-file", conf, "gc", "--host", GONE, "--json", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def kuryr_ports_of(neutron: Neutron, host: str) -> set[str]:
    ports = neutron.find("ports", **{"binding:host_id": host})
    return {
        p["id"] for p in ports if p["device_owner"] in (naming.DEVICE_OWNER, naming.ANCHOR_OWNER)
    }


def pools_filled(host: Host) -> bool:
    """Every pool of the host's daemon holds its target and creates nothing: a new pool's first
    fill waits for a pause in Docker's requests, and its ports would land after a snapshot."""
    report = admin_status(host.admin_socket)
    least = report["pool_config"]["min"]
    return bool(report["pools"]) and all(
        p["creating"] == 0 and p["free"] >= max(p["target"], least) for p in report["pools"]
    )


def agent_dead(neutron: Neutron, host: str) -> bool:
    """Move NB_Global.nb_cfg on (the live chassis answer, the dead one cannot) and look."""
    ovn.nbctl("--wait=sb", "sync", timeout=10)
    agents: list[dict[str, Any]] = neutron.find("agents", host=host)
    return bool(agents) and not any(a["alive"] for a in agents)


def test_gc_clears_a_host_gone_for_good(
    stack: StackFacts,
    sim_hosts: list[Host],
    gone_host: Host,
    neutron: Neutron,
    mh_env: HostsEnv,
) -> None:
    main, h2, _ = sim_hosts
    shared = span(mh_env, neutron, [main, h2], dual_stack=False)
    # h4's Docker networks are made by hand: its Docker cannot remove them at teardown.
    name_option = f"neutron.net.name={shared.network['name']}"
    gone_host.docker(
        "network", "create", "-d", "kuryr", "--ipam-driver", "kuryr",
        "--subnet", shared.cidrs[4], "-o", name_option, shared.docker_name,
    )  # fmt: skip
    on_main = mh_env.container(main, shared.docker_name)
    on_h2 = mh_env.container(h2, shared.docker_name)
    own = mh_env.name("h4-only")
    gone_host.docker("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", own)
    own_id = gone_host.docker("network", "inspect", "-f", "{{.Id}}", own)
    [own_network] = neutron.find("networks", name=naming.network_name(own_id))
    [own_subnet] = neutron.find("subnets", network_id=own_network["id"])
    on_gone = Container(gone_host, mh_env.name("h4-c"))
    gone_host.docker(
        "run", "-d", "--name", on_gone.name, "--net", shared.docker_name, IMAGE, *SERVER
    )
    gone_host.docker("run", "-d", "--net", own, IMAGE, *SERVER)
    assert on_main.pings(on_gone.address(shared.docker_name, 4))
    wait_for(lambda: pools_filled(gone_host), "h4's pools filled, no port being created")
    held = kuryr_ports_of(neutron, GONE)
    assert held, "h4 holds no Kuryr port before it dies"

    kill_host(stack, GONE)
    refused = gc_host(stack, "--apply")
    assert refused.returncode != 0 and "alive" in refused.stderr, refused
    assert kuryr_ports_of(neutron, GONE) == held

    wait_for(
        lambda: agent_dead(neutron, GONE), "Neutron to report h4's chassis dead", AGENT_DEAD_WITHIN
    )
    dry = gc_host(stack)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["applied"] is False
    assert {p["id"] for p in planned["ports"]} == held
    assert kuryr_ports_of(neutron, GONE) == held

    done = gc_host(stack, "--apply")
    assert done.returncode == 0, done.stderr
    assert kuryr_ports_of(neutron, GONE) == set()
    assert neutron.show("networks", own_network["id"]) is None
    # The marker of the CIDR it picked from the default pool: h4's ReleasePool never comes.
    assert neutron.find("subnetpools", name=naming.subnetpool_name(own_subnet["cidr"])) == []
    assert neutron.show("networks", shared.network["id"]) is not None
    assert talk(on_main, on_h2, shared.docker_name) == []
