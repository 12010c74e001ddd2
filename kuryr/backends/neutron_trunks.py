"""The trunk calls of the Neutron client (``/trunks/<id>/add_subports``, ``remove_subports``):
sub-resource actions, plain PUTs on the client's transport."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kuryr.backends.neutron_api import Resource


class TrunkCalls:
    """Mixed into :class:`kuryr.backends.neutron.Neutron`, whose ``request`` they use."""

    async def request(
        self, method: str, resource: str, path: str, json: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def add_subports(self, trunk_id: str, subports: Sequence[Mapping[str, Any]]) -> Resource:
        return await self._put(trunk_id, "add_subports", [dict(s) for s in subports])

    async def remove_subports(self, trunk_id: str, port_ids: Sequence[str]) -> Resource:
        return await self._put(trunk_id, "remove_subports", [{"port_id": p} for p in port_ids])

    async def _put(self, trunk_id: str, action: str, sub_ports: list[dict[str, Any]]) -> Resource:
        path = f"/trunks/{trunk_id}/{action}"
        return await self.request("PUT", "trunks", path, json={"sub_ports": sub_ports})
