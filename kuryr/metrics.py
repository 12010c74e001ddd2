"""Prometheus metrics of the daemon and the hooks other modules report through.

One registry for the process (metrics are process-wide by nature); it is served over HTTP only
when ``metrics_listen`` is configured. Label values are bounded: protocol method names come from
the server's route table, Neutron methods and resources from code, never from request input.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
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
START_SECONDS = Histogram(
    "kuryr_container_start_seconds",
    "Time from a container's first plugin request on a Kuryr network (RequestAddress with "
    "Kuryr IPAM, else CreateEndpoint) to its Join answered.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STOP_SECONDS = Histogram(
    "kuryr_container_stop_seconds",
    "Time from a container's Leave to its DeleteEndpoint answered (the ReleaseAddress that "
    "follows is answered from memory).",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
# Clocks of starts and stops in progress; a container Docker abandons midway never ends its
# clock, so the oldest are dropped beyond this many.
_CLOCKS_KEPT = 4096


class _Clocks:
    """Start times by key (address, endpoint id), oldest dropped beyond a bound."""

    def __init__(self) -> None:
        self._started: OrderedDict[str, float] = OrderedDict()

    def start(self, key: str, at: float | None = None) -> None:
        self._started[key] = time.perf_counter() if at is None else at
        self._started.move_to_end(key)
        while len(self._started) > _CLOCKS_KEPT:
            self._started.popitem(last=False)

    def stop(self, key: str) -> float | None:
        """Seconds since ``key`` started (None when it never did); forgets ``key``."""
        started = self._started.pop(key, None)
        return None if started is None else time.perf_counter() - started

    def take(self, key: str) -> float | None:
        """When ``key`` started (None when it never did); forgets ``key``."""
        return self._started.pop(key, None)


_ADDRESSES = _Clocks()
_STARTS = _Clocks()
_STOPS = _Clocks()


def address_requested(address: str, started: float) -> None:
    """RequestAddress (begun at ``started``, a perf_counter time) gave ``address``."""
    _ADDRESSES.start(address, started)


def endpoint_creating(endpoint_id: str, addresses: Iterable[str], started: float) -> None:
    """CreateEndpoint began at ``started``; the start's clock runs from the earliest of that and
    the RequestAddress of its addresses."""
    earlier = [t for t in (_ADDRESSES.take(a) for a in addresses) if t is not None]
    _STARTS.start(endpoint_id, min([started, *earlier]))


def joined(endpoint_id: str) -> None:
    seconds = _STARTS.stop(endpoint_id)
    if seconds is not None:
        START_SECONDS.observe(seconds)


def leaving(endpoint_id: str) -> None:
    _STOPS.start(endpoint_id)


def endpoint_deleted(endpoint_id: str) -> None:
    seconds = _STOPS.stop(endpoint_id)
    if seconds is not None:
        STOP_SECONDS.observe(seconds)


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
