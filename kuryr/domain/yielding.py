"""The Neutron client the domain is given: each call first gives way to Docker's requests
when the task making it does background work that gives way (kuryr.domain.quiet.give_way: a
network removal); any other call goes straight through.

Why per call: neutron-server serves requests one after the other (one API worker here), so a
removal's dozen calls, made back to back, would queue a ``docker network create`` behind them;
given way one call at a time, Docker's requests wait for at most the call in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kuryr.backends.neutron_api import NeutronApi, Params, Resource
from kuryr.domain.quiet import Quiet


class Yielding(NeutronApi):
    def __init__(self, neutron: NeutronApi, quiet: Quiet) -> None:
        self._neutron = neutron
        self._quiet = quiet

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        await self._quiet.turn()
        return await self._neutron.query(resource, params)

    async def show(self, resource: str, resource_id: str) -> Resource | None:
        await self._quiet.turn()
        return await self._neutron.show(resource, resource_id)

    async def create(self, resource: str, attrs: Mapping[str, Any]) -> Resource:
        await self._quiet.turn()
        return await self._neutron.create(resource, attrs)

    async def create_bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]], timeout: float | None = None
    ) -> list[Resource]:
        await self._quiet.turn()
        return await self._neutron.create_bulk(resource, items, timeout)

    async def update(
        self,
        resource: str,
        resource_id: str,
        attrs: Mapping[str, Any],
        revision: int | None = None,
    ) -> Resource:
        await self._quiet.turn()
        return await self._neutron.update(resource, resource_id, attrs, revision)

    async def delete(self, resource: str, resource_id: str, revision: int | None = None) -> bool:
        await self._quiet.turn()
        return await self._neutron.delete(resource, resource_id, revision)

    async def set_tags(self, resource: str, resource_id: str, tags: Sequence[str]) -> list[str]:
        await self._quiet.turn()
        return await self._neutron.set_tags(resource, resource_id, tags)

    async def add_router_interface(self, router_id: str, subnet_id: str) -> Resource:
        await self._quiet.turn()
        return await self._neutron.add_router_interface(router_id, subnet_id)

    async def remove_router_interface(self, router_id: str, subnet_id: str) -> bool:
        await self._quiet.turn()
        return await self._neutron.remove_router_interface(router_id, subnet_id)

    async def port_forwardings(self, floating_ip_id: str) -> list[Resource]:
        await self._quiet.turn()
        return await self._neutron.port_forwardings(floating_ip_id)

    async def add_port_forwarding(self, floating_ip_id: str, attrs: Mapping[str, Any]) -> Resource:
        await self._quiet.turn()
        return await self._neutron.add_port_forwarding(floating_ip_id, attrs)

    async def delete_port_forwarding(self, floating_ip_id: str, forwarding_id: str) -> bool:
        await self._quiet.turn()
        return await self._neutron.delete_port_forwarding(floating_ip_id, forwarding_id)

    async def add_subports(self, trunk_id: str, subports: Sequence[Mapping[str, Any]]) -> Resource:
        await self._quiet.turn()
        return await self._neutron.add_subports(trunk_id, subports)

    async def remove_subports(self, trunk_id: str, port_ids: Sequence[str]) -> Resource:
        await self._quiet.turn()
        return await self._neutron.remove_subports(trunk_id, port_ids)
