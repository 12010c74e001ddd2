"""The nested binders against the in-memory Neutron (its trunks and If-Match as Neutron Zed
has them) and an in-memory VM namespace: the VM's port found by its NIC's MAC, VLAN ids per
VM without collision and freed on release, subports added and removed, allowed address pairs
that no concurrent start loses."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.binding import macvlan
from kuryr.backends.binding.base import Vif
from kuryr.backends.binding.macvlan import LATE_WRITE_BOUND, MacvlanBinder, device_mac
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.registry import load
from kuryr.backends.binding.vlan import VlanBinder
from kuryr.backends.state import State
from kuryr.config import BindingConfig
from kuryr.domain.ports.port import Port
from kuryr.errors import BackendError
from tests.fakes.links import FakeLinks
from tests.fakes.neutron import FakeNeutron

VM_MAC = "fa:16:3e:00:00:01"
MTU = 1442


class Vm:
    """A Nova VM as the operator leaves it: its port (bound to the hypervisor), optionally a
    trunk's parent, and a tenant network for its containers."""

    def __init__(self, trunk: bool = True) -> None:
        self.neutron = FakeNeutron(seed=15)
        vm_net = self.neutron.make("networks", {"name": "wt15-vm-net"})
        self.neutron.make(
            "subnets", {"network_id": vm_net["id"], "cidr": "10.15.0.0/24", "ip_version": 4}
        )
        self.port = self.neutron.make(
            "ports",
            {
                "network_id": vm_net["id"],
                "mac_address": VM_MAC,
                "device_owner": "compute:nova",
                "device_id": "wt15-instance",
                "binding:host_id": "hypervisor",
            },
        )
        self.trunk = self.neutron.make("trunks", {"port_id": self.port["id"]}) if trunk else None
        self.net = self.neutron.make("networks", {"name": "wt15-containers"})
        self.neutron.make(
            "subnets", {"network_id": self.net["id"], "cidr": "10.16.0.0/24", "ip_version": 4}
        )
        self.links = FakeLinks(mac=VM_MAC)
        self.nic = VmNic(self.neutron, self.links, "eth0")
        self.state = State.in_memory()

    def container_port(self, **attrs: Any) -> Vif:
        raw = self.neutron.make(
            "ports", {"network_id": self.net["id"], "device_owner": naming.DEVICE_OWNER, **attrs}
        )
        return Port.from_neutron(raw).vif("", MTU)

    def subports(self) -> dict[str, int]:
        assert self.trunk is not None
        trunk = self.neutron.get("trunks", self.trunk["id"])
        assert trunk is not None
        return {s["port_id"]: s["segmentation_id"] for s in trunk["sub_ports"]}

    def pairs(self) -> set[tuple[str, str]]:
        port = self.neutron.get("ports", self.port["id"])
        assert port is not None
        return {(p["ip_address"], p["mac_address"]) for p in port["allowed_address_pairs"]}


# --- the VM's port --------------------------------------------------------------------------


async def test_the_vm_port_is_found_by_the_mac_of_link_iface() -> None:
    vm = Vm()
    found = await vm.nic.trunk()
    assert (found.id, found.trunk_id) == (vm.port["id"], vm.trunk and vm.trunk["id"])


async def test_a_nic_no_port_has_is_refused_saying_so() -> None:
    vm = Vm()
    vm.links = FakeLinks(mac="fa:16:3e:99:99:99")
    with pytest.raises(BackendError, match="no Neutron port has MAC fa:16:3e:99:99:99"):
        await VmNic(vm.neutron, vm.links, "eth0").port()


async def test_vlan_mode_needs_the_vm_port_to_be_a_trunk_parent() -> None:
    vm = Vm(trunk=False)
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    with pytest.raises(BackendError, match="no trunk's parent"):
        await binder.plug(vm.container_port(), 5)
    assert vm.links.links.keys() == {"eth0"}


