"""Docker's plugin HTTP surface: route table, request validation, error envelopes, the socket.

Every request goes through one dispatcher: look the path up in :data:`ROUTES`, validate the
body with the route's model, call one domain method, answer its ``wire()`` form. A request that
fails validation never reaches the domain. Errors are wrapped in the envelope of the route's
interface (:func:`envelope`); a stack trace never leaves the process. What a request means
beyond its answer (Docker is busy; a container's start and stop clocks) is recorded in one
place, :func:`_call`, so no handler has to remember it.
"""

from __future__ import annotations

import errno
import grp
import ipaddress
import json
import logging
import os
import socket
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from kuryr import deadline, metrics, request_ids
from kuryr.errors import CAUSE_HEADER, BackendError, InvalidRequest, KuryrError
from kuryr.plugin import protocol as p
from kuryr.plugin.api import IpamDriver, NetworkDriver

log = logging.getLogger(__name__)

# dockerd's largest requests (CreateNetwork with many options) are a few KiB.
MAX_BODY = 1024 * 1024
# Room for an error message that names the field without echoing a huge input back.
_MAX_MESSAGE_PART = 200
_MAX_ERRORS_SHOWN = 3
# In-flight requests get this long to finish on shutdown.
_SHUTDOWN_GRACE = 30.0


class Interface(Enum):
    """Which libnetwork interface a route belongs to; it decides the error envelope."""

    PLUGIN = "Plugin"
    NETWORK = "NetworkDriver"
    IPAM = "IpamDriver"


