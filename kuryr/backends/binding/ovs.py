"""OVS binding (ML2/OVN and the OVS agent): the veth's host end on the integration bridge.

The Interface carries the external_ids Neutron backends look for (``iface-id`` = Neutron port
id, ``attached-mac``, ``iface-status``, ``vm-uuid``) and Kuryr's owner marker, so the daemon
can list what it plugged. Readiness is OVN's ``ovn-installed=true`` on that Interface,
awaited as an OVSDB event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from kuryr.backends import ethtool
from kuryr.backends.binding.base import Binder, Vif, veth_intact
from kuryr.backends.netlink import Netlink
from kuryr.backends.ovsdb import InterfaceState, OvsApi, Ovsdb
from kuryr.errors import BackendError

OWNER_KEY = "kuryr-endpoint"
OVN_INSTALLED = "ovn-installed"
# A re-attachment waits this long for ovn-controller to release the port (it takes ~10 ms).
_RELEASE_WAIT = 5.0


def interface_external_ids(vif: Vif) -> dict[str, str]:
    return {
        "iface-id": vif.port_id,
        "attached-mac": vif.mac_address,
        "iface-status": "active",
        "vm-uuid": vif.endpoint_id,
        OWNER_KEY: vif.endpoint_id,
    }


def is_settled(state: InterfaceState) -> bool:
    """OVN has wired the interface, or OVS could not open it: either way, stop waiting."""
    return state.external_ids.get(OVN_INSTALLED) == "true" or bool(state.error)


def plugged_ports(interfaces: list[InterfaceState]) -> dict[str, str]:
    """Neutron port id -> interface name, for the interfaces carrying Kuryr's owner marker."""
    return {
        state.external_ids["iface-id"]: state.name
        for state in interfaces
        if OWNER_KEY in state.external_ids and "iface-id" in state.external_ids
    }