# --- vlan -----------------------------------------------------------------------------------


async def test_a_plug_makes_a_subport_and_its_vlan_device_with_the_port_mac() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port()

    await binder.plug(vif, 5)

    assert vm.subports() == {vif.port_id: 1}
    link = vm.links.links[vif.container_ifname]
    assert (link.kind, link.vlan_id, link.peer) == ("vlan", 1, 2)
    assert (link.mac, link.mtu, link.up) == (vif.mac_address, MTU, False)
    assert await binder.ready(vif)
    port = vm.neutron.get("ports", vif.port_id)
    assert port is not None
    assert port["binding:profile"] == {"parent_name": vm.port["id"], "tag": 1}
    assert port["device_owner"] == naming.DEVICE_OWNER, "written back over trunk:subport"


async def test_concurrent_plugs_get_distinct_vlan_ids() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vifs = [vm.container_port() for _ in range(12)]

    await asyncio.gather(*(binder.plug(v, 5) for v in vifs))

    ids = vm.subports()
    assert set(ids) == {v.port_id for v in vifs}
    assert sorted(ids.values()) == list(range(1, 13))
    assert {vm.links.links[v.container_ifname].vlan_id for v in vifs} == set(range(1, 13))


async def test_an_unplug_removes_the_subport_frees_its_id_and_gives_the_owner_back() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    first, second = vm.container_port(), vm.container_port()
    await binder.plug(first, 5)
    await binder.plug(second, 5)

    await binder.unplug(first)

    assert vm.subports() == {second.port_id: 2}
    assert first.container_ifname not in vm.links.links
    port = vm.neutron.get("ports", first.port_id)
    assert port is not None
    assert port["device_owner"] == naming.DEVICE_OWNER, "the trunk plugin emptied it"
    third = vm.container_port()
    await binder.plug(third, 5)
    assert vm.subports()[third.port_id] == 1, "the freed id is given again"
    await binder.unplug(first)  # idempotent


async def test_ids_other_subports_hold_are_never_taken() -> None:
    vm = Vm()
    assert vm.trunk is not None
    # Made before this daemon started (a restart), and one made behind its back.
    before = vm.container_port()
    await vm.neutron.add_subports(
        vm.trunk["id"],
        [{"port_id": before.port_id, "segmentation_type": "vlan", "segmentation_id": 1}],
    )
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    first = vm.container_port()
    await binder.plug(first, 5)
    behind = vm.container_port()
    await vm.neutron.add_subports(
        vm.trunk["id"],
        [{"port_id": behind.port_id, "segmentation_type": "vlan", "segmentation_id": 3}],
    )
    second, third = vm.container_port(), vm.container_port()
    await binder.plug(second, 5)
    await binder.plug(third, 5)

    assert vm.subports() == {
        before.port_id: 1,
        first.port_id: 2,
        behind.port_id: 3,
        second.port_id: 4,
        third.port_id: 5,
    }


async def test_after_a_restart_a_subport_and_its_device_are_ready_as_they_are() -> None:
    vm = Vm()
    vif = vm.container_port()
    await VlanBinder(vm.neutron, vm.links, vm.nic).plug(vif, 5)

    again = VlanBinder(vm.neutron, vm.links, VmNic(vm.neutron, vm.links, "eth0"))

    assert await again.ready(vif)
    assert again.ids.held() == {vif.port_id: 1}


async def test_a_repeated_plug_keeps_the_subport_neutron_holds() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port()
    await binder.plug(vif, 5)
    # The daemon died after the subport was added; a new one plugs the port again.
    again = VlanBinder(vm.neutron, vm.links, VmNic(vm.neutron, vm.links, "eth0"))
    del vm.links.links[vif.container_ifname]

    await again.plug(vif, 5)

    assert vm.subports() == {vif.port_id: 1}
    assert vm.links.links[vif.container_ifname].vlan_id == 1


