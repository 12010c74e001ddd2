"""Taking a port that holds an address, and giving it back: made on demand
(:class:`PortAllocator`) or served from the pools (:class:`PooledAllocator`).

A hand-made port that already holds the address (kuryr-libnetwork's "existing port") is
adopted by :func:`take_over` and handed back to its owner by :func:`hand_back`, never deleted.
"""

from __future__ import annotations

from typing import Any

from kuryr import naming
from kuryr.backends.model import Subnet
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import MODE_ANY
from kuryr.domain.ports import desired
from kuryr.domain.ports.pools import Pools
from kuryr.domain.ports.port import Port
from kuryr.errors import Conflict


async def find_port_by_ip(neutron: NeutronApi, subnet_id: str, address: str) -> Port | None:
    ports = await neutron.query(
        "ports", {"fixed_ips": [f"subnet_id={subnet_id}", f"ip_address={address}"]}
    )
    return Port.from_neutron(ports[0]) if ports else None


async def take_over(neutron: NeutronApi, port: Port, fields: dict[str, Any]) -> Port:
    """Write ``fields`` on a port that holds a wanted address; one with no owner was made by
    hand and is tagged adopted, so that it is handed back, not deleted, later."""
    updated = await neutron.update("ports", port.id, fields)
    if not port.device_owner:
        updated["tags"] = await neutron.set_tags("ports", port.id, desired.adopted_tags(port))
    return Port.from_neutron(updated)


async def hand_back(neutron: NeutronApi, port: Port, revision: int | None = None) -> None:
    """Leave an adopted port as it was found: no owner, no binding, its own tags."""
    await neutron.update("ports", port.id, desired.handed_back(), revision=revision)
    await neutron.set_tags("ports", port.id, desired.handed_back_tags(port))


class PortAllocator:
    """Acquire a Neutron port holding an address on a subnet; release it again: every acquire
    creates a port and every release deletes it."""

    def __init__(self, neutron: NeutronApi, host: str) -> None:
        self._neutron = neutron
        self._host = host

    async def acquire(self, subnet: Subnet, address: str | None, mac: str | None = None) -> Port:
        body = desired.create_body(
            subnet.network_id,
            [desired.fixed_ip(subnet.id, address)],
            self._host,
            naming.UNBOUND_PORT_NAME,
            mac=mac,
        )
        try:
            return Port.from_neutron(await self._neutron.create("ports", body))
        except NeutronError as exc:
            if mac and exc.neutron_type == "MacAddressInUse":
                raise Conflict(
                    f"MAC address {mac} is in use on network {subnet.network_id}"
                ) from exc
            if not (address and exc.neutron_type in desired.IP_TAKEN):
                raise
        return await self._take_over(subnet, address)

    async def acquire_given(self, wanted: list[tuple[Subnet, str | None]]) -> Port | None:
        """A ready port holding exactly the addresses Docker's own IPAM gave, if one exists
        (the pools keep such ports); None: the caller creates the port."""
        return None

    async def _take_over(self, subnet: Subnet, address: str) -> Port:
        """The address is held by a port already: reuse it if it is free to take.

        A free Kuryr port on this host is a leftover of an interrupted start; a free port with
        no owner was made by hand for this address and is adopted.
        """
        port = await find_port_by_ip(self._neutron, subnet.id, address)
        if port is None or port.device_id:
            raise Conflict(f"address {address} is already in use in subnet {subnet.cidr}")
        if port.on_host(self._host):
            return port
        if port.device_owner:
            raise Conflict(
                f"address {address} is held by Neutron port {port.id} ({port.device_owner})"
            )
        return await take_over(self._neutron, port, desired.adopting(self._host))

    def held_by_endpoint(self, port: Port) -> bool:
        """The port belongs to an endpoint (so no address release may take it)."""
        return bool(port.device_id)

    async def delete_now(self, port: Port) -> None:
        """Delete the port before answering: its addresses are needed on another port now."""
        await self._neutron.delete("ports", port.id)

    async def release(self, port: Port) -> bool:
        """Delete the port, or hand an adopted one back as it was found. Returns whether it
        went back to a pool (never, here)."""
        if not port.adopted:
            await self._neutron.delete("ports", port.id)
            return False
        try:
            await hand_back(self._neutron, port)
        except NeutronError as exc:
            if not exc.not_found:
                raise
        return False


class PooledAllocator(PortAllocator):
    """:class:`PortAllocator` served from the pools. A Kuryr IPAM miss waits for the pool's
    next bulk create; any other miss (a given address or MAC) makes its own port."""

    def __init__(self, neutron: NeutronApi, host: str, pools: Pools) -> None:
        super().__init__(neutron, host)
        self.pools = pools

    async def acquire(self, subnet: Subnet, address: str | None, mac: str | None = None) -> Port:
        if not mac:
            if address:
                port = self.pools.take_exact(subnet.id, address)
            else:
                self.pools.ensure(subnet, MODE_ANY)
                port = await self.pools.take_or_wait(subnet.id)
            if port is not None:
                return port
        return await super().acquire(subnet, address, mac)

    async def acquire_given(self, wanted: list[tuple[Subnet, str | None]]) -> Port | None:
        """Docker's own IPAM chose the address: a pool port already holding it, if any."""
        if len(wanted) != 1:
            return None
        subnet, ip = wanted[0]
        pool = self.pools.pool(subnet.id)
        if pool is None or ip is None:
            return None
        if not pool.started:
            self.pools.ensure(subnet, pool.row.mode)
        return await self.pools.take_exact_or_wait(subnet.id, ip)

    async def delete_now(self, port: Port) -> None:
        await super().delete_now(port)
        self.pools.forget(port)

    def held_by_endpoint(self, port: Port) -> bool:
        return super().held_by_endpoint(port) or self.pools.held_by_endpoint(port.id)

    async def release(self, port: Port) -> bool:
        """Back to its pool (synchronously: its VIF's fate is decided by the same step),
        else deleted in the background, or handed back when adopted."""
        if port.adopted:
            return await super().release(port)
        if self.pools.give_back(port):
            return True
        self.pools.discard(port.id)
        return False
