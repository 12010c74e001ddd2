"""A fake dockerd on a unix socket: the two reads reconciliation makes (its Kuryr networks,
and the endpoints of running containers on each), answered from what a test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class Endpoint:
    network_id: str
    endpoint_id: str
    address: str  # without prefix length


@dataclass
class FakeDockerd:
    socket: Path
    networks: set[str] = field(default_factory=set)
    endpoints: list[Endpoint] = field(default_factory=list)

    def running(self, network_id: str, endpoint_id: str, address: str) -> None:
        """A running container's endpoint (its network is listed too)."""
        self.networks.add(network_id)
        self.endpoints.append(Endpoint(network_id, endpoint_id, address))

    async def list_networks(self, _: web.Request) -> web.Response:
        return web.json_response([{"Id": n, "Driver": "kuryr"} for n in sorted(self.networks)])

    async def show_network(self, request: web.Request) -> web.Response:
        network_id = request.match_info["id"]
        if network_id not in self.networks:
            return web.json_response({"message": "not found"}, status=404)
        containers = {
            f"c{i}": {"EndpointID": e.endpoint_id, "IPv4Address": f"{e.address}/24"}
            for i, e in enumerate(self.endpoints)
            if e.network_id == network_id
        }
        return web.json_response({"Id": network_id, "Containers": containers})


@asynccontextmanager
async def serving(socket: Path) -> AsyncIterator[FakeDockerd]:
    dockerd = FakeDockerd(socket)
    app = web.Application()
    app.router.add_get("/networks", dockerd.list_networks)
    app.router.add_get("/networks/{id}", dockerd.show_network)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.UnixSite(runner, str(socket))
    await site.start()
    try:
        yield dockerd
    finally:
        await runner.cleanup()
