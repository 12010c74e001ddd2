"""The broker: the only way to take a Neutron port that holds an address, and to give it back.

A port is taken for a reservation (IPAM RequestAddress: from the subnet's pool when pools are
on, else made on demand), for an endpoint (a pool port holding the address Docker's own IPAM
chose, else one made for it, else a free port already holding that address), and given back
when its endpoint or reservation ends: to its pool (cleaning journaled), deleted, or, when it
was made by hand and adopted (kuryr-libnetwork's "existing port"), handed back to its owner.
Giving a pool port back and deciding its VIF's fate (kept for the port's next container, or
unplugged) are one synchronous step, so no start can take the port in between.

Release markers ((subnet id, ip) of ports an endpoint released) are durable: a restart
between DeleteEndpoint and ReleaseAddress must not change what the latter does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from kuryr import naming
from kuryr.backends.binding.base import Vif
from kuryr.backends.model import Network, Subnet
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import MODE_ANY, State
from kuryr.domain.ports import desired
from kuryr.domain.ports.mine import Mark, Mine
from kuryr.domain.ports.pools import Pools
from kuryr.domain.ports.port import Port
from kuryr.errors import Conflict, InvalidRequest

LOG = logging.getLogger(__name__)

# How long a released address waits for dockerd's ReleaseAddress. dockerd sends it right
# after DeleteEndpoint and gives up on a missing plugin within seconds; networks on Docker's
# own IPAM never send it to Kuryr, so markers must expire rather than pile up.
RELEASE_MARKER_LIFETIME = 3600.0


class Wiring(Protocol):
    """The VIF side of taking a port and giving it back (kuryr.domain.ports.prewire)."""

    def released(self, vif: Vif) -> None: ...

    async def unplug_stale(self, vif: Vif) -> None: ...

    async def unplug_for_delete(self, vif: Vif) -> bool: ...


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
    await neutron.update("ports", port.id, desired.handed_back(port), revision=revision)
    await neutron.set_tags("ports", port.id, desired.handed_back_tags(port))


class Broker:
    def __init__(
        self,
        neutron: NeutronApi,
        mine: Mine,
        state: State,
        pools: Pools | None,
        wiring: Wiring,
        port_mac: Callable[[str], str] = lambda mac: mac,
    ) -> None:
        """``pools``: served from when they are on (``[pool] max``; None: no pools), else every
        port taken is made and every port given back deleted; ``wiring``: decides the VIF of
        a port given back by its endpoint; ``port_mac``: the port's MAC for the device MAC
        Docker asks for (``Binder.port_mac``; nested macvlan: not the same)."""
        self._neutron = neutron
        self._port_mac = port_mac
        self.mine = mine
        self._state = state
        self._pools = pools if pools is not None and pools.enabled else None
        self.wiring = wiring
        self._reserved: dict[tuple[str, str], Port] = {}  # (subnet id, ip) -> port
        # Ports carrying a MAC Docker chose (--mac-address): deleted when given back, never
        # pooled, or the next container would get that MAC instead of one of Neutron's. In
        # memory: a restart between such a start and its stop pools the port.
        self._docker_macs: set[str] = set()

    def chose_mac(self, port: Port) -> Port:
        """``port`` now carries a MAC Docker chose: it serves no other container."""
        self._docker_macs.add(port.id)
        return port

    def mac_for(self, device_mac: str | None) -> str:
        """The port's MAC for the device MAC Docker asks for; "" when it asks for none (a
        binder's ``port_mac`` of no MAC is not defined)."""
        return self._port_mac(device_mac) if device_mac else ""

    # --- taking ---------------------------------------------------------------------------------

    async def reserve(self, subnet: Subnet, address: str | None, mac: str | None) -> str:
        """RequestAddress: a port holding ``address`` (any when None) on the subnet, kept for
        the endpoint that will use it; returns its address."""
        if address and (subnet.id, address) in self._reserved:
            return address
        port = await self._take(subnet, address, self.mac_for(mac) or None)
        ip = port.ip_on(subnet.id) or ""
        # A release still owed for an earlier holder of this address stays owed: dockerd
        # sends that ReleaseAddress after the DeleteEndpoint, and it must not take this port.
        self._reserved[(subnet.id, ip)] = port
        return ip

    async def reserve_for_swarm(self, subnet: Subnet, address: str | None) -> str:
        """RequestAddress from a swarm manager's allocator: an unowned, unbound port tagged
        ``kuryr.swarm.address`` holds the address until the swarm releases it; the node that
        runs the task adopts it (:meth:`_take_over`) and hands it back. Asked again for an
        address such a port holds (a new leader restores its allocations), it is that one."""
        body = {
            "name": naming.SWARM_PORT_NAME,
            "network_id": subnet.network_id,
            "admin_state_up": True,
            "fixed_ips": [desired.fixed_ip(subnet.id, address)],
        }
        try:
            port = Port.from_neutron(await self._neutron.create("ports", body))
        except NeutronError as exc:
            if not (address and exc.neutron_type in desired.IP_TAKEN):
                raise
            held = await find_port_by_ip(self._neutron, subnet.id, address)
            if held is None or naming.TAG_SWARM_ADDRESS not in held.tags:
                raise Conflict(
                    f"address {address} is already in use in subnet {subnet.cidr}"
                ) from exc
            return address
        await self._neutron.set_tags("ports", port.id, [naming.TAG_SWARM_ADDRESS])
        return port.ip_on(subnet.id) or ""

    def reserved(self, port_id: str) -> bool:
        """RequestAddress handed out this port's address and no endpoint has taken it yet."""
        return any(port.id == port_id for port in self._reserved.values())

    def take_reservation(self, subnet_id: str, address: str) -> Port | None:
        """Hand the port RequestAddress reserved for ``address`` to the endpoint that uses it."""
        return self._reserved.pop((subnet_id, address), None)

    async def take_for_endpoint(
        self,
        endpoint_id: str,
        network: Network,
        wanted: list[tuple[Subnet, str | None]],
        mac: str,
        owned: bool = True,
    ) -> Port:
        """Docker's own IPAM chose the addresses (or RequestAddress no longer holds them): a
        pool port already holding them, else one made for the endpoint. ``owned``: made
        with the endpoint's device_id; False where the port must be plugged before its
        bookkeeping (``Binder.plug_before_bookkeeping``: Neutron takes no port with a
        device_id into a trunk), which the journal then writes. ``mac``: the device MAC
        Docker asked for, if any."""
        if mac:
            return await self._create_for_endpoint(
                endpoint_id, network, wanted, self.mac_for(mac), owned
            )
        ready = await self._take_pooled(wanted)
        return ready or await self._create_for_endpoint(endpoint_id, network, wanted, "", owned)

    async def _take_pooled(self, wanted: list[tuple[Subnet, str | None]]) -> Port | None:
        if self._pools is None or len(wanted) != 1:
            return None
        subnet, ip = wanted[0]
        pool = self._pools.pool(subnet.id)
        if pool is None or ip is None:
            return None
        if not pool.started:
            self._pools.ensure(subnet, pool.row.mode)
        return await self._pools.take_exact_or_wait(subnet.id, ip)

    async def _take(self, subnet: Subnet, address: str | None, mac: str | None) -> Port:
        """A Kuryr IPAM miss waits for the pool's next bulk create; any other miss (a given
        address or MAC) makes its own port."""
        if self._pools is not None and not mac:
            if address:
                port = self._pools.take_exact(subnet.id, address)
            else:
                self._pools.ensure(subnet, MODE_ANY)
                port = await self._pools.take_or_wait(subnet.id)
            if port is not None:
                return port
        return await self._create(subnet, address, mac)

    async def _create(self, subnet: Subnet, address: str | None, mac: str | None) -> Port:
        body = desired.create_body(
            subnet.network_id,
            [desired.fixed_ip(subnet.id, address)],
            await self.mine.mark(),
            naming.UNBOUND_PORT_NAME,
            mac=mac,
        )
        try:
            return await self._post(body, mac)
        except NeutronError as exc:
            if mac and exc.neutron_type == "MacAddressInUse":
                raise Conflict(
                    f"MAC address {mac} is in use on network {subnet.network_id}"
                ) from exc
            if not (address and exc.neutron_type in desired.IP_TAKEN):
                raise
        return await self._take_over(subnet, address)

    async def _post(self, body: dict[str, Any], mac: str | None) -> Port:
        """Create the port; one made with a MAC Docker chose is marked (:meth:`chose_mac`)."""
        port = Port.from_neutron(await self._neutron.create("ports", body))
        return self.chose_mac(port) if mac else port

    async def _take_over(self, subnet: Subnet, address: str) -> Port:
        """The address is held by a port already: reuse it if it is free to take.

        A free Kuryr port on this host is a leftover of an interrupted start; a free port with
        no owner was made by hand for this address and is adopted.
        """
        port = await find_port_by_ip(self._neutron, subnet.id, address)
        if port is None or port.device_id:
            raise Conflict(f"address {address} is already in use in subnet {subnet.cidr}")
        mark = await self.mine.mark()
        if mark.owns(port):
            return port
        owner = port.device_owner
        if owner:
            raise Conflict(f"address {address} is held by Neutron port {port.id} ({owner})")
        return await take_over(self._neutron, port, desired.adopting(mark))

    async def _create_for_endpoint(
        self,
        endpoint_id: str,
        network: Network,
        wanted: list[tuple[Subnet, str | None]],
        mac: str,
        owned: bool,
    ) -> Port:
        """One POST; an address already held goes to :meth:`_claim_for_endpoint`."""
        if not wanted:
            raise InvalidRequest(f"network {network.docker_id[:12]} has no subnet to address from")
        body = desired.create_body(
            network.neutron_id,
            [desired.fixed_ip(s.id, ip) for s, ip in wanted],
            await self.mine.mark(),
            naming.port_name(endpoint_id),
            device_id=endpoint_id if owned else "",
            mac=mac,
        )
        try:
            return await self._post(body, mac)
        except NeutronError as exc:
            if exc.neutron_type not in desired.IP_TAKEN:
                raise
        return await self._claim_for_endpoint(endpoint_id, wanted, body)

    async def _claim_for_endpoint(
        self, endpoint_id: str, wanted: list[tuple[Subnet, str | None]], body: dict[str, object]
    ) -> Port:
        """An address is taken: by this endpoint's own port (a retry after a restart), by a
        free Kuryr port of this host, or by a free hand-made port (adopted, as
        kuryr-libnetwork does); anything else is a conflict."""
        subnet, ip = next((s, ip) for s, ip in wanted if ip)
        port = await find_port_by_ip(self._neutron, subnet.id, ip or "")
        if port is None:
            raise Conflict(f"address {ip} is in use in subnet {subnet.cidr}")
        if port.device_id == endpoint_id:
            return port
        owner = port.device_owner
        # The local state first: an endpoint whose device_id the journal has not written yet
        # holds the port all the same. A port kuryr-libnetwork released and kept is free.
        left_by_libnetwork = self._left_by_libnetwork(port, await self.mine.mark())
        taken = not left_by_libnetwork and (port.device_id or self.held_by_endpoint(port))
        if taken or owner not in ("", naming.DEVICE_OWNER):
            raise Conflict(f"address {ip} is held by Neutron port {port.id}")
        if left_by_libnetwork:
            # A failed start leaves kuryr-libnetwork's VIF plugged. Unplugged first: a veth
            # made again under a name OVS still has on br-int carries no traffic (the
            # userspace datapath keeps the deleted device).
            await self.wiring.unplug_stale(port.vif(endpoint_id, 0))
        fields = {k: v for k, v in body.items() if k not in ("network_id", "admin_state_up")}
        return await take_over(self._neutron, port, fields)

    def _left_by_libnetwork(self, port: Port, mark: Mark) -> bool:
        """A port of this host that kuryr-libnetwork released and kept, and no endpoint of
        this daemon has claimed since (its tags may not be written yet)."""
        mine = {Port.from_neutron(raw).id for _, raw in self._state.endpoints().values()}
        return port.released_by_libnetwork and mark.marks(port) and port.id not in mine

    def held_by_endpoint(self, port: Port) -> bool:
        """The port belongs to an endpoint (so no address release may take it); its device_id
        may not be written yet."""
        if port.device_id:
            return True
        return self._pools is not None and any(
            Port.from_neutron(raw).id == port.id for _, raw in self._state.endpoints().values()
        )

    # --- giving back ------------------------------------------------------------------------------

    async def give_back(self, port: Port, vif: Vif | None = None) -> None:
        """To its pool (its VIF kept when still whole) or deleted in the background; made on
        demand, deleted now; adopted, handed back. ``vif``: the VIF its endpoint had, whose
        fate is decided in the same synchronous step as the port's."""
        if port.adopted:
            try:
                await hand_back(self._neutron, port)
            except NeutronError as exc:
                if not exc.not_found:
                    raise
        elif self._pools is not None:
            self._pools.give_back(port, reusable=port.id not in self._docker_macs)
        else:
            if vif is not None and await self.wiring.unplug_for_delete(vif):
                vif = None  # gone already: Neutron refuses the delete while it is plugged
            await self._neutron.delete("ports", port.id)
        self._docker_macs.discard(port.id)
        if vif is not None:
            self.wiring.released(vif)

    async def release(self, port: Port, vif: Vif | None = None) -> None:
        """An endpoint's port (or one taken for it) given back; a later ReleaseAddress of its
        IPs then costs nothing."""
        await self.give_back(port, vif)
        for key in port.fixed_ips:
            self._reserved.pop(key, None)
            self._state.mark_released(*key, RELEASE_MARKER_LIFETIME)

    async def release_address(self, subnet: Subnet, address: str) -> None:
        """ReleaseAddress: the reservation of ``address`` ends, unless DeleteEndpoint already
        released its port."""
        key = (subnet.id, address)
        if self._state.take_release_marker(*key, RELEASE_MARKER_LIFETIME):
            return
        port = self._reserved.pop(key, None)
        if port is None:
            port = await find_port_by_ip(self._neutron, subnet.id, address)
            if port is not None and naming.TAG_SWARM_ADDRESS in port.tags:
                # The swarm's release (its task is dead), or, on the manager's own host, its
                # dockerd's after the swarm's took the marker: either way the last one.
                await self._delete_swarm_address(port)
                return
            if port is None or not port.kuryr_owned:
                return
            if self.held_by_endpoint(port):
                # A release this daemon does not remember giving (it restarted after the
                # DeleteEndpoint that already released the address): the address has since
                # gone to another endpoint, whose port it must not take.
                LOG.info("ReleaseAddress %s: now held by an endpoint, kept", address)
                return
        await self.give_back(port)

    async def _delete_swarm_address(self, port: Port) -> None:
        try:
            await self._neutron.delete("ports", port.id)
        except NeutronError as exc:
            if not exc.not_found:
                raise

    async def delete_now(self, port: Port) -> None:
        """Delete the port before answering: its addresses are needed on another port now."""
        await self._neutron.delete("ports", port.id)
        if self._pools is not None:
            self._pools.forget(port)

    def forget_subnet(self, subnet_id: str) -> None:
        for key in [k for k in self._reserved if k[0] == subnet_id]:
            del self._reserved[key]
        self._state.forget_release_markers(subnet_id)
