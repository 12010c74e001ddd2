"""A counting HTTP proxy in front of Neutron: each listening port stands for one daemon, and
every request it forwards is appended to a JSON-lines log (who, arrival and completion time,
method, path, status, and the request's ``X-OpenStack-Request-ID`` as ``rid``: Kuryr's
daemon sends the id of the Docker request it serves, null for its background work). Run as
``python -m bench.proxy --upstream URL --log FILE --listen kuryr=127.0.0.1:19697 --listen
kuryrlib=127.0.0.1:19696``."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import IO

from aiohttp import ClientSession, ClientTimeout, web

# Headers that describe one hop, not the message; aiohttp sets its own.
_HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Host",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Proxy-Connection",
        "TE",
        "Upgrade",
    )
)

Handler = Callable[[web.Request], Awaitable[web.Response]]
# keystoneauth's global_request_id header (kuryr.request_ids).
REQUEST_ID_HEADER = "X-OpenStack-Request-ID"


def _forwardable(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}


def make_handler(who: str, upstream: str, session: ClientSession, log: IO[str]) -> Handler:
    async def forward(request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        async with session.request(
            request.method,
            upstream + request.path_qs,
            data=body or None,
            headers=_forwardable(request.headers),
            allow_redirects=False,
        ) as upstream_resp:
            payload = await upstream_resp.read()
            status = upstream_resp.status
            headers = _forwardable(upstream_resp.headers)
        record = {
            "who": who,
            "t0": arrived,
            "t1": time.time(),
            "method": request.method,
            "path": request.path_qs,
            "status": status,
            "rid": request.headers.get(REQUEST_ID_HEADER),
        }
        log.write(json.dumps(record) + "\n")
        log.flush()
        return web.Response(body=payload, status=status, headers=headers)

    return forward


def _parse_listen(spec: str) -> tuple[str, str, int]:
    who, _, address = spec.partition("=")
    host, _, port = address.rpartition(":")
    if not who or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected WHO=HOST:PORT, got {spec!r}")
    return who, host, int(port)


async def serve(upstream: str, log_path: str, listens: list[tuple[str, str, int]]) -> None:
    session = ClientSession(timeout=ClientTimeout(total=120), auto_decompress=False)
    runners: list[web.AppRunner] = []
    with open(log_path, "a", buffering=1) as log:
        try:
            for who, host, port in listens:
                app = web.Application(client_max_size=64 * 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", make_handler(who, upstream, session, log))
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, host, port).start()
                runners.append(runner)
            await asyncio.Event().wait()
        finally:
            for runner in runners:
                await runner.cleanup()
            await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--listen", action="append", type=_parse_listen, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.upstream.rstrip("/"), args.log, args.listen))


if __name__ == "__main__":
    main()
