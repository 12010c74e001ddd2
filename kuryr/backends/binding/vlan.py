"""Nested ``vlan`` binding: each container's port a subport of the VM's trunk.

Plugging a port makes it a subport of the trunk whose parent is the VM's port, with a VLAN id
of its own (kuryr.backends.binding.segmentation), then creates the 802.1Q subinterface of the
VM's NIC with that id, the port's MAC and the network's MTU, named as a veth's container end
(``t_c<port id[:11]>``) so Docker moves it into the container. On the hypervisor, ML2/OVN
gives the subport its parent and tag: ovn-controller tags and untags its traffic.
Unplugging deletes the subinterface, takes the subport off the trunk and frees its id. The
trunk plugin makes a subport's ``device_owner`` ``trunk:subport``, and ``""`` once removed:
Kuryr's (``compute:kuryr``, which its pools, recovery and reconciliation look for) is written
back both times, one PUT each (a port plugged ahead pays it off the start path).

Neutron refuses a subport that has a ``device_id`` (PortInUse): a port is plugged while it
is a pool port (ahead) or at CreateEndpoint, before its bookkeeping is recorded
(``plug_before_bookkeeping``). Neutron also refuses to delete a
port that is a subport (PortInUseAsSubPort): it is unplugged before it is deleted
(``unplug_before_delete``).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from kuryr import naming
from kuryr.backends.binding.base import CONTAINER_IF_PREFIX, Binder, Vif
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.segmentation import SegmentationIds
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.errors import BackendError

SEGMENTATION_TYPE = "vlan"
# Ids refused as duplicates (someone else's subports) before the plug gives up.
_ATTEMPTS = 8


def subport(port_id: str, seg_id: int) -> dict[str, object]:
    return {"port_id": port_id, "segmentation_type": SEGMENTATION_TYPE, "segmentation_id": seg_id}


class VlanBinder(Binder):
    # Nested mode plugs every port this way, whatever Neutron's vif_type says of the
    # hypervisor's side (registry.Binders.nested).
    vif_types: ClassVar[frozenset[str]] = frozenset()
    unplug_before_delete: ClassVar[bool] = True
    plug_before_bookkeeping: ClassVar[bool] = True
    plugs_unbound: ClassVar[bool] = True
    # Neutron runs one trunk's add_subports one after the other (live, a dual-stack network's
    # pool in the VM: four at once answered after 1.9, 3.8, 6.0 and 8.4 s). Side by side they
    # only queue there, where a started plug ahead that a container claims cannot overtake
    # the others, and its CreateEndpoint ran out of vif_plugging_timeout (10 s). One at a
    # time, a claimed port's plug waits for one other at most (a queued one is dropped and
    # the Join plugs it: kuryr.domain.ports.prewire).
    plugs_ahead_at_once: ClassVar[int | None] = 1

    def __init__(self, neutron: NeutronApi, netlink: Netlink, nic: VmNic) -> None:
        self._neutron = neutron
        self._netlink = netlink
        self._nic = nic
        self.ids = SegmentationIds()
        self._loaded = False
        self._load_lock = asyncio.Lock()

    async def _trunk_id(self) -> str:
        """The trunk's id; its subports' VLAN ids loaded on first use."""
        async with self._load_lock:
            port = await self._nic.trunk(fresh=not self._loaded)
            if not self._loaded:
                self.ids.load(port.subports)
                self._loaded = True
        assert port.trunk_id is not None  # VmNic.trunk checks it
        return port.trunk_id

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        trunk_id = await self._trunk_id()
        seg_id = await self._add_subport(trunk_id, vif.port_id)
        try:
            await self._owned(vif.port_id)
            await self._netlink.create_sublink(
                vif.container_ifname, await self._nic.index(), vif.mac_address, vif.mtu, seg_id
            )
        except BaseException:
            await self.undo_plug(vif)
            raise

    async def _add_subport(self, trunk_id: str, port_id: str) -> int:
        for _ in range(_ATTEMPTS):
            seg_id = self.ids.allocate(port_id)
            try:
                await self._neutron.add_subports(trunk_id, [subport(port_id, seg_id)])
                return seg_id
            except NeutronError as exc:
                if exc.neutron_type == "DuplicateSubPort":
                    self.ids.refused(port_id, seg_id)
                    continue
                if exc.neutron_type == "TrunkPortInUse":
                    return await self._already_subport(port_id, exc)
                self.ids.release(port_id)
                if exc.neutron_type == "PortInUse":
                    raise BackendError(
                        f"port {port_id} cannot become a subport: it has a device_id "
                        "(Neutron takes only unused ports into a trunk)"
                    ) from exc
                raise
        self.ids.release(port_id)
        raise BackendError(
            f"trunk {trunk_id}: {_ATTEMPTS} VLAN ids in a row were taken by subports Kuryr "
            "did not make"
        )

    async def _already_subport(self, port_id: str, exc: NeutronError) -> int:
        """A repeated plug (after a crash, or a plug cut short): the port may be on this
        trunk already, with the id Neutron holds."""
        port = await self._nic.trunk(fresh=True)
        held = port.subports.get(port_id)
        if held is None:
            self.ids.release(port_id)
            raise BackendError(f"port {port_id} is a subport of another trunk") from exc
        self.ids.adopt(port_id, held)
        return held

    async def ready(self, vif: Vif) -> bool:
        if not self._loaded:
            await self._trunk_id()  # after a restart: the trunk's ids, read once
        seg_id = self.ids.of(vif.port_id)
        link = await self._netlink.link(vif.container_ifname)
        if seg_id is None or link is None:
            return False
        return (
            link.kind == "vlan"
            and link.vlan_id == seg_id
            and link.peer == await self._nic.index()
            and link.mac.lower() == vif.mac_address.lower()
            and link.mtu == vif.mtu
            and not (link.up or link.promisc or link.allmulti or link.alias)
        )

    async def unplug(self, vif: Vif) -> None:
        await self._netlink.delete_link(vif.container_ifname)
        await self._remove_subport(vif.port_id)

    async def _remove_subport(self, port_id: str) -> None:
        trunk_id = await self._trunk_id()
        try:
            await self._neutron.remove_subports(trunk_id, [port_id])
        except NeutronError as exc:
            if not exc.not_found:
                raise
        self.ids.release(port_id)
        await self._owned(port_id)

    async def _owned(self, port_id: str) -> None:
        """Kuryr's device_owner back on a port the trunk plugin changed (module doc)."""
        try:
            await self._neutron.update("ports", port_id, {"device_owner": naming.DEVICE_OWNER})
        except NeutronError as exc:
            if not exc.not_found:
                raise

    async def plugged(self) -> dict[str, str]:
        """The trunk's subports (Neutron's word, read afresh), by the name of their
        subinterface."""
        await self._trunk_id()
        port = await self._nic.trunk(fresh=True)
        return {port_id: CONTAINER_IF_PREFIX + port_id[:11] for port_id in port.subports}

    async def remove(self, host_ifname: str) -> None:
        """A subinterface known by name only: its subport goes too."""
        await self._netlink.delete_link(host_ifname)
        port = await self._nic.trunk(fresh=True)
        for port_id in port.subports:
            if CONTAINER_IF_PREFIX + port_id[:11] == host_ifname:
                await self._remove_subport(port_id)

    async def close(self) -> None:
        """The netlink socket belongs to the registry, the Neutron client to the daemon."""