class OvsBinder(Binder):
    vif_types: ClassVar[frozenset[str]] = frozenset({"ovs"})

    def __init__(
        self,
        ovsdb: Ovsdb,
        netlink: Netlink,
        integration_bridge: str,
        tx_checksum_offload: bool = True,
    ) -> None:
        self._ovsdb = ovsdb
        self._netlink = netlink
        self._bridge = integration_bridge
        # Set on the container end, whose features follow it into the container.
        self._tx_checksum_offload = tx_checksum_offload

    def _bridge_for(self, vif: Vif) -> str:
        # The OVS agent names another bridge for trunk ports; OVN always uses br-int.
        return str(vif.vif_details.get("bridge_name") or self._bridge)

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        """Plug and wait for ``ovn-installed``; on failure nothing is left behind."""
        try:
            await self._plug(vif, ready_timeout)
        except BaseException:
            await self.undo_plug(vif)
            raise

    async def _plug(self, vif: Vif, ready_timeout: float) -> None:
        name = vif.host_ifname
        bridge = self._bridge_for(vif)
        await self._netlink.create_veth(name, vif.container_ifname, vif.mac_address, vif.mtu)
        if not self._tx_checksum_offload:
            ethtool.set_tx_checksum(vif.container_ifname, False)
        # Watch before committing, so ovn-controller cannot be faster than the watch.
        watch = self._ovsdb.watch_interface(name, is_settled)
        try:

            def commands(api: OvsApi) -> list[Any]:
                # Replacing any port left by an earlier attempt gives a fresh Interface row,
                # whose ovn-installed can only come from this plug.
                return [
                    api.del_port(name, if_exists=True),
                    api.add_port(
                        bridge, name, may_exist=False, external_ids=interface_external_ids(vif)
                    ),
                ]

            await self._ovsdb.transact(commands)
            watch.offer(await self._ovsdb.interface(name))
            try:
                state = await asyncio.wait_for(watch.future, ready_timeout)
            except TimeoutError:
                raise BackendError(
                    f"port {vif.port_id} not wired by OVN within {ready_timeout:g}s: "
                    f"ovn-controller did not set {OVN_INSTALLED} on interface {name} "
                    f"(bridge {bridge}); check that the port's binding:host_id is this "
                    "chassis and that ovn-controller is running"
                ) from None
        finally:
            watch.cancel()
        if state.error:
            raise BackendError(
                f"port {vif.port_id}: OVS cannot attach interface {name}: {state.error}"
            )

    async def ready(self, vif: Vif) -> bool:
        state = await self._ovsdb.interface(vif.host_ifname)
        if state is None or state.error or state.external_ids.get(OVN_INSTALLED) != "true":
            return False
        ids = state.external_ids
        if ids.get("iface-id") != vif.port_id:
            return False
        if ids.get("attached-mac", "").lower() != vif.mac_address.lower():
            return False
        if not await veth_intact(self._netlink, vif):
            return False
        # A VIF plugged before the option changed is plugged again.
        return self._tx_checksum_offload or not ethtool.tx_checksum(vif.container_ifname)

    async def diagnose(self, vif: Vif) -> str | None:
        name = vif.host_ifname
        state = await self._ovsdb.interface(name)
        if state is None:
            return f"interface {name} is not on OVS (something removed it)"
        if state.error:
            return f"OVS cannot open interface {name}: {state.error}"
        named = state.external_ids.get("iface-id")
        if named is None:
            return f"interface {name} has no iface-id: OVN binds no port to it"
        if named != vif.port_id:
            return f"interface {name} names another port (iface-id {named})"
        if state.external_ids.get(OVN_INSTALLED) != "true":
            return (
                f"ovn-controller has not wired interface {name} (no {OVN_INSTALLED}): "
                "is it running, and is the port's binding:host_id this chassis?"
            )
        return None

    async def rewire(self, vif: Vif, ready_timeout: float) -> None:
        """Without the iface-id ovn-controller releases the port (and drops ``ovn-installed``);
        given back, it claims the port again: OVN reports it down, then up. The host end stays
        on the bridge and the container end in its container throughout."""
        name = vif.host_ifname
        if await self._ovsdb.interface(name) is None:
            bridge = self._bridge_for(vif)
            await self._ovsdb.transact(
                lambda api: [
                    api.add_port(
                        bridge, name, may_exist=True, external_ids=interface_external_ids(vif)
                    )
                ]
            )
        else:
            await self._set_iface_id(name, None, lambda s: OVN_INSTALLED not in s.external_ids)
        state = await self._set_iface_id(name, vif.port_id, is_settled, ready_timeout)
        if state is None or state.error or state.external_ids.get(OVN_INSTALLED) != "true":
            raise BackendError(
                f"port {vif.port_id}: ovn-controller did not wire interface {name} again "
                f"within {ready_timeout:g}s"
            )

    async def _set_iface_id(
        self,
        name: str,
        port_id: str | None,
        wanted: Callable[[InterfaceState], bool],
        timeout: float = _RELEASE_WAIT,
    ) -> InterfaceState | None:
        """Set (or, with None, remove) the interface's iface-id; the interface's state once
        ``wanted`` holds, None when it did not within ``timeout``."""
        watch = self._ovsdb.watch_interface(name, wanted)
        try:

            def commands(api: OvsApi) -> list[Any]:
                if port_id is None:
                    return [api.db_remove("Interface", name, "external_ids", "iface-id")]
                return [api.db_set("Interface", name, ("external_ids", {"iface-id": port_id}))]

            await self._ovsdb.transact(commands)
            watch.offer(await self._ovsdb.interface(name))
            try:
                return await asyncio.wait_for(watch.future, timeout)
            except TimeoutError:
                return None
        finally:
            watch.cancel()

    async def unplug(self, vif: Vif) -> None:
        await self.remove(vif.host_ifname)

    async def remove(self, host_ifname: str) -> None:
        await self._ovsdb.transact(lambda api: [api.del_port(host_ifname, if_exists=True)])
        # Gone already when its peer was moved into a namespace that has since died.
        await self._netlink.delete_link(host_ifname)

    async def plugged(self) -> dict[str, str]:
        return plugged_ports(await self._ovsdb.interfaces())

    async def close(self) -> None:
        """The shared OVSDB connection and netlink socket belong to the registry."""
