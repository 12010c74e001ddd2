"""The daemon's admin socket: pool control, and the reports of ``kuryr status`` and ``kuryr port``.

Going through the daemon, rather than writing Neutron and the state file from the CLI, is what
keeps "never handed out twice" true: only the daemon's event loop takes and adds pool ports, so
a fill or drain can never race a container start. It is a socket of its own, not routes on the
plugin socket, because Docker's protocol surface (and its fuzzing) stays exactly the libnetwork
API. Routes and path: :mod:`kuryr.ops.admin_api`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from kuryr.domain.ports.pools import Pools, PortPool
from kuryr.errors import KuryrError, NotFound
from kuryr.ops import admin_api
from kuryr.ops.admin_reports import pool_config

Report = Callable[[], dict[str, Any]]
PortReport = Callable[[list[str]], dict[str, Any]]


def make_app(pools: Pools, status: Report, ports: PortReport) -> web.Application:
    """Pool control, plus the ``status`` report and the ``ports`` of endpoints
    (see :mod:`kuryr.ops.admin_reports`)."""

    async def show(_: web.Request) -> web.Response:
        return web.json_response({"config": pool_config(pools), "pools": pools.show()})

    async def report(_: web.Request) -> web.Response:
        return web.json_response(status())

    async def endpoints(request: web.Request) -> web.Response:
        return web.json_response(ports(request.query.getall("id", [])))

    async def fill(request: web.Request) -> web.Response:
        body = await request.json()
        made = {}
        for pool in _selected(pools, body.get("subnet_id")):
            made[pool.subnet_id] = await pools.fill(
                pool, int(body.get("count") or pools.config.max)
            )
        return web.json_response({"created": made})

    async def drain(request: web.Request) -> web.Response:
        body = await request.json()
        removed = {}
        for pool in _selected(pools, body.get("subnet_id")):
            removed[pool.subnet_id] = await pools.drain(pool.subnet_id, int(body.get("keep") or 0))
        return web.json_response({"deleted": removed})

    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except KuryrError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        return response

    app = web.Application(middlewares=[errors])
    app.router.add_get(admin_api.POOLS, show)
    app.router.add_post(admin_api.POOLS_FILL, fill)
    app.router.add_post(admin_api.POOLS_DRAIN, drain)
    app.router.add_get(admin_api.STATUS, report)
    app.router.add_get(admin_api.ENDPOINTS, endpoints)
    return app


def _selected(pools: Pools, subnet_id: str | None) -> list[PortPool]:
    if not subnet_id:
        return pools.all()
    pool = pools.pool(subnet_id)
    if pool is None:
        raise NotFound(f"no pool for subnet {subnet_id}")
    return [pool]


@asynccontextmanager
async def serving(
    path: Path, pools: Pools, status: Report, ports: PortReport
) -> AsyncIterator[None]:
    runner = web.AppRunner(make_app(pools, status, ports), access_log=None)
    await runner.setup()
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    site = web.SockSite(runner, sock)
    try:
        await site.start()
        yield
    finally:
        await runner.cleanup()
        path.unlink(missing_ok=True)
