"""Docker networks attached to a Neutron router: their way out of their Neutron network
(SNAT through the router's external gateway), asked for by ``[neutron] router`` or
``-o neutron.router=NAME|ID`` (an empty value opts a network out of the configured one).

Only subnets Kuryr makes are attached, and never those of an ``--internal`` network. Each
carries ``kuryr.router:<router id>`` before it is attached (a crash in between leaves a tag,
never an attachment Kuryr does not know of), and only subnets carrying it are detached, when
the subnet itself goes: an adopted subnet, or one someone else attached, is left as it is. The
router is the operator's: Kuryr never creates or deletes one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable

from kuryr import naming
from kuryr.backends.model import Network, Subnet
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.errors import Conflict, NotFound
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

OPT_ROUTER = "neutron.router"

Undo = Callable[[], Awaitable[None]]


class Routers:
    """Which router a Docker network's subnets go on, and putting them there."""

    def __init__(self, neutron: NeutronApi, default: str = "") -> None:
        self._neutron = neutron
        self._default = default.strip()

    async def wanted(self, req: p.CreateNetworkRequest) -> str | None:
        """The id of the router the network's new subnets go on, None for none. An unknown
        router is refused here, before CreateNetwork makes anything."""
        if req.options.get(p.OPT_INTERNAL):
            return None
        ref = req.generic_options.get(OPT_ROUTER, self._default).strip()
        if not ref:
            return None
        return await self._resolve(ref)

    async def _resolve(self, ref: str) -> str:
        if naming.is_uuid(ref):
            found = await self._neutron.show("routers", ref)
            if found is not None:
                return str(found["id"])
        named = await self._neutron.query("routers", {"name": ref, "fields": ["id"]})
        if not named:
            raise NotFound(f"no Neutron router has the name or id {ref} ({OPT_ROUTER})")
        if len(named) > 1:
            raise Conflict(f"{len(named)} Neutron routers are named {ref}; give the router's id")
        return str(named[0]["id"])

    async def attach_made(
        self, router_id: str | None, made: list[Subnet], undo: list[Undo]
    ) -> None:
        """The subnets a CreateNetwork made go on the router (those tagged for it); ``undo``
        gets the detachments that roll this back."""
        if router_id is None:
            return
        for subnet in made:
            if router_tags(router_id, subnet):
                # Detached even when the attach's answer is lost (Neutron may have done it,
                # and a network with a router's interface cannot be deleted).
                undo.append(functools.partial(self._detach, router_id, subnet.id))
                await self.attach(router_id, subnet)

    async def _detach(self, router_id: str, subnet_id: str) -> None:
        try:
            await self._neutron.remove_router_interface(router_id, subnet_id)
        except NeutronError as exc:
            if not exc.not_found:  # never attached: the attach was refused
                raise

    async def attach(self, router_id: str, subnet: Subnet) -> None:
        """The router takes the subnet's gateway address (the subnet is already tagged)."""
        try:
            await self._neutron.add_router_interface(router_id, subnet.id)
        except NeutronError as exc:
            if exc.http_status in (400, 409):
                # Neutron refuses a CIDR overlapping another of the router's subnets.
                raise Conflict(
                    f"cannot attach subnet {subnet.id} ({subnet.cidr}) to router {router_id}: "
                    f"{exc.message}"
                ) from exc
            raise
        LOG.info("subnet %s (%s) attached to router %s", subnet.id, subnet.cidr, router_id)

    async def reattach(self, network: Network) -> None:
        """CreateNetwork again for a network Kuryr has (Docker retried, or a daemon died in
        the middle): its subnets tagged for a router and not on it yet go on it."""
        own = {s.id: s for s in network.subnets}
        raw = await self._neutron.query("subnets", {"network_id": network.neutron_id})
        tagged = [(r, own[s["id"]]) for s in raw if s["id"] in own for r in _routers(s)]
        if not tagged:
            return
        routers = {router for router, _ in tagged}
        attached = set()
        for router in routers:
            ports = await self._neutron.query(
                "ports", {"device_id": router, "network_id": network.neutron_id}
            )
            attached |= {(router, f["subnet_id"]) for pt in ports for f in pt["fixed_ips"]}
        for router, subnet in tagged:
            if (router, subnet.id) not in attached:
                await self.attach(router, subnet)


def router_tags(router_id: str | None, subnet: Subnet) -> list[str]:
    """The tag a subnet Kuryr made carries when it is to go on ``router_id``: none without a
    router, or without a gateway (the address the router's interface takes)."""
    if router_id is None or subnet.gateway_ip is None:
        return []
    return [naming.router_tag(router_id)]


async def detach(neutron: NeutronApi, subnets: Iterable[Resource]) -> None:
    """Take subnets that are about to go off the routers Kuryr attached them to: a router's
    interface keeps its subnet, and the network, from being deleted."""
    for subnet in subnets:
        for router_id in _routers(subnet):
            if await neutron.remove_router_interface(router_id, str(subnet["id"])):
                LOG.info("subnet %s detached from router %s", subnet["id"], router_id)


async def detach_network(neutron: NeutronApi, network_id: str) -> None:
    """:func:`detach` for every subnet of a network about to be deleted."""
    await detach(neutron, await neutron.query("subnets", {"network_id": network_id}))


def _routers(subnet: Resource) -> list[str]:
    return naming.routers_of(subnet.get("tags") or [])
