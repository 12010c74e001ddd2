"""A VM for nested-mode domain tests: the in-memory Neutron with a network, the VM's port (a
trunk's parent, bound to the hypervisor) and its trunk, an in-memory VM namespace, and the
``vlan`` binders a daemon inside it loads (kuryr.backends.binding.registry.load_nested)."""

from __future__ import annotations

from kuryr.backends.binding.base import Binder
from kuryr.backends.binding.macvlan import MacvlanBinder
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.registry import Binders
from kuryr.backends.binding.vlan import VlanBinder
from kuryr.backends.state import State
from tests.fakes.daemon import default_subnetpools
from tests.fakes.links import FakeLinks
from tests.fakes.neutron import FakeNeutron

VM_MAC = "fa:16:3e:00:15:01"


class NestedVm:
    def __init__(self, host: str = "vm1", macvlan: bool = False) -> None:
        self.neutron = FakeNeutron(seed=151)
        default_subnetpools(self.neutron)
        net = self.neutron.make("networks", {"name": "wt15-vm-net"})
        self.neutron.make(
            "subnets", {"network_id": net["id"], "cidr": "10.151.0.0/24", "ip_version": 4}
        )
        port = self.neutron.make(
            "ports",
            {"network_id": net["id"], "mac_address": VM_MAC, "binding:host_id": "hypervisor"},
        )
        self.trunk = self.neutron.make("trunks", {"port_id": port["id"]})
        self.links = FakeLinks(mac=VM_MAC)
        self.vm_port = port
        nic = VmNic(self.neutron, self.links, "eth0")
        self.binder = VlanBinder(self.neutron, self.links, nic)
        nested: Binder = (
            MacvlanBinder(self.neutron, self.links, nic, State.in_memory())
            if macvlan
            else self.binder
        )
        self.binders = Binders(host, {}, {}, self.links, None, nested=nested, nic=nic)

    def subports(self) -> dict[str, int]:
        trunk = self.neutron.get("trunks", self.trunk["id"]) or {}
        return {s["port_id"]: s["segmentation_id"] for s in trunk["sub_ports"]}

    def vlan_devices(self) -> set[str]:
        return {name for name, link in self.links.links.items() if link.kind == "vlan"}

    def pairs(self) -> set[tuple[str, str]]:
        port = self.neutron.get("ports", self.vm_port["id"]) or {}
        return {(p["ip_address"], p["mac_address"]) for p in port["allowed_address_pairs"]}

    def macvlan_devices(self) -> set[str]:
        return {name for name, link in self.links.links.items() if link.kind == "macvlan"}