async def test_a_port_with_a_device_id_cannot_become_a_subport() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port(device_id="e" * 64)

    with pytest.raises(BackendError, match="has a device_id"):
        await binder.plug(vif, 5)

    assert vm.subports() == {}
    assert binder.ids.held() == {}


async def test_a_failed_device_leaves_no_subport() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port()
    vm.links.refuse = "ENOMEM"

    with pytest.raises(BackendError):
        await binder.plug(vif, 5)

    assert vm.subports() == {}
    assert binder.ids.held() == {}


async def test_plugged_lists_the_subports_and_remove_takes_one_off_by_name() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port()
    await binder.plug(vif, 5)

    assert await binder.plugged() == {vif.port_id: vif.container_ifname}
    await binder.remove(vif.container_ifname)

    assert vm.subports() == {}
    assert await binder.plugged() == {}


async def test_neutron_refuses_to_delete_a_subport() -> None:
    vm = Vm()
    binder = VlanBinder(vm.neutron, vm.links, vm.nic)
    vif = vm.container_port()
    await binder.plug(vif, 5)

    assert binder.unplug_before_delete
    with pytest.raises(Exception, match="PortInUseAsSubPort"):
        await vm.neutron.delete("ports", vif.port_id)
    await binder.unplug(vif)
    assert await vm.neutron.delete("ports", vif.port_id)


# --- macvlan --------------------------------------------------------------------------------


async def test_a_macvlan_plug_adds_the_pair_and_the_device() -> None:
    vm = Vm(trunk=False)
    binder = MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state)
    vif = vm.container_port()

    await binder.plug(vif, 5)

    mac = device_mac(vif.mac_address)
    assert mac != vif.mac_address and mac.startswith("fe:16:3e:"), "not the port's own MAC"
    assert vm.pairs() == {(vif.ips[0], mac)}
    link = vm.links.links[vif.container_ifname]
    assert (link.kind, link.peer, link.mac, link.mtu) == ("macvlan", 2, mac, MTU)
    assert await binder.ready(vif)
    assert await binder.plugged() == {vif.port_id: vif.container_ifname}


async def test_concurrent_macvlan_starts_and_stops_lose_no_pair() -> None:
    vm = Vm(trunk=False)
    binder = MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state)
    staying = [vm.container_port() for _ in range(6)]
    leaving = [vm.container_port() for _ in range(6)]
    await asyncio.gather(*(binder.plug(v, 5) for v in leaving))

    await asyncio.gather(
        *(binder.plug(v, 5) for v in staying), *(binder.unplug(v) for v in leaving)
    )

    assert vm.pairs() == {(v.ips[0], device_mac(v.mac_address)) for v in staying}
    # One daemon's changes go one at a time: one PUT per change, none refused. Neutron checks
    # If-Match before its transaction, so two PUTs of one revision can both pass it, and the
    # later then failed live as a DuplicateAddressPairInRequest of pairs both lists held.
    assert vm.neutron.calls[("PUT", "ports")] == 18


async def test_concurrent_writers_in_two_daemons_lose_no_pair() -> None:
    """Two daemons' binders on one VM port (a restart's overlap): If-Match, then a read
    again, keeps every pair."""
    vm = Vm(trunk=False)
    binders = [MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state) for _ in range(2)]
    vifs = [vm.container_port() for _ in range(8)]

    await asyncio.gather(*(binders[i % 2].plug(v, 5) for i, v in enumerate(vifs)))

    assert vm.pairs() == {(v.ips[0], device_mac(v.mac_address)) for v in vifs}
    # Each refused write (412) was read and made again: more PUTs than changes.
    assert vm.neutron.calls[("PUT", "ports")] > 8


