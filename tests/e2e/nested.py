"""What the nested-mode end-to-end tests share: the simulated VMs of ``kuryr stack up --vms``
(Kuryr in nested mode inside each, kuryr.stack.vms) as ``kuryr stack hosts --json`` lists
them, and what Neutron says of a VM's port: its trunk's subports and its allowed address
pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.e2e.helpers import Neutron
from tests.e2e.multihost import Host, hosts_from

# The machine's own host and two VMs: vm1 (macvlan) and vm2 (vlan), ``--vm-mode mixed``.
VMS = 2


@dataclass(frozen=True)
class NestedVm:
    """One simulated VM: a host for Docker (its own dockerd and Kuryr daemon), its nested
    mode, and its Neutron port (a trunk's parent)."""

    host: Host
    mode: str
    port_id: str
    trunk_id: str

    def subports(self, neutron: Neutron) -> dict[str, int]:
        """The trunk's subports: port id -> VLAN id."""
        trunk = neutron.show("trunks", self.trunk_id)
        assert trunk is not None, f"{self.host.name}'s trunk {self.trunk_id} is gone"
        return {s["port_id"]: int(s["segmentation_id"]) for s in trunk["sub_ports"]}

    def pairs(self, neutron: Neutron) -> set[tuple[str, str]]:
        """The VM port's allowed address pairs: (address, MAC)."""
        vm_port = neutron.show("ports", self.port_id)
        assert vm_port is not None, f"{self.host.name}'s port {self.port_id} is gone"
        return {
            (p["ip_address"], p["mac_address"].lower()) for p in vm_port["allowed_address_pairs"]
        }


def vms_from(described: list[dict[str, Any]]) -> list[NestedVm]:
    rows = [row for row in described if row["kind"] == "vm"]
    return [
        NestedVm(host, str(row["mode"]), str(row["port_id"]), str(row["trunk_id"]))
        for host, row in zip(hosts_from(rows), rows, strict=True)
    ]
