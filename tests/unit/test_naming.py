"""Neutron names and tags must match kuryr-libnetwork's exactly (drop-in compatibility)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuryr import naming

DOCKER_ID = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
docker_ids = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def test_network_tags_split_the_id_like_kuryr_libnetwork() -> None:
    assert naming.id_tags(DOCKER_ID) == [
        "kuryr.net.uuid.lh:0b707c5c251527c195db82fd7df44a27",
        "kuryr.net.uuid.uh:d6926b90bacf7ae3a232b450c6b8e9da",
    ]
    assert naming.id_tag_filter(DOCKER_ID) == ",".join(naming.id_tags(DOCKER_ID))


@given(docker_ids)
def test_id_round_trips_through_tags(docker_id: str) -> None:
    tags = [*naming.id_tags(docker_id), "user-tag", naming.existing_net_tag(docker_id)]
    assert naming.id_from_tags(tags) == docker_id
    assert all(len(t) <= 60 for t in tags)


def test_id_from_tags_needs_both_halves() -> None:
    assert naming.id_from_tags(naming.id_tags(DOCKER_ID)[:1]) is None
    assert naming.id_from_tags([]) is None


def test_names() -> None:
    assert naming.network_name(DOCKER_ID) == "kuryr-net-0b707c5c"
    assert naming.subnet_name("10.10.1.0/24") == "kuryr-subnet-10.10.1.0/24"
    assert naming.subnetpool_name("10.20.0.0/16") == "kuryrPool-10.20.0.0/16"
    assert naming.port_name(DOCKER_ID) == DOCKER_ID + "-port"
    assert naming.existing_net_tag(DOCKER_ID) == "kuryr.net.existing:0b707c5c2515"
    assert naming.expose_sg_name(DOCKER_ID) == "kuryr_expose_0b707c5c2515"


def test_kuryr_tags_are_removed_but_others_kept() -> None:
    tags = [
        *naming.id_tags(DOCKER_ID),
        naming.existing_net_tag(DOCKER_ID),
        naming.TAG_INTERNAL_NET,
        "owner:ops",
    ]
    assert naming.without_kuryr_tags(tags) == ["owner:ops"]
    assert naming.is_adopted_network(tags)
    assert not naming.is_adopted_network(naming.id_tags(DOCKER_ID))


@given(st.uuids(), st.integers(min_value=8, max_value=30), st.integers(0, 2**32 - 1))
def test_pool_id_round_trips(uuid: object, prefixlen: int, address: int) -> None:
    cidr = ipaddress.ip_network((address, prefixlen), strict=False)
    pool_id = naming.pool_id(str(uuid), str(cidr))
    assert naming.parse_pool_id(pool_id) == (str(uuid), cidr)


def test_pool_id_of_ipv6() -> None:
    uuid = "3f0c8f59-5d5b-4d59-9a3a-4d0f3e0c0a11"
    pool_id = naming.pool_id(uuid, "fd12:3456:789a:1::/64")
    assert naming.parse_pool_id(pool_id) == (uuid, ipaddress.ip_network("fd12:3456:789a:1::/64"))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "kuryr",
        "feaspool-10.30.0.0/24",
        "3f0c8f59/10.0.0.0/24",
        "not-a-uuid/10.0.0.0/8",
        "3f0c8f59-5d5b-4d59-9a3a-4d0f3e0c0a11/10.0.0.1/24",
    ],
)
def test_garbage_pool_ids_are_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        naming.parse_pool_id(value)


def test_a_dedicated_pool_id_is_the_bare_subnetpool_uuid_as_kuryr_libnetwork_writes_it() -> None:
    uuid = "3f0c8f59-5d5b-4d59-9a3a-4d0f3e0c0a11"
    assert naming.pool_id(uuid, "10.62.1.0/24", dedicated=True) == uuid
    assert naming.is_bare_pool_id(uuid)
    assert not naming.is_bare_pool_id(naming.pool_id(uuid, "10.62.1.0/24"))
    assert not naming.is_bare_pool_id("kuryrPool-10.62.1.0/24")
