"""Docker endpoints as Neutron ports: create, join (plug), delete.

With Kuryr IPAM the port exists before CreateEndpoint (RequestAddress made it bound to this
host), so CreateEndpoint answers from memory; the bookkeeping (device_id, name, tags) is
journaled locally before Docker has its answer and written to Neutron in the background
(kuryr.domain.ports.journal); with ``[pool] bookkeeping = immediate`` CreateEndpoint waits until
Neutron
holds it, so tools that look a container's port up right after ``docker run`` find it (as
with kuryr-libnetwork). Endpoints are remembered in the local state, so Join, Leave and
DeleteEndpoint read nothing from Neutron, even after a restart. Join takes the VIF a pool
plugged ahead when there is one; DeleteEndpoint leaves it to the port's next container or has
it unplugged in the background (kuryr.domain.ports.prewire).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from kuryr import deadline, naming
from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.model import Network, Subnet
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.domain.ipam import Ipam
from kuryr.domain.networks import Networks
from kuryr.domain.ports import desired
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.prewire import Prewire
from kuryr.errors import BackendError, InvalidRequest, NotFound
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

# Outside a Docker request (tests, tools) no request deadline bounds an immediate write.
_IMMEDIATE_TIMEOUT = deadline.DEFAULT_REQUEST_TIMEOUT


class Binders(Protocol):
    """What endpoints need of kuryr.backends.binding.registry.Binders."""

    def for_vif_type(self, vif_type: str) -> Binder: ...


@dataclass
class Endpoint:
    endpoint_id: str
    network_id: str  # Docker network id
    port: Port
    expose_sg: str | None = None  # id of the --expose security group, when programmed

    @property
    def port_id(self) -> str:
        return self.port.id


class Endpoints:
    def __init__(
        self,
        neutron: NeutronApi,
        networks: Networks,
        ipam: Ipam,
        binders: Binders,
        vif_plugging_timeout: float,
        veth_dst_prefix: str,
        *,
        bookkeeping: Journal,
        prewire: Prewire,
        immediate: bool = False,
    ) -> None:
        self._neutron = neutron
        self._networks = networks
        self._ipam = ipam
        self._binders = binders
        self._plug_timeout = vif_plugging_timeout
        self._dst_prefix = veth_dst_prefix
        self._endpoints: dict[str, Endpoint] = {}
        self._journal = bookkeeping
        self._prewire = prewire
        self._broker = ipam.broker
        self._immediate = immediate

    # --- lookup --------------------------------------------------------------------------------

    async def find(self, endpoint_id: str, network_id: str) -> Endpoint | None:
        """The endpoint from memory or the local state, else from Neutron (its port carries
        its id). An endpoint of another network is not found: Docker names an endpoint with
        its own network, so any other pairing must reach nothing."""
        known = self._endpoints.get(endpoint_id)
        if known is not None:
            return known if known.network_id == network_id else None
        stored = self._journal.state.endpoint(endpoint_id)
        if stored is not None:
            if stored[0] != network_id:
                return None
            known = Endpoint(endpoint_id, stored[0], Port.from_neutron(stored[1]))
            self._endpoints[endpoint_id] = known
            return known
        raw = await self._neutron.query("ports", {"device_id": endpoint_id})
        if not raw:
            raw = await self._neutron.query("ports", {"tags": naming.id_tag_filter(endpoint_id)})
        network = await self._networks.find(network_id) if raw else None
        ports = [
            p for p in map(Port.from_neutron, raw) if network and p.network_id == network.neutron_id
        ]
        if not ports:
            return None
        endpoint = Endpoint(endpoint_id, network_id, ports[0])
        self._endpoints[endpoint_id] = endpoint
        return endpoint

    async def get(self, endpoint_id: str, network_id: str) -> Endpoint:
        endpoint = await self.find(endpoint_id, network_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id[:12]} has no Neutron port")
        return endpoint

    def known(self) -> list[Endpoint]:
        return list(self._endpoints.values())

    # --- CreateEndpoint ------------------------------------------------------------------------

    async def create(self, req: p.CreateEndpointRequest) -> p.CreateEndpointResponse:
        iface = req.interface or p.EndpointInterface()
        known = self._endpoints.get(req.endpoint_id)
        if known is None:
            network = await self._networks.get(req.network_id)
            wanted = _addresses(network, iface)
            port = await self._port_for(req.endpoint_id, network, wanted, iface.mac_address)
            await self._plug_early(Endpoint(req.endpoint_id, req.network_id, port), network)
            known = self._remember(Endpoint(req.endpoint_id, req.network_id, port))
            self._endpoints[req.endpoint_id] = known
        if self._immediate:
            await self._bookkeeping_written(known)
        return _create_answer(iface, known.port, self._device_mac(known.port))

    def _device_mac(self, port: Port) -> str:
        """The MAC its binder gives the container's device (nested macvlan: not the port's);
        the port's when no binder serves it yet (Join says why)."""
        try:
            return self._binders.for_vif_type(port.vif_type or "ovs").device_mac(port.mac_address)
        except BackendError:
            return port.mac_address

    def _plugs_before_bookkeeping(self) -> bool:
        """For a port not made yet: a nested binder serves every vif_type, so any name asks
        it; on a host the OVS binder (or none) answers, and plugs after the bookkeeping."""
        try:
            return self._binders.for_vif_type("ovs").plug_before_bookkeeping
        except BackendError:
            return False

    async def _plug_early(self, endpoint: Endpoint, network: Network) -> None:
        """A binder that must plug before the port's device_id is written (a trunk's subport)
        plugs now; on failure the port goes back (Docker sends no DeleteEndpoint)."""
        vif = _vif(endpoint, network)
        try:
            binder = self._binders.for_vif_type(vif.vif_type)
        except BackendError:
            return  # no binder serves the port (binding_failed, say): Join says why
        if not binder.plug_before_bookkeeping:
            return
        try:
            if not await self._prewire.claim(vif):
                timeout = deadline.clamp(self._plug_timeout, f"plugging port {vif.port_id}")
                await binder.plug(vif, timeout)
        except BaseException:
            with deadline.cleanup():
                await self._broker.release(endpoint.port)
            raise

    async def _bookkeeping_written(self, endpoint: Endpoint) -> None:
        """Wait until Neutron holds the port's bookkeeping. When it cannot, the endpoint is
        undone (its port released) and Docker gets the error: Docker never sends
        DeleteEndpoint for an endpoint whose CreateEndpoint failed."""
        port_id = endpoint.port_id
        try:
            timeout = deadline.clamp(_IMMEDIATE_TIMEOUT, f"bookkeeping of port {port_id}")
            await self._journal.flush([port_id], timeout, urgent=True)
        except BaseException:
            with deadline.cleanup():
                self._journal.state.forget_endpoint(endpoint.endpoint_id)
                self._endpoints.pop(endpoint.endpoint_id, None)
                await self._broker.release(endpoint.port)
            raise

    async def _port_for(
        self,
        endpoint_id: str,
        network: Network,
        wanted: list[tuple[Subnet, str | None]],
        mac: str,
    ) -> Port:
        held = [self._broker.take_reservation(s.id, ip) for s, ip in wanted if ip]
        ports = {pt.id: pt for pt in held if pt is not None}
        if not ports:
            return await self._broker.take_for_endpoint(
                endpoint_id, network, wanted, mac, owned=not self._plugs_before_bookkeeping()
            )
        main, *extra = ports.values()
        mac = self._broker.mac_for(mac)
        try:
            merge = bool(extra) or len(held) != len(ports) or None in held
            new_mac = bool(mac) and mac.lower() != main.mac_address.lower()
            if merge or new_mac:
                for port in ports.values():
                    await self._prewire.unwire(port.id)
            if merge:
                main = await self._merge(main, extra, wanted)
            if new_mac:
                main = self._broker.chose_mac(await self._set_mac(main, mac))
        except BaseException:
            with deadline.cleanup():
                for port in ports.values():
                    await self._broker.release(port)
            raise
        return main

    async def _merge(
        self, main: Port, extra: list[Port], wanted: list[tuple[Subnet, str | None]]
    ) -> Port:
        """Dual stack with Kuryr IPAM: Docker asked for the v4 and v6 address separately, so
        two ports hold them; the endpoint needs one port with both. The others go at once
        (a release would keep their addresses allocated until the background delete)."""
        for port in extra:
            await self._broker.delete_now(port)
        fixed_ips = [desired.fixed_ip(s.id, ip) for s, ip in wanted]
        return Port.from_neutron(
            await self._neutron.update("ports", main.id, desired.holding(fixed_ips))
        )

    async def _set_mac(self, port: Port, mac: str) -> Port:
        """Docker's --mac-address (``mac``: the port's for it, Binder.port_mac): Neutron
        changes the MAC only of an unbound port."""
        try:
            return Port.from_neutron(
                await self._neutron.update("ports", port.id, desired.with_mac(mac))
            )
        except NeutronError as exc:
            if exc.http_status != 409 or exc.neutron_type == "MacAddressInUse":
                raise
        await self._neutron.update("ports", port.id, desired.bound_to(""))
        await self._neutron.update("ports", port.id, desired.with_mac(mac))
        host = (await self._broker.mine.mark()).host  # nested: "" (kuryr.domain.ports.mine)
        rebound = await self._neutron.update("ports", port.id, desired.bound_to(host))
        return Port.from_neutron(rebound)

    def _remember(self, endpoint: Endpoint) -> Endpoint:
        """Durable before Docker hears back: the endpoint, and the bookkeeping its port owes
        Neutron (applied in the background; a crash leaves it for the next start). Returns
        the endpoint with its port as that bookkeeping leaves it."""
        port, eid = endpoint.port, endpoint.endpoint_id
        wish = desired.assigned(port, eid)
        booked = port.replace(device_id=eid, name=wish["name"], tags=tuple(wish["tags"]))
        state = self._journal.state
        with state.transaction():
            self._journal.record(port, wish)
            state.save_endpoint(eid, endpoint.network_id, booked.to_neutron())
        endpoint.port = booked
        return endpoint

    async def flush(self) -> None:
        """Wait until every journaled bookkeeping write is in Neutron (tests, tools)."""
        await self._journal.flush()

    # --- Join ------------------------------------------------------------------------------

    async def join(self, req: p.JoinRequest) -> p.JoinResponse:
        endpoint = await self.get(req.endpoint_id, req.network_id)
        network = await self._networks.get(req.network_id)
        vif = _vif(endpoint, network)
        binder = self._binders.for_vif_type(vif.vif_type)
        if binder.plug_before_bookkeeping and await binder.ready(vif):
            pass  # plugged at CreateEndpoint
        elif not await self._prewire.claim(vif):
            timeout = deadline.clamp(self._plug_timeout, f"plugging port {vif.port_id}")
            await binder.plug(vif, timeout)
        return _join_answer(vif, network, endpoint.port, self._dst_prefix)

    # --- DeleteEndpoint ---------------------------------------------------------------------------

    async def delete(
        self, req: p.EndpointRequest, before_release: Callable[[Endpoint], Awaitable[None]]
    ) -> Endpoint | None:
        """Release the endpoint's port; returns the endpoint that was removed, if any.

        The endpoint is forgotten before its port is released: a crash in between leaves a
        port nobody uses (found by reconciliation), never a port released twice."""
        endpoint = await self.find(req.endpoint_id, req.network_id)
        if endpoint is None:
            return None
        await before_release(endpoint)
        vif = _vif(endpoint, await self._networks.find(req.network_id))
        self._journal.state.forget_endpoint(req.endpoint_id)
        self._endpoints.pop(req.endpoint_id, None)
        await self._broker.release(endpoint.port, vif)
        return endpoint

    def oper_info(self, endpoint: Endpoint) -> p.EndpointOperInfoResponse:
        port = endpoint.port
        value = {
            "port_id": port.id,
            "network_id": port.network_id,
            "mac_address": port.mac_address,
            "status": port.status,
            "host": port.host,
            "vif_type": port.vif_type or "",
            "fixed_ips": port.ips,
        }
        return p.EndpointOperInfoResponse(value=value)


