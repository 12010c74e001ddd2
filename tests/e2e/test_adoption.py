"""Adoption: Docker networks on Neutron networks and subnetpools made by someone else.

Kuryr uses them while the Docker network exists and leaves them in place, untagged, when it
is removed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import (
    PORT_OWNER,
    DockerEnv,
    Neutron,
    docker_network_id,
    docker_network_subnets,
    network_tags,
    settle,
)
from tests.e2e.scenario import free_subnet, two_containers

pytestmark = pytest.mark.stack


def kuryr_tags(resource: dict[str, Any]) -> list[str]:
    return [t for t in resource["tags"] if t.startswith("kuryr.")]


def premade(env: DockerEnv, neutron: Neutron) -> tuple[dict[str, Any], dict[str, Any]]:
    """A subnetpool (a /16 handing out /24s) and a network, both made by hand."""
    prefix = free_subnet(neutron, "10.{}.0.0/16", range(100, 200))
    pool = neutron.create(
        "subnetpools", name=env.name("pool"), prefixes=[prefix], default_prefixlen=24
    )
    env.defer(lambda: neutron.delete("subnetpools", pool["id"]))
    network = neutron.create("networks", name=env.name("neutron-net"))
    # Subnets Kuryr may leave on an adopted network go with it.
    env.defer(lambda: delete_network_and_subnets(neutron, network["id"]))
    return pool, network


def delete_network_and_subnets(neutron: Neutron, network_id: str) -> None:
    for port in kuryr_ports(neutron, network_id):
        neutron.delete("ports", port["id"])
    for subnet in neutron.find("subnets", network_id=network_id):
        neutron.delete("subnets", subnet["id"])
    neutron.delete("networks", network_id)


def kuryr_ports(neutron: Neutron, network_id: str) -> list[dict[str, Any]]:
    """Ports Kuryr owns on a network: endpoints' and pooled (empty device_id) ones."""
    return neutron.find("ports", network_id=network_id, device_owner=PORT_OWNER)


def assert_released(neutron: Neutron, network_id: str) -> None:
    """After ``docker network rm`` Kuryr keeps no port on a network it gave back."""
    nothing: list[str] = []
    left = settle(lambda: [p["id"] for p in kuryr_ports(neutron, network_id)], nothing)
    assert left == [], f"Kuryr ports left on the adopted network: {left}"


def assert_kept_untagged(neutron: Neutron, kind: str, original: dict[str, Any]) -> None:
    """DeleteNetwork finishes in the background once dockerd has its answer (its ports go
    first, the tags last), so the tags are awaited like the ports."""
    nothing: list[str] = []
    settle(lambda: kuryr_tags(neutron.show(kind, original["id"]) or {"tags": []}), nothing)
    kept = neutron.show(kind, original["id"])
    assert kept is not None, f"the adopted {kind} {original['id']} was deleted"
    assert kuryr_tags(kept) == [], f"Kuryr's tags left on {kind} {kept['id']}: {kept['tags']}"
    if kind == "subnetpools":
        assert kept["prefixes"] == original["prefixes"]


def assert_adopted(neutron: Neutron, docker_id: str, network: dict[str, Any]) -> dict[str, Any]:
    adopted = neutron.network_of_docker(docker_id)
    assert adopted["id"] == network["id"]
    wanted = {*network_tags(docker_id), f"kuryr.net.existing:{docker_id[:12]}"}
    assert set(adopted["tags"]) >= wanted, adopted["tags"]
    return adopted


@pytest.mark.parametrize("by", ["uuid", "name"])
def test_adopted_network_with_subnet_from_adopted_pool(
    env: DockerEnv, neutron: Neutron, by: str
) -> None:
    pool, network = premade(env, neutron)
    selector = network["id"] if by == "uuid" else network["name"]
    net = env.network(
        "--ipam-driver",
        "kuryr",
        "-o",
        f"neutron.net.{by}={selector}",
        "--ipam-opt",
        f"neutron.pool.uuid={pool['id']}",
    )
    adopted = assert_adopted(neutron, docker_network_id(net), network)
    subnets = neutron.find("subnets", network_id=network["id"])
    assert [s["subnetpool_id"] for s in subnets] == [pool["id"]], subnets
    assert docker_network_subnets(net) == [subnets[0]["cidr"]]

    two_containers(env, neutron, net, adopted)
    env.remove_network(net)
    assert_released(neutron, network["id"])
    assert_kept_untagged(neutron, "networks", network)
    assert_kept_untagged(neutron, "subnetpools", pool)


def test_adopted_network_and_existing_subnet(env: DockerEnv, neutron: Neutron) -> None:
    """The kuryr-libnetwork way: ``--subnet`` plus ``neutron.subnet.uuid`` (as a network and
    an IPAM option) name a subnet that already exists on the adopted network; Kuryr uses it
    instead of making another."""
    pool, network = premade(env, neutron)
    subnet = neutron.create(
        "subnets",
        name=env.name("neutron-subnet"),
        network_id=network["id"],
        ip_version=4,
        subnetpool_id=pool["id"],
        prefixlen=24,
    )
    net = env.network(
        "--ipam-driver",
        "kuryr",
        "--subnet",
        subnet["cidr"],
        "-o",
        f"neutron.net.uuid={network['id']}",
        "-o",
        f"neutron.subnet.uuid={subnet['id']}",
        "--ipam-opt",
        f"neutron.pool.uuid={pool['id']}",
        "--ipam-opt",
        f"neutron.subnet.uuid={subnet['id']}",
    )
    adopted = assert_adopted(neutron, docker_network_id(net), network)
    assert adopted["subnets"] == [subnet["id"]], "Kuryr made a subnet beside the existing one"
    assert docker_network_subnets(net) == [subnet["cidr"]]

    two_containers(env, neutron, net, adopted)
    env.remove_network(net)
    assert_released(neutron, network["id"])
    assert_kept_untagged(neutron, "networks", network)
    assert_kept_untagged(neutron, "subnets", subnet)
    assert_kept_untagged(neutron, "subnetpools", pool)
