"""A port's VIF serves container after container with real Docker (kuryr.domain.ports.prewire).

``docker run --rm --ip X`` twice: both containers get the same pool port, and the second gets
the very OVS interface the first had (same row: OVN never released and claimed the port),
with a container end that came back from the first container down and without its address.
Both containers reach a peer on the network.
"""

from __future__ import annotations

import ipaddress

import pytest

from kuryr.backends.binding.base import container_ifname, host_ifname
from tests.e2e.helpers import IMAGE, DockerEnv, Neutron, docker, endpoint, run
from tests.e2e.scenario import free_kuryr_subnet, free_subnet

pytestmark = pytest.mark.stack


def interface_uuid(port_id: str) -> str:
    return run(["ovs-vsctl", "get", "Interface", host_ifname(port_id), "_uuid"]).stdout.strip()


def port_holding(neutron: Neutron, ip: str) -> dict[str, object]:
    found = neutron.find("ports", fixed_ips=f"ip_address={ip}")
    assert len(found) == 1, f"{len(found)} ports hold {ip}"
    return found[0]


@pytest.mark.parametrize("ipam", ["kuryr", "default"], ids=["kuryr-ipam", "docker-ipam"])
def test_a_port_keeps_its_vif_from_one_container_to_the_next(
    env: DockerEnv, neutron: Neutron, ipam: str
) -> None:
    if ipam == "kuryr":
        cidr = free_kuryr_subnet(neutron)
    else:
        cidr = free_subnet(neutron, "10.98.{}.0/24", range(10, 250))
    net = env.network("--ipam-driver", ipam, "--subnet", cidr)
    peer = endpoint(env.container(net), net).ipv4
    ip = str(ipaddress.ip_network(cidr)[200])

    rows: list[str] = []
    ports: list[object] = []
    for _ in range(2):
        docker("run", "--rm", "--net", net, "--ip", ip, IMAGE, "ping", "-c", "1", "-W", "5", peer)
        port = port_holding(neutron, ip)
        ports.append(port["id"])
        rows.append(interface_uuid(str(port["id"])))
        back = container_ifname(str(port["id"]))
        assert "state DOWN" in run(["ip", "-o", "link", "show", back]).stdout
        assert run(["ip", "-o", "addr", "show", back]).stdout == "", "an address came back"

    assert ports[0] == ports[1], "the second container got another port"
    assert rows[0] == rows[1], "the port was plugged again for the second container"