def _addresses(network: Network, iface: p.EndpointInterface) -> list[tuple[Subnet, str | None]]:
    """(subnet, ip) for each address Docker gave; with none, one Neutron-chosen IP per
    subnet version (the network then tells Docker the addresses)."""
    given = [a for a in (iface.address, iface.address_ipv6) if a]
    if not given:
        firsts: dict[int, Subnet] = {}
        for s in network.subnets:
            firsts.setdefault(s.version, s)
        return [(s, None) for s in firsts.values()]
    wanted: list[tuple[Subnet, str | None]] = []
    for cidr in given:
        ip = str(ipaddress.ip_interface(cidr).ip)
        subnet = network.subnet_for(ip)
        if subnet is None:
            raise InvalidRequest(
                f"address {ip} is in no subnet of network {network.docker_id[:12]}"
            )
        wanted.append((subnet, ip))
    return wanted


def _create_answer(
    iface: p.EndpointInterface, port: Port, mac: str = ""
) -> p.CreateEndpointResponse:
    """Fill only what Docker left empty: echoing a set field makes Docker roll back.
    ``mac``: the device's, when not the port's (Binder.device_mac)."""
    answer: dict[str, str] = {}
    if not iface.mac_address:
        answer["mac_address"] = mac or port.mac_address
    if not iface.address and not iface.address_ipv6:
        for ip in port.ips:
            key = "address" if ipaddress.ip_address(ip).version == 4 else "address_ipv6"
            answer.setdefault(key, ip)
    return p.CreateEndpointResponse(interface=p.EndpointInterface(**answer))


def _vif(endpoint: Endpoint, network: Network | None) -> Vif:
    mtu = network.mtu if network is not None else 1500
    return endpoint.port.vif(endpoint.endpoint_id, mtu)


def _join_answer(vif: Vif, network: Network, port: Port, dst_prefix: str) -> p.JoinResponse:
    subnets = {s.id: s for s in network.subnets}
    mine = [subnets[sid] for sid in port.subnet_ids if sid in subnets]
    gateways: dict[int, str] = {}
    routes: list[p.StaticRoute] = []
    for subnet in mine:
        if subnet.gateway_ip and not network.internal:
            gateways.setdefault(subnet.version, subnet.gateway_ip)
        routes += [
            p.StaticRoute(destination=dest, route_type=0, next_hop=hop)
            for dest, hop in subnet.host_routes
        ]
    no_gateway = network.internal or any(not s.gateway_ip for s in mine) or not mine
    return p.JoinResponse(
        interface_name=p.InterfaceName(src_name=vif.container_ifname, dst_prefix=dst_prefix),
        gateway=gateways.get(4),
        gateway_ipv6=gateways.get(6),
        static_routes=routes or None,
        disable_gateway_service=True if no_gateway else None,
    )
