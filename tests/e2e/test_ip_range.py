"""``--ip-range`` the kuryr-libnetwork 18 way, against real dockerd and Neutron.

With Kuryr's IPAM the range is the Neutron subnet (``kuryr-subnet-<range>``, gateway as given,
Neutron's default allocation pool), tagged with the id of a subnetpool of its own
(``kuryrPool-<range>``, the one prefix ``<range>``), the PoolID. An
adopted network's existing subnet of that CIDR is used instead of a new one, and several
Docker networks may each put their slice on one Neutron network. ``docker network rm``
removes what Kuryr made for that Docker network and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any

import pytest

from tests.e2e.helpers import (
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    docker_network_subnets,
    endpoint,
    network_tags,
    ping,
    settle,
)
from tests.e2e.scenario import free_subnet, remove_network, two_containers

pytestmark = pytest.mark.stack

SUBNET_V4 = "10.61.0.0/16"


@pytest.fixture
def ipr_env(env: DockerEnv) -> DockerEnv:
    """This module's resources under a prefix of their own; its CIDRs are all in 10.61/16
    and fd61::/16, which no other test uses."""
    env.prefix = f"ipr-{secrets.token_hex(4)}"
    return env


def free_slices(neutron: Neutron, count: int) -> list[str]:
    """``count`` distinct /24 slices of 10.61/16 that no Neutron subnet or Docker network uses."""
    slices: list[str] = []
    while len(slices) < count:
        candidate = free_subnet(neutron, "10.61.{}.0/24", range(1, 255))
        if candidate not in slices:
            slices.append(candidate)
    return slices


def host(cidr: str, index: int) -> str:
    return str(ipaddress.ip_network(cidr)[index])


def canonical(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr))


def kuryr_pools(neutron: Neutron, cidr: str) -> list[dict[str, Any]]:
    return neutron.find("subnetpools", name=f"kuryrPool-{canonical(cidr)}")


def assert_slice_subnet(
    neutron: Neutron, subnet: dict[str, Any], ip_range: str, gateway: str
) -> dict[str, Any]:
    """The subnet kuryr-libnetwork 18 makes for ``--ip-range``; returns its subnetpool. The
    slice is in no subnetpool (Neutron allows one pool per network and IP version, so per-range
    pools would refuse another host's slice on the network); the pool's id tag finds it."""
    cidr = canonical(ip_range)
    assert subnet["cidr"] == cidr
    assert subnet["name"] == f"kuryr-subnet-{cidr}"
    assert subnet["gateway_ip"] == gateway
    assert subnet["allocation_pools"][0]["start"] == host(cidr, 2), subnet["allocation_pools"]
    assert len(subnet["allocation_pools"]) == 1, subnet["allocation_pools"]
    [pool] = kuryr_pools(neutron, cidr)
    assert subnet["subnetpool_id"] is None
    assert pool["prefixes"] == [cidr]
    assert int(pool["default_prefixlen"]) == ipaddress.ip_network(cidr).prefixlen
    assert pool["shared"] is False
    assert subnet["tags"] == [pool["id"]], subnet["tags"]
    return pool


def prefix_length(container: str, network: str) -> int:
    nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container))
    return int(nets[network]["IPPrefixLen"])


def premade_network(env: DockerEnv, neutron: Neutron) -> dict[str, Any]:
    network = neutron.create("networks", name=env.name("neutron-net"))

    def delete() -> None:
        for subnet in neutron.find("subnets", network_id=network["id"]):
            for port in neutron.find("ports", network_id=network["id"]):
                neutron.delete("ports", port["id"])
            neutron.delete("subnets", subnet["id"])
        neutron.delete("networks", network["id"])

    env.defer(delete)
    return network


def defer_pool_cleanup(env: DockerEnv, neutron: Neutron, ip_range: str) -> None:
    """A failed run leaves no kuryrPool-<range> behind (the daemon's own cleanup runs first);
    a subnet a timed-out create still made in it goes first (10.61/16 is this module's)."""

    def delete() -> None:
        for pool in kuryr_pools(neutron, ip_range):
            for subnet in neutron.find("subnets", subnetpool_id=pool["id"]):
                for port in neutron.find("ports", network_id=subnet["network_id"]):
                    neutron.delete("ports", port["id"])
                neutron.delete("subnets", subnet["id"])
            neutron.delete("subnetpools", pool["id"])

    env.defer(delete)


def slice_network(env: DockerEnv, ip_range: str, gateway: str, *options: str) -> str:
    """A Kuryr-IPAM Docker network on ``ip_range`` of :data:`SUBNET_V4`, as a host takes its
    slice; ``options`` are further ``docker network create`` arguments."""
    return env.network(
        "--ipam-driver",
        "kuryr",
        "--subnet",
        SUBNET_V4,
        "--ip-range",
        ip_range,
        "--gateway",
        gateway,
        *options,
    )


def test_ip_range_is_the_neutron_subnet(ipr_env: DockerEnv, neutron: Neutron) -> None:
    [ip_range] = free_slices(neutron, 1)
    gateway = host(ip_range, 1)
    defer_pool_cleanup(ipr_env, neutron, ip_range)
    net = slice_network(ipr_env, ip_range, gateway)
    # Docker keeps the user's configuration; Neutron holds the slice.
    assert docker_network_subnets(net) == [SUBNET_V4]
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    [subnet] = neutron.find("subnets", network_id=neutron_net["id"])
    pool = assert_slice_subnet(neutron, subnet, ip_range, gateway)

    probe = ipr_env.container(net)
    address = endpoint(probe, net).ipv4
    assert ipaddress.ip_address(address) in ipaddress.ip_network(ip_range)
    assert prefix_length(probe, net) == 24  # the pool kuryr-libnetwork answers is the range
    ipr_env.remove_container(probe)

    two_containers(ipr_env, neutron, net, neutron_net)
    remove_network(ipr_env, neutron, net, neutron_net)
    neutron.wait_gone("subnetpools", pool["id"])


def test_dual_stack_ip_ranges(ipr_env: DockerEnv, neutron: Neutron) -> None:
    [range4] = free_slices(neutron, 1)
    base = f"fd61:{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    subnet6, range6 = f"{base}::/48", f"{base}:1::/64"
    gateway4, gateway6 = host(range4, 1), host(range6, 1)
    for ip_range in (range4, range6):
        defer_pool_cleanup(ipr_env, neutron, ip_range)
    net = ipr_env.network(
        "--ipam-driver",
        "kuryr",
        "--ipv6",
        "--subnet",
        SUBNET_V4,
        "--ip-range",
        range4,
        "--gateway",
        gateway4,
        "--subnet",
        subnet6,
        "--ip-range",
        range6,
        "--gateway",
        gateway6,
    )
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    subnets = sorted(
        neutron.find("subnets", network_id=neutron_net["id"]), key=lambda s: s["ip_version"]
    )
    assert [s["ip_version"] for s in subnets] == [4, 6], subnets
    pools = [
        assert_slice_subnet(neutron, subnets[0], range4, gateway4),
        assert_slice_subnet(neutron, subnets[1], range6, gateway6),
    ]

    two_containers(ipr_env, neutron, net, neutron_net, ipv6=True)
    remove_network(ipr_env, neutron, net, neutron_net)
    for pool in pools:
        neutron.wait_gone("subnetpools", pool["id"])


def test_adopted_network_uses_its_existing_slice_subnet(
    ipr_env: DockerEnv, neutron: Neutron
) -> None:
    """The case that failed with "cannot create Neutron subnet(s) 10.10.0.0/16"."""
    network = premade_network(ipr_env, neutron)
    [ip_range] = free_slices(neutron, 1)
    gateway = host(ip_range, 1)
    existing = neutron.create(
        "subnets",
        name=ipr_env.name("slice"),
        network_id=network["id"],
        ip_version=4,
        cidr=ip_range,
        gateway_ip=gateway,
    )
    defer_pool_cleanup(ipr_env, neutron, ip_range)
    net = slice_network(ipr_env, ip_range, gateway, "-o", f"neutron.net.name={network['name']}")
    docker_id = docker_network_id(net)
    adopted = neutron.network_of_docker(docker_id)
    assert adopted["id"] == network["id"]
    assert adopted["subnets"] == [existing["id"]], "Kuryr made a subnet beside the existing one"
    # kuryr-libnetwork's marks: a kuryrPool-<range> subnetpool, its id as the subnet's tag.
    [pool] = kuryr_pools(neutron, ip_range)
    assert pool["prefixes"] == [ip_range]
    used = neutron.show("subnets", existing["id"])
    assert used is not None and used["tags"] == [pool["id"]]

    two_containers(ipr_env, neutron, net, adopted)
    ipr_env.remove_network(net)
    kept = neutron.show("subnets", existing["id"])
    assert kept is not None, "the adopted subnet was deleted"
    assert kept["tags"] == [] and kept["name"] == existing["name"]
    # DeleteNetwork may finish in the background once dockerd has its answer: the network's
    # tags are awaited, as test_adoption awaits them.
    nothing: list[str] = []
    tags = settle(
        lambda: (neutron.show("networks", network["id"]) or {"tags": None})["tags"], nothing
    )
    assert tags == [], f"the adopted network was deleted or kept Kuryr's tags: {tags}"
    neutron.wait_gone("subnetpools", pool["id"])


def test_two_slices_share_one_neutron_network(ipr_env: DockerEnv, neutron: Neutron) -> None:
    """As two hosts would: each Docker network its own slice subnet and addresses; removing
    one leaves the other's slice, claim and containers alone. Only the first Docker network
    tags the network (kuryr-libnetwork's tags); the second is known by its anchor port, so
    the network's tags do not grow with the hosts using it."""
    network = premade_network(ipr_env, neutron)
    ranges = free_slices(neutron, 2)
    nets: list[str] = []
    for ip_range in ranges:
        defer_pool_cleanup(ipr_env, neutron, ip_range)
        name_option = f"neutron.net.name={network['name']}"
        nets.append(slice_network(ipr_env, ip_range, host(ip_range, 1), "-o", name_option))
    ids = [docker_network_id(n) for n in nets]
    shared = neutron.show("networks", network["id"])
    assert shared is not None
    assert neutron.network_of_docker(ids[0])["id"] == network["id"]
    assert sorted(t for t in shared["tags"] if t.startswith("kuryr.")) == sorted(
        [*network_tags(ids[0]), f"kuryr.net.existing:{ids[0][:12]}"]
    )
    anchors = {docker_id: anchor_of(neutron, docker_id, network["id"]) for docker_id in ids}
    by_cidr = {s["cidr"]: s for s in neutron.find("subnets", network_id=network["id"])}
    assert sorted(by_cidr) == sorted(ranges)
    for docker_id, ip_range in zip(ids, ranges, strict=True):
        assert anchors[docker_id]["tags"] == [f"kuryr.subnet.made:{by_cidr[ip_range]['id']}"]
    pools = [assert_slice_subnet(neutron, by_cidr[r], r, host(r, 1)) for r in ranges]

    first = [ipr_env.container(nets[0]) for _ in range(2)]
    second = ipr_env.container(nets[1])
    addresses = [endpoint(c, nets[0]).ipv4 for c in first] + [endpoint(second, nets[1]).ipv4]
    assert len(set(addresses)) == 3, addresses
    for address, ip_range in zip(addresses, [ranges[0], ranges[0], ranges[1]], strict=True):
        assert ipaddress.ip_address(address) in ipaddress.ip_network(ip_range)
    result = ping(first[0], addresses[1])
    assert result.returncode == 0, result.stdout
    [second_port] = neutron.find("ports", fixed_ips=f"ip_address={addresses[2]}")

    for container in first:
        ipr_env.remove_container(container)
    ipr_env.remove_network(nets[0])
    neutron.wait_gone("subnets", by_cidr[ranges[0]]["id"])
    neutron.wait_gone("subnetpools", pools[0]["id"])
    neutron.wait_gone("ports", anchors[ids[0]]["id"])
    left = neutron.show("networks", network["id"])
    assert left is not None
    assert [s["cidr"] for s in neutron.find("subnets", network_id=network["id"])] == [ranges[1]]
    assert [t for t in left["tags"] if t.startswith("kuryr.")] == []
    assert neutron.show("ports", anchors[ids[1]]["id"]) is not None
    assert neutron.show("ports", second_port["id"]) is not None
    assert neutron.find("subnetpools", id=pools[1]["id"]) != []

    ipr_env.remove_container(second)
    ipr_env.remove_network(nets[1])
    neutron.wait_gone("subnets", by_cidr[ranges[1]]["id"])
    neutron.wait_gone("subnetpools", pools[1]["id"])
    neutron.wait_gone("ports", anchors[ids[1]]["id"])
    kept = neutron.show("networks", network["id"])
    assert kept is not None and kept["tags"] == []


def anchor_of(neutron: Neutron, docker_id: str, network_id: str) -> dict[str, Any]:
    """The adopting Docker network's anchor port: no address, bound to this host."""
    [anchor] = neutron.find("ports", device_id=docker_id)
    assert anchor["device_owner"] == "kuryr:anchor" and anchor["network_id"] == network_id
    assert anchor["fixed_ips"] == [] and anchor["binding:host_id"]
    return anchor


def test_docker_ipam_never_sees_the_range(ipr_env: DockerEnv, neutron: Neutron) -> None:
    """With Docker's own IPAM the driver gets the whole --subnet (dockerd keeps the range to
    itself), so the Neutron subnet is the whole subnet and Docker hands out the range."""
    [ip_range] = free_slices(neutron, 1)
    whole = str(ipaddress.ip_network(ip_range).supernet(new_prefix=23))
    net = ipr_env.network("--subnet", whole, "--ip-range", ip_range)
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    [made] = neutron.find("subnets", network_id=neutron_net["id"])
    assert made["cidr"] == whole and made["name"] == f"kuryr-subnet-{whole}"
    assert made["subnetpool_id"] is None
    probe = ipr_env.container(net)
    assert ipaddress.ip_address(endpoint(probe, net).ipv4) in ipaddress.ip_network(ip_range)
    ipr_env.remove_container(probe)
    remove_network(ipr_env, neutron, net, neutron_net)
