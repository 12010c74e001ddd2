"""``docker run -p``: a container's ports published through Neutron floating IP port forwarding.

Docker sends the ports to publish (``com.docker.network.portmap``) with
ProgramExternalConnectivity. For each, Kuryr makes a port forwarding from a floating IP of the
external network of the router the container's network is attached to
(kuryr.domain.routers), to the container's Neutron port: ``-p 8080:80`` makes
``<floating ip>:8080/tcp -> <container ip>:80``. The floating IP is the network's (one shared by
its containers, ``[neutron] floating_ip_per = network``, the default) or the container's own
(``container``); Kuryr creates it on first use, tags it (kuryr.naming.TAG_PUBLISH), reuses it,
and releases it when its last forwarding goes. Each forwarding names its endpoint in its
description.

What Docker sends, and what it means here (dockerd 20.10 sends one entry per container port,
``HostPort`` to ``HostPortEnd`` the host ports it may use):
- ``-p 8080:80`` (``/udp``): HostPort = HostPortEnd = 8080: exactly that external port;
- ``-p 8000-8002:80-82``: three entries, 80 -> 8000, 81 -> 8001, 82 -> 8002;
- ``-p 8000-8009:80``: HostPort 8000, HostPortEnd 8009: the first of them the floating IP does
  not forward yet (Docker's "any port in the range");
- ``-p 80``: HostPort 0: the first free port of Docker's own ephemeral range (49153-65535);
- a HostIP (``-p 127.0.0.1:8080:80``) is refused: a floating IP is reachable from everywhere
  its external network reaches, which is not what a port bound to one host address promises.
Only TCP and UDP are forwarded; Neutron forwards a container port from one external port only.
An external port the floating IP already forwards (another container's, or twice in one
``docker run``) is a conflict, and nothing is left made.

On an ``--internal`` network ``-p`` publishes nothing, as on Docker's bridge; nor on a network
attached to no router with an external gateway, with a warning naming the fix: kuryr-libnetwork
ignored ``-p``, and the Compose files and scripts that pass it on its networks must keep
working when Kuryr replaces it (the ports are still opened in the security groups, as
``--expose`` opens them).

Crash safety: the floating IP an endpoint publishes on is recorded in the local state before
any forwarding is made there, so RevokeExternalConnectivity or DeleteEndpoint after a restart
finds them; what no record names (a forwarding whose endpoint no port holds, a Kuryr floating
IP nothing uses) is found by reconciliation (kuryr.ops.reconcile_neutron.judge_floating_ips).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kuryr import deadline, naming
from kuryr.backends.model import Network
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.backends.state import State
from kuryr.domain.endpoints import Endpoint
from kuryr.errors import Conflict, InvalidRequest
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

PROTOCOLS = {6: "tcp", 17: "udp"}
DOCKER_PROTOCOLS = {**PROTOCOLS, 132: "sctp", 1: "icmp"}
# Docker's own range for a host port left to it (``-p 80``).
EPHEMERAL = (49153, 65535)
PER_NETWORK = "network"
PER_CONTAINER = "container"
# The ports a router joins a subnet with, in every Neutron backend.
ROUTER_INTERFACE_OWNERS = [
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
]
_ANY_HOST = {"", "0.0.0.0", "::"}
NO_WAY_OUT = (
    "no router with an external gateway to publish on (docker network create -o "
    "neutron.router=NAME, or [neutron] router)"
)


@dataclass(frozen=True, order=True)
class Wanted:
    """One port to publish: the container's ``port`` from an external port in
    ``first``..``last`` (first == last: exactly that one)."""

    protocol: str
    port: int
    first: int
    last: int

    def describe(self) -> str:
        outside = (
            "any free port"
            if self.first == 0
            else str(self.first)
            if self.first == self.last
            else f"{self.first}-{self.last}"
        )
        return f"{outside}:{self.port}/{self.protocol}"


def wanted(options: dict[str, Any]) -> list[Wanted]:
    """The ports Docker asks to publish, checked: anything Neutron cannot do, or that is not a
    port, is refused before anything is made."""
    raw = options.get(p.OPT_PORTMAP) or []
    if not isinstance(raw, list):
        raise InvalidRequest(f"{p.OPT_PORTMAP} must be a list")
    found: set[Wanted] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidRequest(f"{p.OPT_PORTMAP} entries must be objects")
        found.add(_one(item))
    asked = sorted(found)
    _no_duplicates(asked)
    return asked


def _one(item: dict[str, Any]) -> Wanted:
    proto = item.get("Proto")
    port, first, last = (_number(item.get(k), k) for k in ("Port", "HostPort", "HostPortEnd"))
    if proto not in PROTOCOLS:
        name = DOCKER_PROTOCOLS.get(proto) if isinstance(proto, int) else None
        raise InvalidRequest(
            f"-p: protocol {name or repr(proto)} cannot be published: Neutron port forwarding "
            "carries TCP and UDP only"
        )
    if not 0 < port < 65536:
        raise InvalidRequest(f"-p: container port {port} is not a port number (1-65535)")
    if first > 65535 or last > 65535:
        raise InvalidRequest(f"-p: host port {max(first, last)} is not a port number (1-65535)")
    if first == 0:
        last = 0
    elif last < first:
        last = first  # HostPortEnd 0: no range, exactly HostPort
    host_ip = item.get("HostIP") or ""
    if not isinstance(host_ip, str) or _specific(host_ip):
        raise InvalidRequest(
            f"-p {host_ip}:...: Kuryr publishes on a floating IP, reachable from the whole "
            "external network; a host address cannot be honoured (leave it out)"
        )
    return Wanted(PROTOCOLS[proto], port, first, last)


def _number(value: Any, key: str) -> int:
    # bool is an int in Python, but true is no port number.
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidRequest(f"-p: {key} {value!r} is not a port number (1-65535)")
    return value


def _specific(host_ip: str) -> bool:
    if host_ip in _ANY_HOST:
        return False
    try:
        return not ipaddress.ip_address(host_ip).is_unspecified
    except ValueError:
        return True


def _no_duplicates(asked: list[Wanted]) -> None:
    inside: dict[tuple[str, int], Wanted] = {}
    outside: dict[tuple[str, int], Wanted] = {}
    for w in asked:
        twice = inside.get((w.protocol, w.port))
        if twice is not None:
            raise InvalidRequest(
                f"-p {twice.describe()} and -p {w.describe()}: Neutron forwards a container "
                "port from one external port only"
            )
        inside[(w.protocol, w.port)] = w
        if w.first and w.first == w.last:
            again = outside.get((w.protocol, w.first))
            if again is not None:
                raise Conflict(
                    f"-p {again.describe()} and -p {w.describe()}: external port "
                    f"{w.first}/{w.protocol} is published twice"
                )
            outside[(w.protocol, w.first)] = w


def choose(asked: list[Wanted], taken: Iterable[tuple[str, int]], address: str) -> list[int]:
    """The external port of each of ``asked``, given the (protocol, port) pairs the floating
    IP already forwards. Exact ports first, so a range never takes one asked for exactly."""
    used = set(taken)
    chosen: dict[Wanted, int] = {}
    for w in asked:
        if w.first and w.first == w.last:
            if (w.protocol, w.first) in used:
                raise Conflict(
                    f"-p {w.describe()}: {address}:{w.first}/{w.protocol} is already published "
                    "(by another container on this floating IP)"
                )
            used.add((w.protocol, w.first))
            chosen[w] = w.first
    for w in asked:
        if w in chosen:
            continue
        first, last = (w.first, w.last) if w.first else EPHEMERAL
        free = next((n for n in range(first, last + 1) if (w.protocol, n) not in used), None)
        if free is None:
            raise Conflict(
                f"-p {w.describe()}: every port of {first}-{last}/{w.protocol} on {address} is "
                "already published"
            )
        used.add((w.protocol, free))
        chosen[w] = free
    return [chosen[w] for w in asked]


def reachable(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Where an endpoint's published ports are reachable, from its record."""
    if not record:
        return []
    return [
        {
            "address": f["address"],
            "external_port": f["external_port"],
            "protocol": f["protocol"],
            "internal_port": f["internal_port"],
        }
        for f in record.get("forwardings", [])
    ]


