"""A simulated host dies: every process of h3 (its dockerd, containerd, shims and containers,
its Kuryr daemon, OVS and ovn-controller, its Neutron relay) gets SIGKILL. Containers on the
other hosts keep talking; ``kuryr stack up --hosts 3`` brings h3 back, its container with a
restart policy runs again and is reachable from both other hosts, and its daemon leaves it
one port.

Disrupting for h3 (it runs among the tests that stop a component and restore it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from kuryr import naming
from kuryr.domain.ports.port import Port
from kuryr.stack import hostplan, hosts, lifecycle, proc
from tests.conftest import StackFacts
from tests.e2e.conftest import HOSTS
from tests.e2e.helpers import Neutron, wait_for
from tests.e2e.multihost import Container, Host, HostsEnv, span

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
    """What fails between a and b: ping both ways, and a download each way (md5 checked)."""
    failed = []
    for client, server in ((a, b), (b, a)):
        address = server.address(network, 4)
        if not client.pings(address):
            failed.append(f"ping {client.host.name}->{server.host.name}")
        if client.md5_from(address) != server.served_md5():
            failed.append(f"tcp {client.host.name}<-{server.host.name}")
    return failed


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
