"""Helpers for the domain's integration tests against the real Neutron.

Every resource a test makes by hand is named ``dom-...``; Kuryr-made ones are found through
the random Docker ids the test used, and everything is removed at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from kuryr import naming
from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.neutron import Neutron, connect
from kuryr.backends.state import State
from kuryr.config import NeutronConfig
from kuryr.domain.endpoints import Binders, Endpoints
from kuryr.domain.ipam import Ipam
from kuryr.domain.networks import Networks
from kuryr.domain.ports.broker import Broker
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.mine import Mark, Mine
from kuryr.domain.ports.prewire import Prewire
from kuryr.domain.quiet import Quiet
from kuryr.domain.removals import Removals
from kuryr.domain.routers import Routers
from kuryr.plugin import protocol as p

# Seconds a VIF may take to come up, as the daemon's default vif_plugging_timeout.
PLUG_TIMEOUT = 10.0


def docker_id() -> str:
    return secrets.token_hex(32)


def neutron_client(url: str) -> Neutron:
    return connect(NeutronConfig(auth_type="none", endpoint=url, timeout=30.0))


@dataclass
class Domain:
    neutron: Neutron
    ipam: Ipam
    networks: Networks
    host: str
    binders: Binders
    prewire: Prewire
    docker_ids: list[str] = field(default_factory=list)

    def new_id(self) -> str:
        self.docker_ids.append(docker_id())
        return self.docker_ids[-1]


def make_domain(neutron: Neutron, host: str, binders: Binders | None = None) -> Domain:
    """IPAM and networks on ``neutron``, each with a local state of its own in memory, no
    pools, VIFs on ``binders`` (none: no Join), nothing plugged ahead and no network removal
    ever pending (networks are deleted in the foreground here)."""
    with_binders = binders or NoBinders(host)
    prewire = Prewire(with_binders, lambda _: None, PLUG_TIMEOUT, deleted=nothing_pending)
    mine = Mine.fixed(Mark(host))
    broker = Broker(neutron, mine, State.in_memory(), None, prewire)
    ipam = Ipam(neutron, broker, Removals(State.in_memory()))
    networks = Networks(neutron, ipam, mine, state=State.in_memory(), routers=Routers(neutron))
    return Domain(neutron, ipam, networks, host, with_binders, prewire)


async def nothing_pending(_: str) -> None:
    """No delete is ever journaled without pools: a port given back is deleted at once."""


class NeverPlugged(Binder):
    """The backend of endpoints that never Join: nothing to plug, so nothing to unplug."""

    vif_types: ClassVar[frozenset[str]] = frozenset()

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        raise AssertionError("no plugging in these tests")

    async def ready(self, vif: Vif) -> bool:
        return False

    async def unplug(self, vif: Vif) -> None:
        """DeleteEndpoint unplugs the VIF its endpoint would have had: there is none."""

    async def plugged(self) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        """No connection to release."""


@dataclass
class NoBinders:
    """Endpoints without Join: CreateEndpoint and DeleteEndpoint only need the host."""

    host: str

    def for_vif_type(self, vif_type: str) -> Binder:
        return NeverPlugged()


def memory_journal(neutron: Neutron, delay: float = 0.0) -> Journal:
    """A journal with a local state of its own in memory, never held back by Docker's
    requests; its worker runs only once started."""
    return Journal(State.in_memory(), neutron, delay, quiet=Quiet(0.0, 0.0))


def endpoints(d: Domain, bookkeeping: Journal | None = None, immediate: bool = False) -> Endpoints:
    """The domain's endpoints with ``bookkeeping`` (none: a journal of their own, not
    started)."""
    return Endpoints(
        d.neutron,
        d.networks,
        d.ipam,
        d.binders,
        PLUG_TIMEOUT,
        "eth",
        bookkeeping=bookkeeping or memory_journal(d.neutron),
        prewire=d.prewire,
        immediate=immediate,
    )


async def no_revoke(_: object) -> None:
    """DeleteEndpoint's security group revoke, for endpoints that never had a group."""


def create(did: str, eid: str, address: str, mac: str = "") -> p.CreateEndpointRequest:
    """CreateEndpoint of ``eid`` on Docker network ``did`` with ``address`` (CIDR form)."""
    return p.CreateEndpointRequest.model_validate(
        {
            "NetworkID": did,
            "EndpointID": eid,
            "Interface": {"Address": address, "AddressIPv6": "", "MacAddress": mac},
        }
    )


@asynccontextmanager
async def domain(url: str, host: str, binders: Binders | None = None) -> AsyncIterator[Domain]:
    d = make_domain(neutron_client(url), host, binders)
    try:
        yield d
    finally:
        await cleanup(d.neutron, d.docker_ids)


async def cleanup(neutron: Neutron, docker_ids: list[str]) -> None:
    """Remove what the Docker ids left behind: ports, networks, kuryrPool-* subnetpools."""
    for did in docker_ids:
        for port in await neutron.query("ports", {"tags": naming.id_tag_filter(did)}):
            await neutron.delete("ports", port["id"])
        for port in await neutron.query("ports", {"device_id": did}):
            await neutron.delete("ports", port["id"])
        for net in await neutron.query("networks", {"tags": naming.id_tag_filter(did)}):
            pools = {
                s["subnetpool_id"]
                for s in await neutron.query("subnets", {"network_id": net["id"]})
                if s.get("subnetpool_id")
            }
            for port in await neutron.query("ports", {"network_id": net["id"]}):
                if not str(port.get("device_owner", "")).startswith("network:"):
                    await neutron.delete("ports", port["id"])
            if naming.is_adopted_network(net.get("tags", [])):
                await neutron.set_tags(
                    "networks", net["id"], naming.without_kuryr_tags(net["tags"])
                )
            else:
                await neutron.delete("networks", net["id"])
            for pool in pools:
                found = await neutron.show("subnetpools", pool)
                if found and found["name"].startswith(naming.SUBNETPOOL_NAME_PREFIX):
                    await neutron.delete("subnetpools", pool)


def create_request(
    network_id: str,
    pool: str,
    gateway: str = "",
    generic: dict[str, str] | None = None,
    address_space: str = "no_address_space",
    v6_pool: str = "",
    v6_gateway: str = "",
) -> p.CreateNetworkRequest:
    v4 = [{"AddressSpace": address_space, "Pool": pool, "Gateway": gateway}]
    v6 = (
        [{"AddressSpace": address_space, "Pool": v6_pool, "Gateway": v6_gateway}] if v6_pool else []
    )
    return p.CreateNetworkRequest.model_validate(
        {
            "NetworkID": network_id,
            "IPv4Data": v4,
            "IPv6Data": v6,
            "Options": {"com.docker.network.generic": generic or {}},
        }
    )
