"""What the nested binders (containers inside a Nova VM) share: the VM's NIC and its port.

Inside a VM there is no br-int: the VM has one Neutron port, seen as the NIC ``[binding]
link_iface``. That port is found by the NIC's MAC (as kuryr-libnetwork finds it); in ``vlan``
mode it is a trunk's parent (the operator makes the trunk, README: Nested mode), in
``macvlan`` mode its allowed address pairs carry the containers' addresses. The port is read
once and kept: what the binders change of it (subports, pairs) they track themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron_api import NeutronApi
from kuryr.errors import BackendError


@dataclass(frozen=True)
class VmPort:
    """The VM's Neutron port, as far as nested binding needs it."""

    id: str
    mac_address: str
    network_id: str
    trunk_id: str | None
    subports: Mapping[str, int] = field(default_factory=dict)  # port id -> segmentation id

    @classmethod
    def from_neutron(cls, raw: Mapping[str, Any]) -> VmPort:
        details = raw.get("trunk_details") or {}
        return cls(
            id=str(raw["id"]),
            mac_address=str(raw.get("mac_address") or ""),
            network_id=str(raw.get("network_id") or ""),
            trunk_id=details.get("trunk_id"),
            subports={
                str(s["port_id"]): int(s["segmentation_id"]) for s in details.get("sub_ports", [])
            },
        )


def the_vm_port(ports: Sequence[Mapping[str, Any]], mac: str, link_iface: str) -> VmPort:
    """The one port with the NIC's MAC; an error saying what is wrong otherwise."""
    if not ports:
        raise BackendError(
            f"no Neutron port has MAC {mac} of [binding] link_iface {link_iface}: is this "
            "the NIC of a Nova VM, and does Kuryr's Neutron user see the VM's project?"
        )
    if len(ports) > 1:
        ids = ", ".join(sorted(str(p["id"]) for p in ports))
        raise BackendError(
            f"several Neutron ports have MAC {mac} of [binding] link_iface {link_iface} "
            f"({ids}): cannot tell which one is this VM's"
        )
    return VmPort.from_neutron(ports[0])


class VmNic:
    """The VM's NIC (its ifindex in the VM's namespace) and its Neutron port, looked up on
    first use: the daemon starts even while Neutron is away."""

    def __init__(self, neutron: NeutronApi, netlink: Netlink, link_iface: str) -> None:
        self._neutron = neutron
        self._netlink = netlink
        self.link_iface = link_iface
        self._port: VmPort | None = None
        self._index: int | None = None
        self._lock = asyncio.Lock()

    async def index(self) -> int:
        if self._index is None:
            link = await self._netlink.link(self.link_iface)
            if link is None:
                raise BackendError(f"[binding] link_iface {self.link_iface} does not exist")
            self._index = link.index
        return self._index

    async def port(self, fresh: bool = False) -> VmPort:
        """The VM's port; ``fresh`` reads it again from Neutron."""
        async with self._lock:
            if self._port is None or fresh:
                link = await self._netlink.link(self.link_iface)
                if link is None:
                    raise BackendError(f"[binding] link_iface {self.link_iface} does not exist")
                self._index = link.index
                raw = await self._neutron.query("ports", {"mac_address": link.mac})
                self._port = the_vm_port(raw, link.mac, self.link_iface)
            return self._port

    async def trunk(self, fresh: bool = False) -> VmPort:
        """The VM's port, which must be a trunk's parent."""
        port = await self.port(fresh)
        if port.trunk_id is None:
            raise BackendError(
                f"the VM's port {port.id} (MAC {port.mac_address}) is no trunk's parent: "
                "[binding] driver = vlan needs the operator to make one "
                "(openstack network trunk create --parent-port <port>)"
            )
        return port