def reachable_text(row: dict[str, Any]) -> str:
    return (
        f"{row['address']}:{row['external_port']}/{row['protocol']} -> "
        f"container port {row['internal_port']}"
    )


class Published:
    """Publishing and unpublishing an endpoint's ports."""

    def __init__(self, neutron: NeutronApi, state: State, per: str = PER_NETWORK) -> None:
        self._neutron = neutron
        self._state = state
        self._per = per
        # One publication at a time per floating IP owner: two containers of a network must
        # not both make its floating IP, nor both take one free port.
        self._locks: dict[str, asyncio.Lock] = {}

    async def program(
        self, endpoint: Endpoint, network: Network, options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Publish what ``options`` asks; returns where it is reachable. Again for an endpoint
        already published (Docker retried) changes nothing."""
        asked = wanted(options)
        if not asked:
            return []
        done = self._state.published(endpoint.endpoint_id)
        if done is not None and done.get("complete"):
            return reachable(done)
        external = None if network.internal else await self._way_out(network)
        if external is None:
            # As Docker's bridge does on an --internal network, and as kuryr-libnetwork did on
            # any network: -p opens the ports in the security groups, and publishes nothing.
            LOG.warning(
                "endpoint %s: -p %s not published: network %s has %s",
                endpoint.endpoint_id[:12],
                " ".join(w.describe() for w in asked),
                network.docker_id[:12],
                "no way out (--internal)" if network.internal else NO_WAY_OUT,
            )
            return []
        owner = self._owner(endpoint, network)
        async with self._locks.setdefault(owner, asyncio.Lock()):
            if done is not None:
                # A publication a crash or a failed cleanup left half-made: undone first.
                await self._unpublish(endpoint, done)
            return await self._publish(endpoint, external, owner, asked)

    async def _publish(
        self, endpoint: Endpoint, external: str, owner: str, asked: list[Wanted]
    ) -> list[dict[str, Any]]:
        eid = endpoint.endpoint_id
        fip = await self._floating_ip(owner, external)
        record: dict[str, Any] = {"owner": owner, "floating_ips": [fip["id"]], "forwardings": []}
        self._state.save_published(eid, record)
        try:
            taken = await self._neutron.port_forwardings(fip["id"])
            address = str(fip["floating_ip_address"])
            ports = choose(asked, ((f["protocol"], f["external_port"]) for f in taken), address)
            for w, external_port in zip(asked, ports, strict=True):
                made = await self._forward(endpoint, fip, w, external_port)
                record["forwardings"].append(
                    {
                        "floating_ip_id": fip["id"],
                        "id": made["id"],
                        "address": address,
                        "protocol": w.protocol,
                        "internal_port": w.port,
                        "external_port": external_port,
                    }
                )
                self._state.save_published(eid, record)
        except BaseException:
            with deadline.cleanup():
                await self._unpublish(endpoint, record)
            raise
        record["complete"] = True
        self._state.save_published(eid, record)
        for f in record["forwardings"]:
            LOG.info("endpoint %s: published %s", eid[:12], reachable_text(f))
        return reachable(record)

    async def _forward(
        self, endpoint: Endpoint, fip: Resource, w: Wanted, external_port: int
    ) -> Resource:
        address = _ipv4(endpoint)
        try:
            return await self._neutron.add_port_forwarding(
                fip["id"],
                {
                    "protocol": w.protocol,
                    "internal_port_id": endpoint.port_id,
                    "internal_ip_address": address,
                    "internal_port": w.port,
                    "external_port": external_port,
                    "description": naming.forwarding_description(endpoint.endpoint_id),
                },
            )
        except NeutronError as exc:
            if exc.http_status in (400, 409):
                # Another host's container took the port meanwhile, or Neutron's own rules.
                raise Conflict(
                    f"-p {external_port}:{w.port}/{w.protocol} on "
                    f"{fip['floating_ip_address']}: Neutron refused the port forwarding: "
                    f"{exc.message}"
                ) from exc
            raise

    async def revoke(self, endpoint: Endpoint) -> None:
        """Unpublish: the endpoint's forwardings go, and a floating IP left unused with them.
        Costs nothing for an endpoint that published nothing."""
        record = self._state.published(endpoint.endpoint_id)
        if record is None:
            return
        async with self._locks.setdefault(str(record.get("owner")), asyncio.Lock()):
            await self._unpublish(endpoint, record)

    async def _unpublish(self, endpoint: Endpoint, record: dict[str, Any]) -> None:
        for fip_id in record.get("floating_ips", []):
            try:
                forwardings = await self._neutron.port_forwardings(fip_id)
            except NeutronError as exc:
                if exc.not_found:
                    continue
                raise
            mine = [f for f in forwardings if _serves(f, endpoint)]
            for f in mine:
                await self._neutron.delete_port_forwarding(fip_id, str(f["id"]))
                LOG.info(
                    "endpoint %s: unpublished %s/%s",
                    endpoint.endpoint_id[:12],
                    f.get("external_port"),
                    f.get("protocol"),
                )
            if len(mine) == len(forwardings):
                await release(self._neutron, fip_id)
        self._state.forget_published(endpoint.endpoint_id)

    async def _way_out(self, network: Network) -> str | None:
        """The external network of a router the network is attached to, if any."""
        interfaces = await self._neutron.query(
            "ports",
            {
                "network_id": network.neutron_id,
                "device_owner": ROUTER_INTERFACE_OWNERS,
                "fields": ["device_id"],
            },
        )
        for router_id in sorted({str(i["device_id"]) for i in interfaces}):
            router = await self._neutron.show("routers", router_id)
            gateway = (router or {}).get("external_gateway_info") or {}
            if gateway.get("network_id"):
                return str(gateway["network_id"])
        return None

    def _owner(self, endpoint: Endpoint, network: Network) -> str:
        if self._per == PER_CONTAINER:
            return f"{naming.TAG_PUBLISH_ENDPOINT}:{endpoint.endpoint_id}"
        return f"{naming.TAG_PUBLISH_NET}:{network.neutron_id}"

    async def _floating_ip(self, owner: str, external: str) -> Resource:
        """The owner's floating IP on ``external``: found by its tag, else made and tagged."""
        found = await self._neutron.query(
            "floatingips",
            {"tags": f"{naming.TAG_PUBLISH},{owner}", "floating_network_id": external},
        )
        if found:
            return min(found, key=lambda f: str(f["id"]))
        key, _, value = owner.partition(":")
        fip = await self._neutron.create(
            "floatingips",
            {"floating_network_id": external, "description": f"Kuryr: ports published ({owner})"},
        )
        try:
            fip["tags"] = await self._neutron.set_tags(
                "floatingips", fip["id"], naming.publish_tags(key, value)
            )
        except BaseException:
            with deadline.cleanup():
                await self._neutron.delete("floatingips", fip["id"])
            raise
        LOG.info("floating IP %s (%s) made for %s", fip["floating_ip_address"], fip["id"], owner)
        return fip


async def release(neutron: NeutronApi, fip_id: str) -> None:
    """Delete a floating IP Kuryr made for ``-p`` (gone already is fine)."""
    if await neutron.delete("floatingips", fip_id):
        LOG.info("floating IP %s released: nothing is published on it", fip_id)


def _serves(forwarding: Resource, endpoint: Endpoint) -> bool:
    """Kuryr's forwardings name their endpoint (a pool port serves one container after
    another); one without a name is judged by its port."""
    named = naming.forwarding_endpoint(forwarding.get("description"))
    if named is not None:
        return named == endpoint.endpoint_id
    return forwarding.get("internal_port_id") == endpoint.port_id


def _ipv4(endpoint: Endpoint) -> str:
    """The container's IPv4 address: floating IPs are IPv4."""
    for ip in endpoint.port.ips:
        if ipaddress.ip_address(ip).version == 4:
            return ip
    raise InvalidRequest(
        f"-p: endpoint {endpoint.endpoint_id[:12]} has no IPv4 address to forward to "
        "(floating IPs are IPv4)"
    )
