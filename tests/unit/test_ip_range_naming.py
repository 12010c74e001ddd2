"""kuryr-libnetwork's ``--ip-range`` convention, the pure parts: which CIDR the Neutron subnet
gets, what its subnetpool and subnet are named, and which tags leave an adopted network."""

from __future__ import annotations

import ipaddress

import pytest

from kuryr import naming
from kuryr.backends.model import Network, Subnet
from kuryr.domain.cidrs import subnet_cidr
from kuryr.domain.ipam import PoolChoice
from kuryr.domain.network_subnets import subnetpool_for
from kuryr.errors import InvalidRequest

NET_A = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
NET_B = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"


def test_the_range_is_the_subnet() -> None:
    cidr = subnet_cidr("10.61.0.0/16", "10.61.3.0/24", 4)
    assert cidr == ipaddress.ip_network("10.61.3.0/24")
    assert naming.subnet_name(str(cidr)) == "kuryr-subnet-10.61.3.0/24"
    assert naming.subnetpool_name(str(cidr)) == "kuryrPool-10.61.3.0/24"


def test_without_a_range_the_pool_is_the_subnet() -> None:
    assert subnet_cidr("10.61.0.0/16", "", 4) == ipaddress.ip_network("10.61.0.0/16")


def test_ipv6_range_in_canonical_form() -> None:
    # Docker sends Go's canonical text; the names carry Python's, which is the same form.
    cidr = subnet_cidr("fd61::/48", "fd61:0:0:2::/64", 6)
    assert naming.subnet_name(str(cidr)) == "kuryr-subnet-fd61:0:0:2::/64"
    assert naming.subnetpool_name(str(cidr)) == "kuryrPool-fd61:0:0:2::/64"


@pytest.mark.parametrize(
    ("pool", "sub_pool", "version", "message"),
    [
        ("10.61.0.0/16", "10.62.0.0/24", 4, "ip range 10.62.0.0/24 is not inside 10.61.0.0/16"),
        ("10.61.0.0/24", "10.61.0.0/16", 4, "is not inside"),
        ("10.61.0.0/16", "fd61::/64", 4, "is not inside"),
        ("10.61.0.0/16", "10.61.0.0/24", 6, "pool 10.61.0.0/16 is not IPv6"),
    ],
)
def test_bad_ranges_are_refused(pool: str, sub_pool: str, version: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        subnet_cidr(pool, sub_pool, version)


def test_a_docker_network_takes_only_its_own_tags_off_a_shared_network() -> None:
    tags = [
        "owner:ops",
        *naming.id_tags(NET_A),
        naming.existing_net_tag(NET_A),
        *naming.id_tags(NET_B),
        naming.existing_net_tag(NET_B),
        naming.TAG_INTERNAL_NET,
    ]
    left = naming.without_network_tags(tags, NET_A)
    assert left == [
        "owner:ops",
        *naming.id_tags(NET_B),
        naming.existing_net_tag(NET_B),
        naming.TAG_INTERNAL_NET,
    ]
    assert naming.id_from_tags(left) == NET_B
    assert naming.without_network_tags(left, NET_B) == ["owner:ops"]


def net(adopted: bool) -> Network:
    tags = [naming.existing_net_tag(NET_A)] if adopted else []
    return Network(docker_id=NET_A, neutron_id="n", mtu=1500, tags=tags)


def subnet(cidr: str, pool: str | None) -> Subnet:
    return Subnet(
        id=cidr,
        network_id="n",
        cidr=ipaddress.ip_network(cidr),
        gateway_ip=None,
        subnetpool_id=pool,
    )


SLICE = ipaddress.ip_network("10.61.3.0/24")


def test_the_first_slice_on_a_network_kuryr_made_leaves_room_for_other_slices() -> None:
    choice = PoolChoice("range-pool", SLICE, dedicated=True, ip_range=True)
    assert subnetpool_for(net(adopted=False), SLICE, choice, []) is None


def test_slices_on_an_adopted_network_share_its_pool_or_none() -> None:
    choice = PoolChoice("range-pool", SLICE, dedicated=True, ip_range=True)
    assert subnetpool_for(net(adopted=True), SLICE, choice, []) is None
    other_slice = [subnet("10.61.2.0/24", None), subnet("fd61::/64", "v6-pool")]
    assert subnetpool_for(net(adopted=True), SLICE, choice, other_slice) is None
    in_a_pool = [subnet("10.61.2.0/24", "operator-pool")]
    assert subnetpool_for(net(adopted=True), SLICE, choice, in_a_pool) == "operator-pool"


def test_without_a_range_the_chosen_pool_stays() -> None:
    choice = PoolChoice("kuryr", SLICE)
    assert subnetpool_for(net(adopted=True), SLICE, choice, []) == "kuryr"
    assert subnetpool_for(net(adopted=True), SLICE, None, []) is None
