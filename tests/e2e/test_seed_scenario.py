"""The seed's scenario: a Kuryr network, two containers on it, end to end through dockerd.

Run with Kuryr's IPAM and with Docker's own, with and without ``--subnet``; none needs
``--gateway``. The default subnetpools must come out of all of it unchanged.
"""

from __future__ import annotations

import ipaddress
import random

import pytest

from tests.e2e.helpers import DockerEnv, Neutron, docker_network_id, docker_network_subnets
from tests.e2e.scenario import free_kuryr_subnet, remove_network, two_containers

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("explicit_subnet", [False, True], ids=["auto-subnet", "explicit-subnet"])
@pytest.mark.parametrize("ipam", ["kuryr", "docker"], ids=["kuryr-ipam", "docker-ipam"])
def test_two_containers_on_a_kuryr_network(
    env: DockerEnv, neutron: Neutron, ipam: str, explicit_subnet: bool
) -> None:
    pools = neutron.default_pools()
    args: list[str] = []
    if ipam == "kuryr":
        args += ["--ipam-driver", "kuryr"]
    wanted = free_kuryr_subnet(neutron) if explicit_subnet else None
    if wanted:
        args += ["--subnet", wanted]
    net = env.network(*args)
    docker_id = docker_network_id(net)

    neutron_net = neutron.network_of_docker(docker_id)
    assert neutron_net["name"] == f"kuryr-net-{docker_id[:8]}"
    subnets = neutron.find("subnets", network_id=neutron_net["id"])
    assert [s["ip_version"] for s in subnets] == [4], subnets
    subnet = subnets[0]
    assert docker_network_subnets(net) == [subnet["cidr"]]
    if wanted:
        assert subnet["cidr"] == wanted
    if ipam == "kuryr" and not explicit_subnet:
        assert subnet["subnetpool_id"] == pools["kuryr"]["id"]
        assert ipaddress.IPv4Network(subnet["cidr"]).subnet_of(
            ipaddress.IPv4Network(pools["kuryr"]["prefixes"][0])
        )

    two_containers(env, neutron, net, neutron_net)
    remove_network(env, neutron, net, neutron_net)
    assert neutron.default_pools() == pools


def test_container_mac_is_the_neutron_ports_unless_asked(env: DockerEnv, neutron: Neutron) -> None:
    net = env.network("--ipam-driver", "kuryr")
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    mac = "02:e2:e0:" + ":".join(f"{b:02x}" for b in random.randbytes(3))
    two_containers(env, neutron, net, neutron_net, run_args=(("--mac-address", mac), ()))
