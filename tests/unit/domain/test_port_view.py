"""The typed view of a Neutron port: what it tells of the port's owner, and its VIF."""

from __future__ import annotations

from kuryr import naming
from kuryr.backends.binding.base import Vif
from kuryr.domain.ports.port import Port

DOCKER_ID = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
ENDPOINT = "0123456789abcdef" * 4
PORT = "5e2b7c1a-0c1d-4e5f-8a9b-0c1d2e3f4a5b"
NETWORK = "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0"


def test_pool_ports_are_known_by_tag_or_by_name_until_a_container_holds_them() -> None:
    assert Port.from_neutron({"device_id": "", "tags": [naming.POOL_TAG]}).in_pool
    assert Port.from_neutron({"device_id": "", "name": naming.POOL_PORT_NAME, "tags": []}).in_pool
    assert not Port.from_neutron({"device_id": "", "name": naming.UNBOUND_PORT_NAME}).in_pool
    assert not Port.from_neutron(
        {"device_id": DOCKER_ID, "name": naming.POOL_PORT_NAME, "tags": [naming.POOL_TAG]}
    ).in_pool


def test_a_port_kuryr_libnetwork_released_has_its_device_id_and_name_but_no_id_tags() -> None:
    released = {
        "device_id": DOCKER_ID,
        "device_owner": naming.DEVICE_OWNER,
        "name": naming.port_name(DOCKER_ID),
        "tags": ["compute:kuryr"],
    }
    assert Port.from_neutron(released).released_by_libnetwork
    # In use (Kuryr's or kuryr-libnetwork's): the endpoint's id tags are on it.
    in_use = {**released, "tags": naming.id_tags(DOCKER_ID)}
    assert not Port.from_neutron(in_use).released_by_libnetwork
    # Another owner, another name (a reservation, a pool port) or no device at all.
    for changed in (
        {"device_owner": "compute:nova"},
        {"name": naming.UNBOUND_PORT_NAME},
        {"device_id": ""},
    ):
        assert not Port.from_neutron({**released, **changed}).released_by_libnetwork


def test_the_vif_of_a_port_reads_its_neutron_fields() -> None:
    port = {
        "id": PORT,
        "network_id": NETWORK,
        "mac_address": "fa:16:3e:12:34:56",
        "binding:vif_type": "ovs",
        "binding:vif_details": {"port_filter": True},
    }
    assert Port.from_neutron(port).vif(ENDPOINT, 1442) == Vif(
        PORT, ENDPOINT, NETWORK, "fa:16:3e:12:34:56", 1442, "ovs", {"port_filter": True}
    )


def test_a_port_neutron_has_not_bound_yet_gets_an_ovs_vif() -> None:
    assert Port.from_neutron({"id": PORT}).vif("", 1442).vif_type == "ovs"
