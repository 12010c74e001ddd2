"""What ML2/OVN does with a trunk subport on the real stack, by the ``binding:host_id`` Kuryr
in a VM could give its ports: none, the VM's own name (no OVN chassis has it), or the
hypervisor's chassis name. The VM's port is bound to this chassis and wired on br-int (its
NIC in a throwaway namespace); for each choice the subport's Neutron binding and OVN's
Port_Binding (claimed by this chassis through the parent, or not) are recorded and checked.

These facts decided how nested mode marks its ports (README: Nested mode): it binds none, and
marks each by the VM's port in its description (kuryr.domain.ports.mine). The port nested
Kuryr makes (its very body, kuryr.domain.ports.desired) is claimed like an unbound one, and
the real Neutron finds it again by that mark alone, whatever owner the trunk plugin gave it,
while a daemon with this chassis does not take it for its own."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.binding.registry import Binders
from kuryr.backends.neutron import Neutron
from kuryr.domain.ports import desired
from kuryr.domain.ports.mine import Mark
from kuryr.domain.ports.port import Port
from kuryr.stack.layout import SB_PORT
from tests.integration.domain_helpers import neutron_client
from tests.integration.host_binders import host_binders_fixture
from tests.netns import Namespaces, move_link, namespaces_fixture

pytestmark = pytest.mark.stack
host_binders = host_binders_fixture()

namespaces = namespaces_fixture("wt15o-")
PREFIX = "wt15-subport-"


def port_binding(port_id: str) -> dict[str, Any]:
    """The subport's OVN Port_Binding: its chassis (uuid or empty), up, parent and tag."""
    done = subprocess.run(
        [
            "ovn-sbctl",
            f"--db=tcp:127.0.0.1:{SB_PORT}",
            "--timeout=10",
            "--format=json",
            "--columns=chassis,up,parent_port,tag,options",
            "find",
            "Port_Binding",
            f"logical_port={port_id}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    )
    table = json.loads(done.stdout)
    if not table["data"]:
        return {}
    row = dict(zip(table["headings"], table["data"][0], strict=True))
    return {
        "claimed": row["chassis"] != ["set", []],
        "up": row["up"] == ["set", [True]] or row["up"] is True,
        "parent": row["parent_port"],
        "tag": row["tag"],
        "options": dict(row["options"][1]),
    }


@pytest.fixture
async def neutron(stack: Any) -> AsyncIterator[Neutron]:
    yield neutron_client(stack.neutron_url)


async def settled(port_id: str, within: float = 15.0) -> dict[str, Any]:
    """The Port_Binding once this chassis claimed it, or as it is after ``within``."""
    until = time.monotonic() + within
    while not (found := port_binding(port_id)).get("claimed") and time.monotonic() < until:
        await asyncio.sleep(0.3)
    return found


async def test_how_ovn_binds_a_subport_by_its_host(
    stack: Any, neutron: Neutron, host_binders: Binders, namespaces: Namespaces
) -> None:
    name = PREFIX + secrets.token_hex(3)
    net = await neutron.create("networks", {"name": name})
    made: list[str] = []
    trunk: dict[str, Any] = {}
    vif = None
    try:
        cidr = f"10.253.{secrets.randbelow(250)}.0/24"
        await neutron.create("subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr})
        parent_raw = await neutron.create(
            "ports",
            {"network_id": net["id"], "name": name, "binding:host_id": stack.chassis_hostname},
        )
        made.append(parent_raw["id"])
        parent = Port.from_neutron(parent_raw)
        vif = parent.vif(secrets.token_hex(32), int(net["mtu"]))
        await host_binders.for_vif_type("ovs").plug(vif, 15.0)
        await move_link(vif.container_ifname, namespaces.new())
        trunk = await neutron.create("trunks", {"port_id": parent.id, "name": name})
        seen: dict[str, Any] = {}
        vm = Mark("", parent.id)
        for seg, (label, host) in enumerate(
            [
                ("no host", ""),
                ("the VM's name", "wt15-vm-no-chassis"),
                ("the hypervisor", stack.chassis_hostname),
                ("nested Kuryr's mark", None),
            ],
            start=10,
        ):
            attrs = {"network_id": net["id"], "name": name, "device_owner": "compute:kuryr"}
            if host is None:
                attrs = desired.create_body(net["id"], [], vm, name)
                attrs.pop("fixed_ips")
            elif host:
                attrs["binding:host_id"] = host
            raw = await neutron.create("ports", attrs)
            made.append(raw["id"])
            before = raw["binding:vif_type"]
            await neutron.add_subports(
                trunk["id"],
                [{"port_id": raw["id"], "segmentation_type": "vlan", "segmentation_id": seg}],
            )
            binding = await settled(raw["id"])
            after = await neutron.show("ports", raw["id"]) or {}
            seen[label] = {
                "vif_type before": before,
                "vif_type after": after["binding:vif_type"],
                "status": after["status"],
                "device_owner": after["device_owner"],
                "ovn": binding,
            }
        print(json.dumps(seen, indent=1, sort_keys=True))
        # Seen on the stack (21:51 UTC, Dec 6): Neutron binds the VM's name as ovs all the same,
        # but ovn-controller will not claim the subport ("Not claiming lport ...,
        # requested-chassis <the VM's name>"): its traffic has nowhere to go.
        assert seen["no host"]["vif_type before"] == "unbound"
        assert seen["the VM's name"]["vif_type before"] == "ovs"
        assert seen["the hypervisor"]["vif_type before"] == "ovs"
        claimed = {label: bool(facts["ovn"].get("claimed")) for label, facts in seen.items()}
        assert claimed == {
            "no host": True,
            "the VM's name": False,
            "the hypervisor": True,
            "nested Kuryr's mark": True,
        }
        assert seen["nested Kuryr's mark"]["vif_type before"] == "unbound"
        # Found again by the mark alone in the real Neutron, whatever the trunk plugin made of
        # its owner; not by a daemon with this chassis.
        marked = await neutron.query("ports", vm.query())
        assert [p["id"] for p in marked] == [made[-1]]
        [port] = map(Port.from_neutron, marked)
        assert port.device_owner in ("compute:kuryr", naming.SUBPORT_OWNER) and vm.owns(port)
        assert not Mark(stack.chassis_hostname).owns(port)
        for label, facts in seen.items():
            assert (
                facts["ovn"].get("parent") == [parent.id] or facts["ovn"].get("parent") == parent.id
            ), label
    finally:
        if trunk:
            await neutron.delete("trunks", trunk["id"])
        if vif is not None:
            await host_binders.for_vif_type("ovs").unplug(vif)
        for port_id in made:
            await neutron.delete("ports", port_id)
        await neutron.delete("networks", net["id"])
