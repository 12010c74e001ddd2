"""``kuryr pools show|fill|drain``: pool control through the running daemon.

The daemon serves a small admin API on ``<state_dir>/admin.sock`` (mode 0600 inside the
root-only state directory). Going through the daemon, rather than writing Neutron and the state
file from the CLI, is what keeps "never handed out twice" true: only the daemon's event loop
takes and adds pool ports, so a fill or drain can never race a container start. It is a socket
of its own, not routes on the plugin socket, because Docker's protocol surface (and its fuzzing)
stays exactly the libnetwork API.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from kuryr import config as config_mod
from kuryr.backends import unixhttp
from kuryr.domain.ports.pools import Pools, SubnetPool
from kuryr.errors import KuryrError, NotFound

SOCKET_NAME = "admin.sock"
_TIMEOUT = 60.0
_JSON = {"Content-Type": "application/json"}


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


# --- the daemon's side ---------------------------------------------------------------------------


Report = Callable[[], dict[str, Any]]
PortReport = Callable[[list[str]], dict[str, Any]]


def make_app(pools: Pools, status: Report, ports: PortReport) -> web.Application:
    """Pool control, plus ``GET /status``: the ``status`` report (see :mod:`kuryr.ops.status`), and
    ``GET /endpoints?id=...``: the ``ports`` of those endpoints (see :mod:`kuryr.ops.port`)."""

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
    app.router.add_get("/pools", show)
    app.router.add_post("/pools/fill", fill)
    app.router.add_post("/pools/drain", drain)
    app.router.add_get("/status", report)
    app.router.add_get("/endpoints", endpoints)
    return app


def pool_config(pools: Pools) -> dict[str, int]:
    return {"min": pools.config.min, "max": pools.config.max, "batch": pools.config.batch}


def _selected(pools: Pools, subnet_id: str | None) -> list[SubnetPool]:
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


# --- the CLI's side ------------------------------------------------------------------------------


def call(
    path: Path,
    method: str,
    route: str,
    body: dict[str, Any] | None = None,
    timeout: float = _TIMEOUT,
) -> Any:
    """One JSON request on a unix socket (the admin socket, or the plugin socket)."""
    data = json.dumps(body or {}).encode() if method == "POST" else None
    status, raw = unixhttp.request(path, method, route, data, timeout, _JSON)
    answer = json.loads(raw or b"{}")
    if status >= 400:
        raise RuntimeError(answer.get("error") or f"HTTP {status}")
    return answer


def main(args: argparse.Namespace) -> int:
    config_file = getattr(args, "config_file", None)
    config = config_mod.load(Path(config_file) if config_file else None)
    path = socket_path(config.state_dir)
    try:
        if args.action == "show":
            answer = call(path, "GET", "/pools")
        elif args.action == "fill":
            answer = call(
                path, "POST", "/pools/fill", {"subnet_id": args.subnet, "count": args.count}
            )
        else:
            answer = call(
                path, "POST", "/pools/drain", {"subnet_id": args.subnet, "keep": args.keep}
            )
    except (OSError, RuntimeError) as exc:
        print(f"kuryr pools {args.action}: {path}: {exc}", file=sys.stderr)
        return 1
    if args.action == "show" and not args.json:
        _print_table(answer)
    else:
        print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


def _print_table(answer: dict[str, Any]) -> None:
    cfg = answer["config"]
    print(f"pool config: min {cfg['min']}, max {cfg['max']}, batch {cfg['batch']}")
    print(f"{'subnet':36}  {'mode':5}  {'free':>4}  {'taken':>5}  {'creating':>8}")
    for pool in answer["pools"]:
        print(
            f"{pool['subnet_id']:36}  {pool['mode']:5}  {pool['free']:>4}  "
            f"{pool['taken']:>5}  {pool['creating']:>8}"
        )
