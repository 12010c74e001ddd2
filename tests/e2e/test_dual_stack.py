"""Dual stack: ``--ipv6`` networks get a v4 and a v6 Neutron subnet and containers talk over
both families."""

from __future__ import annotations

import ipaddress

import pytest

from tests.e2e.helpers import DockerEnv, Neutron, docker_network_id, docker_network_subnets
from tests.e2e.scenario import free_kuryr_subnet, random_ula_subnet, remove_network, two_containers

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("explicit_subnets", [False, True], ids=["pools", "explicit-subnets"])
def test_dual_stack_network(env: DockerEnv, neutron: Neutron, explicit_subnets: bool) -> None:
    pools = neutron.default_pools()
    args = ["--ipam-driver", "kuryr", "--ipv6"]
    wanted: list[str] = []
    if explicit_subnets:
        wanted = [free_kuryr_subnet(neutron), random_ula_subnet()]
        for cidr in wanted:
            args += ["--subnet", cidr]
    net = env.network(*args)

    neutron_net = neutron.network_of_docker(docker_network_id(net))
    subnets = sorted(
        neutron.find("subnets", network_id=neutron_net["id"]), key=lambda s: s["ip_version"]
    )
    assert [s["ip_version"] for s in subnets] == [4, 6], subnets
    cidrs = [ipaddress.ip_network(s["cidr"]) for s in subnets]
    # Docker echoes a CIDR as typed, Neutron in canonical form ("0610" is "610").
    docker_cidrs = [ipaddress.ip_network(c) for c in docker_network_subnets(net)]
    assert sorted(docker_cidrs, key=str) == sorted(cidrs, key=str)
    if wanted:
        assert cidrs == [ipaddress.ip_network(c) for c in wanted]
    else:
        for subnet, pool in zip(subnets, ("kuryr", "kuryr6"), strict=True):
            assert subnet["subnetpool_id"] == pools[pool]["id"]
            prefix = ipaddress.ip_network(pools[pool]["prefixes"][0])
            assert ipaddress.ip_network(subnet["cidr"]).overlaps(prefix)

    # two_containers checks each eth0 has exactly its port's v4 and v6 and pings both.
    two_containers(env, neutron, net, neutron_net, ipv6=True)
    remove_network(env, neutron, net, neutron_net)
    assert neutron.default_pools() == pools