async def test_neutron_refuses_a_list_with_a_duplicate_pair() -> None:
    vm = Vm(trunk=False)
    pair = {"ip_address": "10.15.0.50", "mac_address": "fe:16:3e:00:00:09"}
    with pytest.raises(BackendError, match="DuplicateAddressPairInRequest"):
        await vm.neutron.update("ports", vm.port["id"], {"allowed_address_pairs": [pair, pair]})


async def test_a_write_without_if_match_would_lose_pairs() -> None:
    """Why the revision is sent: the same concurrent writes, unconditional, lose pairs."""
    vm = Vm(trunk=False)
    vifs = [vm.container_port() for _ in range(6)]
    port_id = vm.port["id"]

    async def add_blindly(vif: Vif) -> None:
        raw = await vm.neutron.show("ports", port_id)
        assert raw is not None
        pairs = [
            *raw["allowed_address_pairs"],
            {"ip_address": vif.ips[0], "mac_address": vif.mac_address},
        ]
        await vm.neutron.update("ports", port_id, {"allowed_address_pairs": pairs})

    await asyncio.gather(*(add_blindly(v) for v in vifs))

    assert len(vm.pairs()) < len(vifs)


async def test_pairs_are_recorded_and_only_the_recorded_ones_are_traces() -> None:
    vm = Vm(trunk=False)
    binder = MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state)
    vif = vm.container_port()
    vrrp = {"ip_address": "10.15.0.200", "mac_address": "00:00:5e:00:01:01"}
    await vm.neutron.update("ports", vm.port["id"], {"allowed_address_pairs": [vrrp]})

    await binder.plug(vif, 5)

    assert await binder.traces() == {f"{vif.ips[0]} {device_mac(vif.mac_address)}": vif.port_id}


async def test_a_record_is_forgotten_once_no_late_write_can_bring_its_pair_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vm = Vm(trunk=False)
    binder = MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state)
    vif = vm.container_port()
    await binder.plug(vif, 5)
    await binder.unplug(vif)

    assert await binder.traces() == {}
    assert [r.port_id for r in vm.state.vm_pairs()] == [vif.port_id], "kept: a write may come"
    later = time.time() + LATE_WRITE_BOUND + 1
    monkeypatch.setattr(macvlan, "time", SimpleNamespace(time=lambda: later))
    assert await binder.traces() == {}
    assert vm.state.vm_pairs() == []


async def test_remove_by_name_drops_the_pairs_of_the_device_mac() -> None:
    vm = Vm(trunk=False)
    binder = MacvlanBinder(vm.neutron, vm.links, vm.nic, vm.state)
    vif, other = vm.container_port(), vm.container_port()
    await binder.plug(vif, 5)
    await binder.plug(other, 5)

    await binder.remove(vif.container_ifname)

    assert vm.pairs() == {(other.ips[0], device_mac(other.mac_address))}


# --- the registry -----------------------------------------------------------------------------


async def test_nested_mode_serves_every_vif_type_with_its_one_binder() -> None:
    vm = Vm()
    config = BindingConfig(host="vm1", driver="vlan", link_iface="eth0")

    binders = await load(config, vm.neutron)

    assert isinstance(binders.nested, VlanBinder)
    for vif_type in ("ovs", "unbound", "binding_failed"):
        assert binders.for_vif_type(vif_type) is binders.nested
    assert binders.host == "vm1" and binders.ovsdb is None
    await binders.close()


async def test_macvlan_mode_records_its_pairs_in_the_state_it_is_given() -> None:
    vm = Vm(trunk=False)
    config = BindingConfig(host="vm1", driver="macvlan", link_iface="eth0")
    with pytest.raises(BackendError, match="needs the state file"):
        await load(config, vm.neutron)

    binders = await load(config, vm.neutron, vm.state)

    assert isinstance(binders.nested, MacvlanBinder)
    await binders.close()


async def test_nested_mode_without_a_neutron_client_is_refused() -> None:
    with pytest.raises(BackendError, match="needs a Neutron client"):
        await load(BindingConfig(driver="macvlan", link_iface="eth0"))
