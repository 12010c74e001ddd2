"""The in-memory Neutron's trunks follow Neutron Zed's trunk plugin and OVN trunk driver
(tests/fakes/neutron_trunks.py says where each rule comes from)."""

from __future__ import annotations

from typing import Any

import pytest

from kuryr.backends.neutron_api import NeutronError
from tests.fakes.neutron import FakeNeutron


def setup() -> tuple[FakeNeutron, dict[str, Any], dict[str, Any], str]:
    neutron = FakeNeutron(seed=3)
    net = neutron.make("networks", {"name": "wt15-t"})
    neutron.make("subnets", {"network_id": net["id"], "cidr": "10.17.0.0/24", "ip_version": 4})
    parent = neutron.make("ports", {"network_id": net["id"], "binding:host_id": "hv"})
    trunk = neutron.make("trunks", {"port_id": parent["id"]})
    return neutron, parent, trunk, net["id"]


def sub(port_id: str, seg: Any, kind: str = "vlan") -> dict[str, Any]:
    return {"port_id": port_id, "segmentation_type": kind, "segmentation_id": seg}


async def refused(call: Any) -> NeutronError:
    with pytest.raises(NeutronError) as caught:
        await call
    return caught.value


async def test_a_subport_is_owned_by_the_trunk_and_shown_on_its_parent() -> None:
    neutron, parent, trunk, net = setup()
    port = neutron.make("ports", {"network_id": net, "device_owner": "compute:kuryr"})

    answer = await neutron.add_subports(trunk["id"], [sub(port["id"], 7)])

    assert answer["sub_ports"] == [sub(port["id"], 7)]
    held = neutron.get("ports", port["id"])
    assert held is not None
    assert held["device_owner"] == "trunk:subport"
    assert held["binding:vif_type"] == "ovs"
    assert held["binding:profile"] == {"parent_name": parent["id"], "tag": 7}
    shown = neutron.get("ports", parent["id"])
    assert shown is not None
    assert shown["trunk_details"] == {
        "trunk_id": trunk["id"],
        "sub_ports": [{**sub(port["id"], 7), "mac_address": port["mac_address"]}],
    }


async def test_neutron_refusals() -> None:
    neutron, parent, trunk, net = setup()
    a = neutron.make("ports", {"network_id": net})
    b = neutron.make("ports", {"network_id": net})
    used = neutron.make("ports", {"network_id": net, "device_id": "somebody"})
    await neutron.add_subports(trunk["id"], [sub(a["id"], 5)])

    cases = [
        ([sub(b["id"], 5)], 409, "DuplicateSubPort"),
        ([sub(a["id"], 6)], 409, "TrunkPortInUse"),
        ([sub(parent["id"], 6)], 409, "ParentPortInUse"),
        ([sub(used["id"], 6)], 409, "PortInUse"),
        ([sub(b["id"], 4095)], 400, "InvalidInput"),
        ([sub(b["id"], 6, "vxlan")], 400, "InvalidInput"),
        ([sub(b["id"], 6), sub(b["id"], 7)], 400, "InvalidInput"),
    ]
    for subports, status, kind in cases:
        error = await refused(neutron.add_subports(trunk["id"], subports))
        assert (error.http_status, error.neutron_type) == (status, kind), subports


async def test_a_request_is_all_or_none() -> None:
    neutron, _parent, trunk, net = setup()
    a = neutron.make("ports", {"network_id": net})
    b = neutron.make("ports", {"network_id": net})
    c = neutron.make("ports", {"network_id": net})
    await neutron.add_subports(trunk["id"], [sub(a["id"], 5)])

    await refused(neutron.add_subports(trunk["id"], [sub(b["id"], 6), sub(c["id"], 5)]))
    error = await refused(neutron.remove_subports(trunk["id"], [a["id"], b["id"]]))

    assert error.not_found and error.neutron_type == "SubPortNotFound"
    shown = neutron.get("trunks", trunk["id"])
    assert shown is not None
    assert shown["sub_ports"] == [sub(a["id"], 5)]
    held = neutron.get("ports", b["id"])
    assert held is not None and held["device_owner"] == ""


async def test_a_removed_subport_is_unowned_and_unbound_and_may_be_deleted() -> None:
    neutron, _parent, trunk, net = setup()
    port = neutron.make("ports", {"network_id": net, "device_owner": "compute:kuryr"})
    await neutron.add_subports(trunk["id"], [sub(port["id"], 9)])

    error = await refused(neutron.delete("ports", port["id"]))
    assert (error.http_status, error.neutron_type) == (409, "PortInUseAsSubPort")
    await neutron.remove_subports(trunk["id"], [port["id"]])

    held = neutron.get("ports", port["id"])
    assert held is not None
    assert (held["device_owner"], held["binding:vif_type"], held["binding:profile"]) == (
        "",
        "unbound",
        {},
    )
    assert await neutron.delete("ports", port["id"])


async def test_a_trunk_parent_cannot_be_deleted_and_a_deleted_trunk_frees_its_subports() -> None:
    neutron, parent, trunk, net = setup()
    port = neutron.make("ports", {"network_id": net})
    await neutron.add_subports(trunk["id"], [sub(port["id"], 2)])

    error = await refused(neutron.delete("ports", parent["id"]))
    assert error.neutron_type == "PortInUseAsTrunkParent"
    assert await neutron.delete("trunks", trunk["id"])

    held = neutron.get("ports", port["id"])
    assert held is not None and held["device_owner"] == ""
    assert await neutron.delete("ports", parent["id"])


async def test_trunks_are_found_by_their_parent() -> None:
    neutron, parent, trunk, _net = setup()
    found = await neutron.query("trunks", {"port_id": parent["id"]})
    assert [t["id"] for t in found] == [trunk["id"]]
