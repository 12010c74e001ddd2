"""Nested ``vlan`` binding through an OVS bridge in the VM, for kernels without 802.1Q.

``[binding] driver = vlan`` with ``vlan_device = ovs``: the VM runs Open vSwitch with a
bridge (``integration_bridge``) whose uplink is the VM's NIC. Each container's port becomes a
trunk subport exactly as in :mod:`kuryr.backends.binding.vlan` (its VLAN id, its
``device_owner``, its release); only the container's device differs: instead of the NIC's
802.1Q subinterface it is a veth whose VM end (``tap<port id>``) is an access port of the
bridge tagged with the subport's VLAN id, so the bridge sends the container's frames out of
the NIC with that tag, and strips it from the frames that come back. The stack's simulated
VMs use it (this machine's kernel has no 8021q module; kuryr.stack.vmswitch); a real VM
without 802.1Q could too.
"""

from __future__ import annotations

from typing import Any

from kuryr.backends import ethtool
from kuryr.backends.binding.base import HOST_IF_PREFIX, Vif, veth_intact
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.ovs import OWNER_KEY
from kuryr.backends.binding.vlan import VlanBinder
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron_api import NeutronApi
from kuryr.backends.ovsdb import OvsApi, Ovsdb
from kuryr.errors import BackendError


class VlanOvsBinder(VlanBinder):
    def __init__(
        self,
        neutron: NeutronApi,
        netlink: Netlink,
        nic: VmNic,
        ovsdb: Ovsdb,
        bridge: str,
        tx_checksum_offload: bool = True,
    ) -> None:
        super().__init__(neutron, netlink, nic)
        self._ovsdb = ovsdb
        self._bridge = bridge
        self._tx_checksum_offload = tx_checksum_offload
        # Ports whose access port this daemon tagged: ready() reads no OVSDB column it does
        # not monitor (a restarted daemon plugs its ports again, keeping their VLAN ids).
        self._tagged: set[str] = set()

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        trunk_id = await self._trunk_id()
        seg_id = await self._add_subport(trunk_id, vif.port_id)
        try:
            await self._owned(vif.port_id)
            await self._attach(vif, seg_id)
        except BaseException:
            await self.undo_plug(vif)
            raise

    async def _attach(self, vif: Vif, seg_id: int) -> None:
        name = vif.host_ifname
        await self._netlink.create_veth(name, vif.container_ifname, vif.mac_address, vif.mtu)
        if not self._tx_checksum_offload:
            ethtool.set_tx_checksum(vif.container_ifname, False)

        def add(api: OvsApi) -> list[Any]:
            return [
                api.del_port(name, if_exists=True),
                # What reconciliation looks for on OVS (kuryr.ops.reconcile_vifs), as the
                # OVS binder marks its interfaces.
                api.add_port(self._bridge, name, may_exist=False, external_ids=_ids(vif)),
            ]

        await self._ovsdb.transact(add)
        # A second transaction: the Port row must exist before its tag can be set by name.
        await self._ovsdb.transact(lambda api: [api.db_set("Port", name, ("tag", seg_id))])
        self._tagged.add(vif.port_id)

    async def ready(self, vif: Vif) -> bool:
        if not self._loaded:
            await self._trunk_id()  # after a restart: the trunk's ids, read once
        if self.ids.of(vif.port_id) is None or vif.port_id not in self._tagged:
            return False
        state = await self._ovsdb.interface(vif.host_ifname)
        if state is None or state.external_ids.get("iface-id") != vif.port_id:
            return False
        return await veth_intact(self._netlink, vif)

    async def unplug(self, vif: Vif) -> None:
        await self._detach(vif.host_ifname)
        self._tagged.discard(vif.port_id)
        await self._remove_subport(vif.port_id)

    async def _detach(self, host_ifname: str) -> None:
        await self._ovsdb.transact(lambda api: [api.del_port(host_ifname, if_exists=True)])
        await self._netlink.delete_link(host_ifname)

    async def plugged(self) -> dict[str, str]:
        """The trunk's subports (Neutron's word, read afresh), by their access port's name."""
        await self._trunk_id()
        port = await self._nic.trunk(fresh=True)
        return {port_id: HOST_IF_PREFIX + port_id[:11] for port_id in port.subports}

    async def remove(self, host_ifname: str) -> None:
        """An access port known by name only: its subport goes too."""
        await self._detach(host_ifname)
        port = await self._nic.trunk(fresh=True)
        for port_id in port.subports:
            if HOST_IF_PREFIX + port_id[:11] == host_ifname:
                self._tagged.discard(port_id)
                await self._remove_subport(port_id)

    async def close(self) -> None:
        """The OVSDB connection and netlink socket belong to the registry."""


def _ids(vif: Vif) -> dict[str, str]:
    return {"iface-id": vif.port_id, OWNER_KEY: vif.endpoint_id}


async def connect(remote: str) -> Ovsdb:
    try:
        return await Ovsdb.connect(remote)
    except BackendError as e:
        raise BackendError(f"[binding] vlan_device = ovs needs the VM's OVSDB: {e}") from e
