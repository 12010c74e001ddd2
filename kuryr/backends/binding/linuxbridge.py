"""Linux bridge binding (ML2/linuxbridge): the veth's host end on the network's bridge.

The linuxbridge agent names a network's bridge ``brq<network id[:11]>`` and wires it to the
physical or VXLAN side; a bridge that does not exist yet is created here, and the agent
picks it up. The host end's alias records the Neutron port id, so plugged VIFs can be
listed without any local state.
"""

from __future__ import annotations

from typing import ClassVar

from kuryr.backends.binding.base import Binder, Vif, veth_intact
from kuryr.backends.netlink import Netlink

BRIDGE_PREFIX = "brq"
ALIAS_PREFIX = "kuryr-port:"
_ID_CHARS = 11


def bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + network_id[:_ID_CHARS]


def _bridge_for(vif: Vif) -> str:
    return str(vif.vif_details.get("bridge_name") or bridge_name(vif.network_id))


class LinuxBridgeBinder(Binder):
    vif_types: ClassVar[frozenset[str]] = frozenset({"bridge"})

    def __init__(self, netlink: Netlink) -> None:
        self._netlink = netlink

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        """Enslave the host end; traffic can flow as soon as it is on the bridge."""
        master = await self._netlink.ensure_bridge(_bridge_for(vif))
        await self._netlink.create_veth(
            vif.host_ifname, vif.container_ifname, vif.mac_address, vif.mtu, master=master
        )
        await self._netlink.set_alias(vif.host_ifname, ALIAS_PREFIX + vif.port_id)

    async def ready(self, vif: Vif) -> bool:
        host = await self._netlink.link(vif.host_ifname)
        bridge = await self._netlink.index(_bridge_for(vif))
        if host is None or bridge is None or host.master != bridge:
            return False
        return await veth_intact(self._netlink, vif)

    async def unplug(self, vif: Vif) -> None:
        await self.remove(vif.host_ifname)

    async def remove(self, host_ifname: str) -> None:
        # The bridge stays: it is the agent's, and other ports of the network use it.
        await self._netlink.delete_link(host_ifname)

    async def plugged(self) -> dict[str, str]:
        aliased = await self._netlink.aliased(ALIAS_PREFIX)
        return {alias[len(ALIAS_PREFIX) :]: ifname for alias, ifname in aliased.items()}

    async def close(self) -> None:
        """The netlink socket belongs to the registry."""
