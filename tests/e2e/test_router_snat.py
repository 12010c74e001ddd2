"""A way out through a Neutron router: a container on a network attached to the stack's
``kuryr-router`` (``-o neutron.router``) reaches the host's 172.24.4.1 on ``br-ex`` over ping
and TCP, SNATed to the router's external address; one on a network that is not attached,
or is ``--internal``, reaches neither. ``docker network rm`` detaches the subnet and leaves
the router.

The TCP listener is this test's own, bound to 172.24.4.1 only.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from kuryr import naming
from kuryr.stack import external
from tests.e2e.helpers import (
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    ping,
    wait_for,
)

pytestmark = pytest.mark.stack

GREETING = "kuryr-snat"
ROUTER_INTERFACE = "network:router_interface"


@dataclass
class Listener:
    port: int
    peers: list[str] = field(default_factory=list)


@contextmanager
def listener() -> Iterator[Listener]:
    """A TCP server on 172.24.4.1 (a free port) that greets each client and records where it
    came from."""
    server = socket.socket()
    server.bind((external.HOST_IP, 0))
    server.listen()
    server.settimeout(0.2)
    found = Listener(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            with conn:
                found.peers.append(peer[0])
                conn.sendall(f"{GREETING}\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join()
        server.close()


def tcp_greeting(container: str, port: int) -> str:
    """What the host's listener said to the container ("" when it never connected)."""
    argv = ["exec", container, "timeout", "5", "nc", external.HOST_IP, str(port)]
    return docker(*argv, check=False)


def router(neutron: Neutron) -> dict[str, object]:
    [found] = neutron.find("routers", name=external.ROUTER)
    return found


def router_address(found: dict[str, object]) -> str:
    address = external.gateway_address(found)
    assert address is not None, f"{external.ROUTER} has no gateway on {external.NETWORK}"
    return address


def interfaces(neutron: Neutron, router_id: str, network_id: str) -> set[str]:
    """The subnets of the network the router has an interface on."""
    ports = neutron.find(
        "ports", device_id=router_id, network_id=network_id, device_owner=ROUTER_INTERFACE
    )
    return {f["subnet_id"] for p in ports for f in p["fixed_ips"]}


def subnet_ids(neutron: Neutron, network_id: str) -> set[str]:
    return {s["id"] for s in neutron.find("subnets", network_id=network_id)}


def docker_ipam_subnet() -> str:
    """A /24 of Docker's own IPAM no other test picks: far from 172.24.4.0/24 and from the
    default subnetpool's 10.10.0.0/16."""
    return f"10.124.{secrets.randbelow(256)}.0/24"


@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
def test_an_attached_network_reaches_the_host_through_snat(
    env: DockerEnv, neutron: Neutron, ipam: str
) -> None:
    found = router(neutron)
    ipam_args = (
        ["--ipam-driver", "kuryr"] if ipam == "kuryr" else ["--subnet", docker_ipam_subnet()]
    )
    net = env.network(*ipam_args, "-o", f"neutron.router={external.ROUTER}")
    network = neutron.network_of_docker(docker_network_id(net))
    subnets = subnet_ids(neutron, network["id"])
    assert interfaces(neutron, str(found["id"]), network["id"]) == subnets
    for subnet in neutron.find("subnets", network_id=network["id"]):
        assert naming.router_tag(str(found["id"])) in subnet["tags"]
    container = env.container(net)

    wait_for(lambda: ping(container, external.HOST_IP).returncode == 0, "ping 172.24.4.1")
    with listener() as host:
        greeting = wait_for(
            lambda: tcp_greeting(container, host.port), f"TCP to {external.HOST_IP}"
        )
        assert greeting == GREETING
        # The host saw the router's external address, not the container's: SNAT.
        assert set(host.peers) == {router_address(found)}

    env.remove_container(container)
    env.remove_network(net)
    assert interfaces(neutron, str(found["id"]), network["id"]) == set()
    assert neutron.show("routers", str(found["id"])) is not None


@pytest.mark.parametrize("internal", [False, True], ids=["not attached", "internal"])
def test_a_network_off_the_router_reaches_nothing_outside(
    env: DockerEnv, neutron: Neutron, internal: bool
) -> None:
    found = router(neutron)
    # --internal is asked for the router too: it must still stay off it.
    args = ["--internal", "-o", f"neutron.router={external.ROUTER}"] if internal else []
    net = env.network("--ipam-driver", "kuryr", *args)
    network = neutron.network_of_docker(docker_network_id(net))
    assert interfaces(neutron, str(found["id"]), network["id"]) == set()
    container = env.container(net)
    peer = env.container(net)
    # The network itself works: only the way out is missing.
    peer_ip = endpoint(peer, net).ipv4
    wait_for(lambda: ping(container, peer_ip).returncode == 0, "ping within the network")

    with listener() as host:
        assert ping(container, external.HOST_IP).returncode != 0
        assert tcp_greeting(container, host.port) == ""
        assert host.peers == []
