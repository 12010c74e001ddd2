"""In-memory NetworkDriver/IpamDriver that record their calls, for testing the HTTP surface only.

They answer plausibly and remember nothing else: routing, validation and envelopes are what the
server tests check, and "the domain saw no call" is how they prove a rejection changed nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kuryr.plugin import protocol as p
from kuryr.plugin import server
from kuryr.plugin.api import IpamDriver, NetworkDriver
from kuryr.plugin.server import Domain


@dataclass
class Recorder:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # Method name -> exception to raise instead of answering.
    failures: dict[str, BaseException] = field(default_factory=dict)
    oper_info: dict[str, Any] = field(default_factory=lambda: {"port": "fake"})
    # Method name -> what runs when it is called (after the call is recorded).
    during: dict[str, Callable[[], object]] = field(default_factory=dict)
    # How many requests the server said Docker was busy for (Domain.busy), and how many of
    # them are still being served.
    busy: int = 0
    serving: int = 0

    @contextmanager
    def mark_busy(self) -> Iterator[None]:
        self.busy += 1
        self.serving += 1
        try:
            yield
        finally:
            self.serving -= 1

    def record(self, method: str, request: Any) -> None:
        self.calls.append((method, request))
        if method in self.during:
            self.during[method]()
        if method in self.failures:
            raise self.failures[method]


class FakeNetwork(NetworkDriver):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder

    async def create_network(self, req: p.CreateNetworkRequest) -> None:
        self.rec.record("create_network", req)

    async def delete_network(self, req: p.NetworkRequest) -> None:
        self.rec.record("delete_network", req)

    async def create_endpoint(self, req: p.CreateEndpointRequest) -> p.CreateEndpointResponse:
        self.rec.record("create_endpoint", req)
        address = req.interface.address if req.interface else ""
        return p.CreateEndpointResponse(
            interface=p.EndpointInterface(address=address, mac_address="fa:16:3e:00:00:01")
        )

    async def endpoint_oper_info(self, req: p.EndpointRequest) -> p.EndpointOperInfoResponse:
        self.rec.record("endpoint_oper_info", req)
        return p.EndpointOperInfoResponse(value=self.rec.oper_info)

    async def delete_endpoint(self, req: p.EndpointRequest) -> None:
        self.rec.record("delete_endpoint", req)

    async def join(self, req: p.JoinRequest) -> p.JoinResponse:
        self.rec.record("join", req)
        return p.JoinResponse(
            interface_name=p.InterfaceName(src_name="tapfake", dst_prefix="eth"),
            gateway="10.0.0.1",
        )

    async def leave(self, req: p.EndpointRequest) -> None:
        self.rec.record("leave", req)

    async def program_external_connectivity(self, req: p.ExternalConnectivityRequest) -> None:
        self.rec.record("program_external_connectivity", req)

    async def revoke_external_connectivity(self, req: p.EndpointRequest) -> None:
        self.rec.record("revoke_external_connectivity", req)

    async def allocate_network(self, req: p.AllocateNetworkRequest) -> p.AllocateNetworkResponse:
        self.rec.record("allocate_network", req)
        return p.AllocateNetworkResponse()

    async def free_network(self, req: p.FreeNetworkRequest) -> None:
        self.rec.record("free_network", req)


class FakeIpam(IpamDriver):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder

    async def request_pool(self, req: p.RequestPoolRequest) -> p.RequestPoolResponse:
        self.rec.record("request_pool", req)
        pool = req.pool or "10.0.0.0/24"
        return p.RequestPoolResponse(pool_id=f"fake-{pool}", pool=pool)

    async def release_pool(self, req: p.ReleasePoolRequest) -> None:
        self.rec.record("release_pool", req)

    async def request_address(self, req: p.RequestAddressRequest) -> p.RequestAddressResponse:
        self.rec.record("request_address", req)
        return p.RequestAddressResponse(address=f"{req.address or '10.0.0.2'}/24")

    async def release_address(self, req: p.ReleaseAddressRequest) -> None:
        self.rec.record("release_address", req)


def fake_domain() -> tuple[Domain, Recorder]:
    recorder = Recorder()
    return Domain(FakeNetwork(recorder), FakeIpam(recorder), recorder.mark_busy), recorder


@asynccontextmanager
async def plugin() -> AsyncIterator[tuple[aiohttp.ClientSession, Recorder]]:
    """The server on a throwaway socket in front of the fake drivers, and a client for it."""
    domain, recorder = fake_domain()
    with tempfile.TemporaryDirectory(prefix="srv-") as name:
        path = Path(name) / "kuryr.sock"
        async with (
            server.serving(path, domain),
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session,
        ):
            yield session, recorder


async def post(session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> int:
    async with session.post(f"http://plugin{path}", data=json.dumps(body)) as resp:
        return resp.status
