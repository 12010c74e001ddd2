"""Prometheus metrics of the daemon and the hooks other modules report through.

One registry for the process (metrics are process-wide by nature); it is served over HTTP only
when ``metrics_listen`` is configured. Label values are bounded: protocol method names come from
the server's route table, Neutron methods and resources from code, never from request input.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Docker's plugin calls take from ~1 ms (cached answers) to several seconds (Neutron writes).
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "kuryr_request_seconds",
    "Time to answer one Docker plugin request, by protocol method.",
    ["method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUEST_ERRORS = Counter(
    "kuryr_request_errors_total",
    "Docker plugin requests answered with an error, by protocol method and HTTP status.",
    ["method", "status"],
    registry=REGISTRY,
)
NEUTRON_CALLS = Counter(
    "kuryr_neutron_calls_total",
    "Neutron API calls made, by HTTP method and resource kind.",
    ["method", "resource"],
    registry=REGISTRY,
)
NEUTRON_SECONDS = Histogram(
    "kuryr_neutron_call_seconds",
    "Duration of Neutron API calls, by HTTP method and resource kind.",
    ["method", "resource"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
POOL_LEVEL = Gauge(
    "kuryr_pool_ports",
    "Pre-created Neutron ports ready to hand out, by subnet.",
    ["subnet"],
    registry=REGISTRY,
)


def observe_request(method: str, status: int, seconds: float) -> None:
    """Record one answered plugin request (called by the server)."""
    REQUEST_SECONDS.labels(method).observe(seconds)
    if status >= 400:
        REQUEST_ERRORS.labels(method, str(status)).inc()


@contextmanager
def neutron_call(method: str, resource: str) -> Iterator[None]:
    """Count and time one Neutron call: ``with neutron_call("POST", "ports"): ...``."""
    NEUTRON_CALLS.labels(method, resource).inc()
    start = time.perf_counter()
    try:
        yield
    finally:
        NEUTRON_SECONDS.labels(method, resource).observe(time.perf_counter() - start)


def set_pool_level(subnet: str, ports: int) -> None:
    """Report how many pre-created ports are ready on ``subnet``."""
    POOL_LEVEL.labels(subnet).set(ports)


def forget_pool(subnet: str) -> None:
    """Drop the gauge of a subnet whose pool is gone, so dead subnets do not linger."""
    try:
        POOL_LEVEL.remove(subnet)
    except KeyError:
        return


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    return app


def parse_listen(listen: str) -> tuple[str, int] | Path:
    """``unix:/path`` -> Path; ``HOST:PORT`` or ``[V6HOST]:PORT`` -> (host, port)."""
    if listen.startswith("unix:"):
        path = listen.removeprefix("unix:")
        if not path.startswith("/"):
            raise ValueError(f"metrics_listen {listen!r}: unix socket path must be absolute")
        return Path(path)
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics_listen {listen!r}: expected HOST:PORT or unix:/path")
    return host.strip("[]"), int(port)


@asynccontextmanager
async def serving(listen: str) -> AsyncIterator[None]:
    """Serve ``/metrics`` on ``listen`` for the duration of the block."""
    where = parse_listen(listen)
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site: web.BaseSite
    if isinstance(where, Path):
        where.unlink(missing_ok=True)
        site = web.UnixSite(runner, str(where))
    else:
        site = web.TCPSite(runner, where[0], where[1])
    try:
        await site.start()
        yield
    finally:
        await runner.cleanup()
        if isinstance(where, Path):
            where.unlink(missing_ok=True)
