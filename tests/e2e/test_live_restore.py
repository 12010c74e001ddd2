"""dockerd with ``--live-restore`` restarted under running containers on Kuryr networks.

The containers keep running and keep their network while dockerd is down (checked from
inside their network namespace, since ``docker exec`` needs dockerd). After the restart
Kuryr still serves them: the old containers answer, a new container joins and reaches them,
``docker rm`` releases each port and ``docker network rm`` removes the Neutron network, with
no port, OVS interface or veth left.

A private dockerd (its own socket, data root, exec root and containerd) with a private Kuryr
daemon (this worktree's code) under a driver name of their own: the stack's dockerd is never
touched, so this test is not disrupting.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, br_int_ports, run, side_by_side, wait_for
from tests.e2e.private_dockerd import PrivateDockerd, private_dockerd
from tests.integration.private_daemon import PrivateDaemon, private_daemon
from tests.live_mutations import free_cidrs

pytestmark = pytest.mark.stack

# The shared dockerd does not know these networks: its view must not drive reconciliation.
SECTIONS = "[reconcile]\ninterval = 0\n"


@dataclass
class Setup:
    kuryr: PrivateDaemon
    dockerd: PrivateDockerd
    driver: str
    prefix: str


@pytest.fixture
def setup(stack: StackFacts) -> Iterator[Setup]:
    driver = f"kuryrlr{secrets.token_hex(3)}"
    with (
        private_daemon(extra_sections=SECTIONS) as kuryr,
        private_dockerd(driver, kuryr.socket) as dockerd,
    ):
        yield Setup(kuryr, dockerd, driver, f"lr-{secrets.token_hex(3)}")


@dataclass
class Container:
    name: str
    pid: int
    endpoint_id: str
    ip: str


def start(s: Setup, name: str, network: str) -> Container:
    d = s.dockerd
    d.docker("run", "-d", "--name", name, "--net", network, "kuryr/busybox", "sleep", "3600")
    pid = int(d.docker("inspect", "-f", "{{.State.Pid}}", name))
    fmt = f'{{{{with index .NetworkSettings.Networks "{network}"}}}}'
    fmt += "{{.EndpointID}} {{.IPAddress}}{{end}}"
    endpoint_id, ip = d.docker("inspect", "-f", fmt, name).split()
    return Container(name, pid, endpoint_id, ip)


def pings_from_netns(source: Container, address: str) -> bool:
    """Reachability from the container's own network namespace, with no help from dockerd."""
    argv = ["nsenter", "-t", str(source.pid), "-n", "ping", "-c", "3", "-w", "15", address]
    return run(argv, check=False).returncode == 0


def pings_via_docker(s: Setup, source: Container, address: str) -> bool:
    argv = ["exec", source.name, "ping", "-c", "3", "-w", "15", address]
    return run(["docker", "-H", f"unix://{s.dockerd.socket}", *argv], check=False).returncode == 0


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
def test_containers_keep_their_network_across_a_live_restore(setup: Setup, ipam: str) -> None:
    s, neutron = setup, Neutron()
    network = f"{s.prefix}-net"
    subnet = ["--subnet", str(free_cidrs(neutron, 1)[0])]
    ipam_args = ["--ipam-driver", s.driver] if ipam == "kuryr" else subnet
    docker_id = s.dockerd.docker("network", "create", "-d", s.driver, *ipam_args, network)
    neutron_net = neutron.network_of_docker(docker_id)
    first = start(s, f"{s.prefix}-a", network)
    second = start(s, f"{s.prefix}-b", network)
    ports = {c.name: neutron.port_of_endpoint(c.endpoint_id) for c in (first, second)}
    for port in ports.values():
        neutron.wait_active(port["id"])
    assert pings_via_docker(s, first, second.ip)

    s.dockerd.stop()
    assert running(first.pid) and running(second.pid), "live-restore stopped the containers"
    there, back = side_by_side(
        lambda: pings_from_netns(first, second.ip), lambda: pings_from_netns(second, first.ip)
    )
    assert there, "no traffic while dockerd is down"
    assert back

    s.dockerd.start()
    for c in (first, second):
        state = s.dockerd.docker("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", c.name)
        assert state == f"true {c.pid}", f"{c.name} was not restored as it ran: {state}"
        assert neutron.port_of_endpoint(c.endpoint_id)["id"] == ports[c.name]["id"]
    assert pings_via_docker(s, first, second.ip)
    third = start(s, f"{s.prefix}-c", network)
    third_port = neutron.port_of_endpoint(third.endpoint_id)
    neutron.wait_active(third_port["id"])
    to_first, to_third = side_by_side(
        lambda: pings_via_docker(s, third, first.ip), lambda: pings_via_docker(s, second, third.ip)
    )
    assert to_first
    assert to_third

    every_port = [*ports.values(), third_port]
    for c in (first, second, third):
        s.dockerd.docker("rm", "-f", c.name)
    for port in every_port:
        neutron.wait_released(port["id"])
    s.dockerd.docker("network", "rm", network)
    neutron.wait_gone("networks", neutron_net["id"])
    left = {f"tap{port['id'][:11]}" for port in every_port}
    wait_for(lambda: not (left & br_int_ports()) or None, "the VIFs to leave br-int")
    links = run(["ip", "-o", "link", "show"]).stdout
    assert not [name for name in left if name in links], "veths left behind"
    assert "Traceback" not in s.kuryr.log_text()
