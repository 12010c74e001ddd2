"""The pure parts of the binders: names, OVSDB external_ids, readiness, vif_type choice."""

from __future__ import annotations

import pytest

from kuryr.backends.binding.base import Vif
from kuryr.backends.binding.linuxbridge import LinuxBridgeBinder, bridge_name
from kuryr.backends.binding.ovs import OWNER_KEY, interface_external_ids, is_settled, plugged_ports
from kuryr.backends.binding.registry import Binders, load
from kuryr.backends.netlink import Netlink
from kuryr.backends.ovsdb import InterfaceState
from kuryr.config import BindingConfig
from kuryr.errors import BackendError

ENDPOINT = "0123456789abcdef" * 4
PORT = "5e2b7c1a-0c1d-4e5f-8a9b-0c1d2e3f4a5b"
NETWORK = "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0"


def vif(**overrides: object) -> Vif:
    fields: dict[str, object] = {
        "port_id": PORT,
        "endpoint_id": ENDPOINT,
        "network_id": NETWORK,
        "mac_address": "fa:16:3e:12:34:56",
        "mtu": 1442,
    }
    fields.update(overrides)
    return Vif(**fields)  # type: ignore[arg-type]


def test_interface_external_ids_name_port_mac_endpoint_and_owner() -> None:
    assert interface_external_ids(vif()) == {
        "iface-id": PORT,
        "attached-mac": "fa:16:3e:12:34:56",
        "iface-status": "active",
        "vm-uuid": ENDPOINT,
        OWNER_KEY: ENDPOINT,
    }


def test_interface_names_come_from_the_port_and_fit_ifnamsiz() -> None:
    assert vif().host_ifname == "tap5e2b7c1a-0c"
    assert vif().container_ifname == "t_c5e2b7c1a-0c"
    assert len(vif().host_ifname) <= 15
    # Plugged ahead for a pool (no endpoint yet) or for a container: the same veth.
    assert vif(endpoint_id="").host_ifname == vif().host_ifname


def test_same_wiring_ignores_the_endpoint_but_not_the_mac_or_mtu() -> None:
    assert vif(endpoint_id="").same_wiring(vif())
    assert not vif(mac_address="fa:16:3e:00:00:01").same_wiring(vif())
    assert not vif(mtu=1500).same_wiring(vif())
    assert vif(mac_address="FA:16:3E:12:34:56").same_wiring(vif())


@pytest.mark.parametrize(
    ("external_ids", "error", "settled"),
    [
        ({"iface-id": PORT}, "", False),
        ({"iface-id": PORT, "ovn-installed": "false"}, "", False),
        ({"iface-id": PORT, "ovn-installed": "true"}, "", True),
        ({"iface-id": PORT}, "could not open network device tapx (No such device)", True),
    ],
)
def test_settled_when_ovn_installed_or_ovs_failed(
    external_ids: dict[str, str], error: str, settled: bool
) -> None:
    assert is_settled(InterfaceState("tapx", external_ids, error)) is settled


def test_plugged_lists_only_interfaces_kuryr_marked() -> None:
    interfaces = [
        InterfaceState("tapmine", {"iface-id": PORT, OWNER_KEY: ENDPOINT}, ""),
        InterfaceState("tapnova", {"iface-id": "other-port"}, ""),
        InterfaceState("br-int", {}, ""),
    ]
    assert plugged_ports(interfaces) == {PORT: "tapmine"}


def test_linux_bridge_name_is_the_agents() -> None:
    assert bridge_name(NETWORK) == "brq9f8e7d6c-5b"


def binders() -> Binders:
    netlink = Netlink()
    return Binders(
        host="vm",
        by_vif_type={"bridge": LinuxBridgeBinder(netlink)},
        unavailable={"ovs": "OVSDB unix:/nowhere is not reachable"},
        netlink=netlink,
        ovsdb=None,
    )


def test_vif_type_picks_its_binder() -> None:
    assert isinstance(binders().for_vif_type("bridge"), LinuxBridgeBinder)


@pytest.mark.parametrize(
    ("vif_type", "message"),
    [
        ("binding_failed", "binding:vif_type binding_failed: Neutron could not bind it to host vm"),
        ("unbound", "binding:vif_type unbound: it is not bound to any host"),
        ("ovs", "cannot plug a port of vif_type ovs: OVSDB unix:/nowhere is not reachable"),
        ("vhostuser", "no binder for vif_type 'vhostuser' (this host serves: bridge)"),
    ],
)
def test_vif_type_without_binder_is_a_clear_error(vif_type: str, message: str) -> None:
    with pytest.raises(BackendError) as raised:
        binders().for_vif_type(vif_type)
    assert message in raised.value.message
    assert raised.value.status == 502


async def test_load_without_ovsdb_serves_linux_bridge_and_explains_ovs() -> None:
    loaded = await load(BindingConfig(host="vm", ovsdb_connection="unix:/nonexistent/db.sock"))
    try:
        assert loaded.host == "vm"
        assert isinstance(loaded.for_vif_type("bridge"), LinuxBridgeBinder)
        with pytest.raises(BackendError, match=r"vif_type ovs: OVSDB unix:/nonexistent/db.sock"):
            loaded.for_vif_type("ovs")
    finally:
        await loaded.close()


async def test_load_without_ovsdb_or_host_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match=r"chassis name is unknown: set \[binding\] host"):
        await load(BindingConfig(ovsdb_connection="unix:/nonexistent/db.sock"))