class ProtocolError(KuryrError):
    """A refusal at the HTTP level (wrong verb, body too large); its status is set per case."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def envelope(interface: Interface, message: str) -> dict[str, str]:
    """The error body Docker reads for ``interface``.

    dockerd's plugin client reads ``Err`` from any non-200 answer, while its IPAM driver reads
    ``Error`` from a 200 one, so IPAM errors carry both keys and users always see the message.
    """
    if interface is Interface.IPAM:
        return {"Error": message, "Err": message}
    return {"Err": message}


@dataclass(frozen=True)
class Domain:
    network: NetworkDriver
    ipam: IpamDriver
    # Entered while a request is served (any that reaches the domain: a container's, a
    # network's, a pool's): background work waits for a pause in these (kuryr.domain.quiet).
    busy: Callable[[], AbstractContextManager[None]]
    # GetCapabilities' Scope and ConnectivityScope (``capability_scope``).
    scope: str = "local"


class Wire(Protocol):
    def wire(self) -> dict[str, Any]: ...


Handler = Callable[[Domain, Any], Awaitable[Wire | None]]


@dataclass(frozen=True)
class Route:
    interface: Interface
    request: type[BaseModel] | None
    handler: Handler
    # False for routes answered by the server alone (no domain call).
    calls_domain: bool = True
    # A step of a container's start or stop: timed (kuryr.metrics).
    container: bool = False


def _constant(answer: Wire | None) -> Handler:
    async def handler(_domain: Domain, _request: Any) -> Wire | None:
        return answer

    return handler


def _fixed(interface: Interface, request: type[BaseModel] | None, answer: Wire | None) -> Route:
    return Route(interface, request, _constant(answer), calls_domain=False)


async def _capabilities(domain: Domain, _request: Any) -> Wire:
    return p.CapabilitiesResponse(scope=domain.scope, connectivity_scope=domain.scope)


_NET = Interface.NETWORK
_IPAM = Interface.IPAM
# kuryr-libnetwork's default address space names; Docker only echoes them back.
_NO_ADDRESS_SPACE = "no_address_space"

ROUTES: dict[str, Route] = {
    "/Plugin.Activate": _fixed(
        Interface.PLUGIN, None, p.ActivateResponse(implements=["NetworkDriver", "IpamDriver"])
    ),
    "/NetworkDriver.GetCapabilities": Route(_NET, None, _capabilities, calls_domain=False),
    "/NetworkDriver.CreateNetwork": Route(
        _NET, p.CreateNetworkRequest, lambda d, r: d.network.create_network(r)
    ),
    "/NetworkDriver.DeleteNetwork": Route(
        _NET, p.NetworkRequest, lambda d, r: d.network.delete_network(r)
    ),
    "/NetworkDriver.CreateEndpoint": Route(
        _NET, p.CreateEndpointRequest, lambda d, r: d.network.create_endpoint(r), container=True
    ),
    "/NetworkDriver.EndpointOperInfo": Route(
        _NET, p.EndpointRequest, lambda d, r: d.network.endpoint_oper_info(r)
    ),
    "/NetworkDriver.DeleteEndpoint": Route(
        _NET, p.EndpointRequest, lambda d, r: d.network.delete_endpoint(r), container=True
    ),
    "/NetworkDriver.Join": Route(
        _NET, p.JoinRequest, lambda d, r: d.network.join(r), container=True
    ),
    "/NetworkDriver.Leave": Route(
        _NET, p.EndpointRequest, lambda d, r: d.network.leave(r), container=True
    ),
    "/NetworkDriver.ProgramExternalConnectivity": Route(
        _NET,
        p.ExternalConnectivityRequest,
        lambda d, r: d.network.program_external_connectivity(r),
    ),
    "/NetworkDriver.RevokeExternalConnectivity": Route(
        _NET, p.EndpointRequest, lambda d, r: d.network.revoke_external_connectivity(r)
    ),
    # Node discovery does not concern Kuryr (Neutron knows the hosts): validate, agree.
    "/NetworkDriver.DiscoverNew": _fixed(_NET, p.DiscoveryRequest, None),
    "/NetworkDriver.DiscoverDelete": _fixed(_NET, p.DiscoveryRequest, None),
    # A swarm manager's, once the driver reports global scope (kuryr.domain.swarm).
    "/NetworkDriver.AllocateNetwork": Route(
        _NET, p.AllocateNetworkRequest, lambda d, r: d.network.allocate_network(r)
    ),
    "/NetworkDriver.FreeNetwork": Route(
        _NET, p.FreeNetworkRequest, lambda d, r: d.network.free_network(r)
    ),
    "/IpamDriver.GetCapabilities": _fixed(
        _IPAM,
        None,
        # No MAC from Docker: CreateEndpoint then hands out the Neutron port's MAC.
        p.IpamCapabilitiesResponse(requires_mac_address=False, requires_request_replay=False),
    ),
    "/IpamDriver.GetDefaultAddressSpaces": _fixed(
        _IPAM,
        None,
        p.AddressSpacesResponse(
            local_default="no_address_space", global_default="no_address_space"
        ),
    ),
    "/IpamDriver.RequestPool": Route(
        _IPAM, p.RequestPoolRequest, lambda d, r: d.ipam.request_pool(r)
    ),
    "/IpamDriver.ReleasePool": Route(
        _IPAM, p.ReleasePoolRequest, lambda d, r: d.ipam.release_pool(r)
    ),
    "/IpamDriver.RequestAddress": Route(
        _IPAM, p.RequestAddressRequest, lambda d, r: d.ipam.request_address(r), container=True
    ),
    "/IpamDriver.ReleaseAddress": Route(
        _IPAM, p.ReleaseAddressRequest, lambda d, r: d.ipam.release_address(r), container=True
    ),
}


def _clip(text: str, limit: int = _MAX_MESSAGE_PART) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def condense(error: ValidationError) -> str:
    """One line naming each bad field: ``EndpointID: must be a 64-character ...``."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    parts = []
    for problem in problems[:_MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{_clip(where, 80)}: {_clip(message)}")
    hidden = len(problems) - _MAX_ERRORS_SHOWN
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return "; ".join(parts)


def parse(name: str, model: type[BaseModel], body: bytes) -> BaseModel:
    """Validate ``body`` as ``model``; raise :class:`InvalidRequest` naming what is wrong."""
    if not body.strip():
        # Every method with a request carries one; dockerd was seen resending a request with
        # no body after the plugin socket was briefly away (a daemon restart). Taken as {}, an
        # empty RequestPool would quietly allocate a default pool.
        raise InvalidRequest(f"{name}: the request has no body (retry the docker command)")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"{name}: malformed JSON: {_clip(str(exc))}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{name}: the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"{name}: {condense(exc)}") from None


def _interface_of(path: str) -> Interface:
    return Interface.IPAM if path.startswith("/IpamDriver.") else Interface.NETWORK


async def _read_body(request: web.Request, name: str) -> bytes:
    too_large = ProtocolError(413, f"{name}: request body larger than {MAX_BODY} bytes")
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    headers: dict[str, str]


def _refusal(interface: Interface, exc: KuryrError) -> Answer:
    """A KuryrError's envelope; a backend failure also names its kind in a header."""
    headers = {CAUSE_HEADER: exc.cause} if isinstance(exc, BackendError) else {}
    return Answer(exc.status, json.dumps(envelope(interface, exc.message)), headers)


def _ip(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip)


def _clock_before(path: str, request: Any, started: float) -> None:
    """Start the clocks of kuryr.metrics that run from a request's arrival."""
    if isinstance(request, p.CreateEndpointRequest):
        iface = request.interface or p.EndpointInterface()
        given = [a for a in (iface.address, iface.address_ipv6) if a]
        metrics.endpoint_creating(request.endpoint_id, [_ip(a) for a in given], started)
    elif path == "/NetworkDriver.Leave":
        metrics.leaving(request.endpoint_id)


def _clock_after(path: str, request: Any, result: Wire | None, started: float) -> None:
    """Start or stop the clocks of kuryr.metrics that a request's success moves."""
    if isinstance(result, p.RequestAddressResponse) and not request.is_gateway:
        metrics.address_requested(_ip(result.address), started)
    elif path == "/NetworkDriver.Join":
        metrics.joined(request.endpoint_id)
    elif path == "/NetworkDriver.DeleteEndpoint":
        metrics.endpoint_deleted(request.endpoint_id)


async def _call(
    domain: Domain, path: str, route: Route, request: Any, started: float
) -> Wire | None:
    """The hook every validated request passes through on its way to the domain: Docker is
    busy while it is served, and a container request moves the container's start and stop
    clocks."""
    if not route.calls_domain:
        return await route.handler(domain, request)
    with domain.busy():
        if route.container:
            _clock_before(path, request, started)
        result = await route.handler(domain, request)
        if route.container:
            _clock_after(path, request, result, started)
        return result


async def _answer(
    domain: Domain, request: web.Request, route: Route, request_timeout: float, started: float
) -> Answer:
    """The answer to one request; every failure is turned into an envelope."""
    # Docker shows this message to users; the method name alone reads best there.
    name = request.path.rpartition(".")[2]
    rid = request_ids.current()
    try:
        if request.method != "POST":
            raise ProtocolError(405, f"{name}: only POST is allowed")
        body = await _read_body(request, name)
        parsed = parse(name, route.request, body) if route.request else None
        with deadline.bounded(request_timeout):
            result = await _call(domain, request.path, route, parsed, started)
        # Serialised here so an answer that cannot be encoded is an error like any other.
        return Answer(200, json.dumps({} if result is None else result.wire()), {})
    except KuryrError as exc:
        level = logging.WARNING if exc.status >= 500 else logging.INFO
        log.log(level, "%s refused (%d) [%s]: %s", name, exc.status, rid, exc.message)
        return _refusal(route.interface, exc)
    except Exception as exc:
        log.exception("%s failed [%s]", name, rid)
        message = f"internal error: {type(exc).__name__}: {_clip(str(exc), 500)}"
        return Answer(500, json.dumps(envelope(route.interface, message)), {})


def make_app(
    domain: Domain, request_timeout: float = deadline.DEFAULT_REQUEST_TIMEOUT
) -> web.Application:
    """The plugin application: every path goes to the dispatcher, which owns the envelopes.

    Each domain call runs under a ``request_timeout`` budget that its backend calls share,
    and under an id they all send to Neutron (kuryr.request_ids).
    """

    async def dispatch(request: web.Request) -> web.Response:
        start = time.perf_counter()
        route = ROUTES.get(request.path)
        rid: str | None = None  # an unknown method reaches no backend: no id to follow
        if route is None:
            method = "unknown"
            message = f"unknown method {_clip(request.path, 100)!r}"
            body = json.dumps(envelope(_interface_of(request.path), message))
            answer = Answer(404, body, {})
        else:
            method = request.path.removeprefix("/")
            with request_ids.serving() as rid:
                answer = await _answer(domain, request, route, request_timeout, start)
        elapsed = time.perf_counter() - start
        metrics.observe_request(method, answer.status, elapsed)
        ms = elapsed * 1000
        log.debug("%s %s -> %d in %.1f ms [%s]", request.method, method, answer.status, ms, rid)
        return web.Response(
            text=answer.text,
            status=answer.status,
            headers=answer.headers,
            content_type="application/json",
        )

    # The router's own size check would answer 413 in plain text, not in an envelope.
    app = web.Application(client_max_size=MAX_BODY + 1)
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


class StartupError(RuntimeError):
    """The socket cannot be served (in use, wrong kind of file, unknown group)."""


def _remove_stale(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"{path} exists and is not a socket; not removing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise StartupError(f"cannot probe {path}: {exc}") from None
        else:
            raise StartupError(f"another process is serving {path}")
    path.unlink(missing_ok=True)


def bind_unix(path: Path, group: str = "") -> socket.socket:
    """A bound unix socket at ``path``: mode 0600, or 0660 owned by ``group``.

    The umask covers the bind itself, so the socket is never reachable with looser rights.
    """
    try:
        gid = grp.getgrnam(group).gr_gid if group else None
    except KeyError:
        raise StartupError(f"socket_group {group!r} does not exist") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(previous)
        if gid is not None:
            os.chown(path, -1, gid)
            os.chmod(path, 0o660)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot bind {path}: {exc}") from None
    return sock


def _unlink_own(path: Path, inode: int) -> None:
    """Remove the socket unless another process has already replaced it."""
    try:
        if os.lstat(path).st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        return


@asynccontextmanager
async def serving(
    path: Path,
    domain: Domain,
    group: str = "",
    request_timeout: float = deadline.DEFAULT_REQUEST_TIMEOUT,
) -> AsyncIterator[None]:
    """Serve the plugin API on ``path`` for the duration of the block.

    On exit the socket file goes first (Docker stops dialing a daemon that is leaving), then
    in-flight requests are allowed to finish.
    """
    sock = bind_unix(path, group)
    inode = os.lstat(path).st_ino
    runner = web.AppRunner(
        make_app(domain, request_timeout), access_log=None, shutdown_timeout=_SHUTDOWN_GRACE
    )
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield
    finally:
        _unlink_own(path, inode)
        await runner.cleanup()
        sock.close()
