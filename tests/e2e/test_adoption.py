"""Adoption: Docker networks on Neutron networks and subnetpools made by someone else.

Kuryr uses them while the Docker network exists and leaves them in place, untagged, when it
is removed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import (
    DockerEnv,
    Neutron,
    docker_network_id,
    docker_network_subnets,
    network_tags,
)
from tests.e2e.scenario import free_subnet, two_containers

pytestmark = pytest.mark.stack


def kuryr_tags(resource: dict[str, Any]) -> list[str]:
    return [t for t in resource["tags"] if t.startswith("kuryr.")]


def premade(env: DockerEnv, neutron: Neutron) -> tuple[dict[str, Any], ...]:
    """A subnetpool holding exactly one /24, a network and a subnet taking that /24."""
    cidr = free_subnet(neutron, "192.168.{}.0/24", range(100, 200))
    pool = neutron.create(
        "subnetpools", name=env.name("pool"), prefixes=[cidr], default_prefixlen=24
    )
    env.defer(lambda: neutron.delete("subnetpools", pool["id"]))
    network = neutron.create("networks", name=env.name("neutron-net"))
    env.defer(lambda: neutron.delete("networks", network["id"]))
    subnet = neutron.create(
        "subnets",
        name=env.name("neutron-subnet"),
        network_id=network["id"],
        ip_version=4,
        subnetpool_id=pool["id"],
        prefixlen=24,
    )
    return pool, network, subnet


@pytest.mark.parametrize("by", ["uuid", "name"])
def test_adopted_network_and_pool(env: DockerEnv, neutron: Neutron, by: str) -> None:
    pool, network, subnet = premade(env, neutron)
    selector = network["id"] if by == "uuid" else network["name"]
    net = env.network(
        "--ipam-driver",
        "kuryr",
        "-o",
        f"neutron.net.{by}={selector}",
        "--ipam-opt",
        f"neutron.pool.uuid={pool['id']}",
    )
    docker_id = docker_network_id(net)

    adopted = neutron.network_of_docker(docker_id)
    assert adopted["id"] == network["id"]
    assert set(adopted["tags"]) >= {
        *network_tags(docker_id),
        f"kuryr.net.existing:{docker_id[:12]}",
    }
    assert adopted["subnets"] == [subnet["id"]], "Kuryr made a subnet beside the existing one"
    assert docker_network_subnets(net) == [subnet["cidr"]]

    two_containers(env, neutron, net, adopted)
    env.remove_network(net)

    kept_network = neutron.show("networks", network["id"])
    kept_subnet = neutron.show("subnets", subnet["id"])
    kept_pool = neutron.show("subnetpools", pool["id"])
    assert kept_network is not None, "the adopted network was deleted"
    assert kept_subnet is not None, "the adopted subnet was deleted"
    assert kept_pool is not None, "the adopted subnetpool was deleted"
    assert kept_network["subnets"] == [subnet["id"]]
    assert kept_pool["prefixes"] == pool["prefixes"]
    for kept in (kept_network, kept_subnet, kept_pool):
        assert kuryr_tags(kept) == [], f"Kuryr's tags left on {kept['id']}: {kept['tags']}"
