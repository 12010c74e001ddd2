"""The plugin HTTP surface on a real unix socket, with in-memory fake drivers behind it."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kuryr import errors
from kuryr.plugin import protocol as p
from kuryr.plugin import server
from tests.fuzz_requests import captured
from tests.unit.fake_drivers import Recorder, fake_domain

NET = "0b707c5c251527c195db82fd7df44a27d6926b90bacf7ae3a232b450c6b8e9da"
EP = "c05208a9284ab56b8040eab24cfdf3a01854134a210cc1da2ee1de4a710e9296"


class Client:
    def __init__(self, session: aiohttp.ClientSession, recorder: Recorder, path: Path) -> None:
        self.session = session
        self.recorder = recorder
        self.path = path

    async def post(self, path: str, body: bytes | dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        async with self.session.post(f"http://plugin{path}", data=data or b"") as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed the 108-byte limit of a unix socket path.
    with tempfile.TemporaryDirectory(prefix="srv-") as name:
        yield Path(name)


@pytest.fixture
async def client(sock_dir: Path) -> AsyncIterator[Client]:
    domain, recorder = fake_domain()
    path = sock_dir / "plugins" / "kuryr.sock"
    async with (
        server.serving(path, domain),
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session,
    ):
        yield Client(session, recorder, path)


CONSTANT_ANSWERS = {
    "/Plugin.Activate": {"Implements": ["NetworkDriver", "IpamDriver"]},
    "/NetworkDriver.GetCapabilities": {"Scope": "local", "ConnectivityScope": "local"},
    "/IpamDriver.GetCapabilities": {"RequiresMACAddress": False, "RequiresRequestReplay": False},
    "/IpamDriver.GetDefaultAddressSpaces": {
        "LocalDefaultAddressSpace": "no_address_space",
        "GlobalDefaultAddressSpace": "no_address_space",
    },
}


@pytest.mark.parametrize("path", sorted(CONSTANT_ANSWERS))
async def test_constant_answers_without_body(client: Client, path: str) -> None:
    assert await client.post(path) == (200, CONSTANT_ANSWERS[path])
    assert client.recorder.calls == []


DOMAIN_CALLS = {
    "/NetworkDriver.CreateNetwork": "create_network",
    "/NetworkDriver.DeleteNetwork": "delete_network",
    "/NetworkDriver.CreateEndpoint": "create_endpoint",
    "/NetworkDriver.EndpointOperInfo": "endpoint_oper_info",
    "/NetworkDriver.DeleteEndpoint": "delete_endpoint",
    "/NetworkDriver.Join": "join",
    "/NetworkDriver.Leave": "leave",
    "/NetworkDriver.ProgramExternalConnectivity": "program_external_connectivity",
    "/NetworkDriver.RevokeExternalConnectivity": "revoke_external_connectivity",
    "/IpamDriver.RequestPool": "request_pool",
    "/IpamDriver.ReleasePool": "release_pool",
    "/IpamDriver.RequestAddress": "request_address",
    "/IpamDriver.ReleaseAddress": "release_address",
}


@pytest.mark.parametrize("path", sorted(DOMAIN_CALLS))
async def test_a_method_with_a_request_refuses_an_empty_body(client: Client, path: str) -> None:
    status, answer = await client.post(path, b"")
    assert status == 400
    assert any("has no body" in str(message) for message in answer.values()), answer
    assert client.recorder.calls == []


def first_captured(path: str) -> dict[str, Any]:
    return next(c.body for c in captured() if c.path == path)


@pytest.mark.parametrize("path", sorted(DOMAIN_CALLS))
async def test_captured_request_reaches_its_domain_method(client: Client, path: str) -> None:
    status, _ = await client.post(path, first_captured(path))
    assert status == 200
    [(method, request)] = client.recorder.calls
    assert method == DOMAIN_CALLS[path]
    assert request.model_dump(by_alias=True, exclude_unset=True).keys() <= set(first_captured(path))


def test_route_table_covers_the_protocol() -> None:
    answered = set(CONSTANT_ANSWERS) | set(DOMAIN_CALLS) | set(SWARM_CALLS)
    for method in ("DiscoverNew", "DiscoverDelete"):
        answered.add(f"/NetworkDriver.{method}")
    assert set(server.ROUTES) == answered


# swarmkit's network ids: 25 characters of base 36.
SWARM_NET = "q8pu5mcdn4pxl6tfv2zj6tq1k"
SWARM_CALLS = {
    "/NetworkDriver.AllocateNetwork": "allocate_network",
    "/NetworkDriver.FreeNetwork": "free_network",
}


@pytest.mark.parametrize("path", sorted(SWARM_CALLS))
async def test_swarm_allocation_reaches_the_domain(client: Client, path: str) -> None:
    status, _ = await client.post(path, {"NetworkID": SWARM_NET})
    assert status == 200
    [(method, request)] = client.recorder.calls
    assert (method, request.network_id) == (SWARM_CALLS[path], SWARM_NET)
    # A Docker network id is no swarm's: only a swarm manager allocates.
    for bad in ("swarmnet1", SWARM_NET.upper(), "", "x" * 64, "a" * 64):
        status, reply = await client.post(path, {"NetworkID": bad})
        assert status == 400, bad
        assert "NetworkID" in reply["Err"]
    assert len(client.recorder.calls) == 1


async def test_a_swarm_network_id_is_taken_where_docker_ids_are(client: Client) -> None:
    """A node creates a swarm network under the swarm's id: its endpoints come with it."""
    body = {**first_captured("/NetworkDriver.CreateEndpoint"), "NetworkID": SWARM_NET}
    status, _ = await client.post("/NetworkDriver.CreateEndpoint", body)
    assert status == 200
    assert client.recorder.calls[0][1].network_id == SWARM_NET
    status, _ = await client.post("/NetworkDriver.DeleteNetwork", {"NetworkID": "swarmnet1"})
    assert status == 400


@pytest.mark.parametrize("scope", ["local", "global"])
async def test_capabilities_report_the_configured_scope(sock_dir: Path, scope: str) -> None:
    domain, _ = fake_domain()
    domain = dataclasses.replace(domain, scope=scope)
    path = sock_dir / "plugins" / "scoped.sock"
    connector = aiohttp.UnixConnector(path=str(path))
    async with (
        server.serving(path, domain),
        aiohttp.ClientSession(connector=connector) as session,
        session.post("http://plugin/NetworkDriver.GetCapabilities") as resp,
    ):
        assert (resp.status, await resp.json()) == (
            200,
            {"Scope": scope, "ConnectivityScope": scope},
        )


async def test_domain_answers_are_shaped_for_docker(client: Client) -> None:
    body = first_captured("/NetworkDriver.CreateEndpoint")
    # Docker already set Address: echoing it back would make Docker roll the endpoint back.
    assert await client.post("/NetworkDriver.CreateEndpoint", body) == (
        200,
        {"Interface": {"Address": body["Interface"]["Address"], "MacAddress": "fa:16:3e:00:00:01"}},
    )
    join = {"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/var/run/docker/netns/x"}
    assert await client.post("/NetworkDriver.Join", join) == (
        200,
        {"InterfaceName": {"SrcName": "tapfake", "DstPrefix": "eth"}, "Gateway": "10.0.0.1"},
    )
    pool = {"AddressSpace": "", "Pool": "10.9.0.0/24", "V6": False}
    assert await client.post("/IpamDriver.RequestPool", pool) == (
        200,
        {"PoolID": "fake-10.9.0.0/24", "Pool": "10.9.0.0/24", "Data": {}},
    )


@pytest.mark.parametrize(
    ("path", "body", "answer"),
    [
        ("/NetworkDriver.DiscoverNew", {"DiscoveryType": 1, "DiscoveryData": {"x": 1}}, {}),
        ("/NetworkDriver.DiscoverDelete", {"DiscoveryType": 1}, {}),
    ],
)
async def test_server_answered_methods_validate_and_agree(
    client: Client, path: str, body: dict[str, Any], answer: dict[str, Any]
) -> None:
    assert await client.post(path, body) == (200, answer)
    status, reply = await client.post(path, {})
    assert status == 400
    assert "Field required" in reply["Err"]
    assert client.recorder.calls == []


@pytest.mark.parametrize(
    ("path", "key_set"),
    [
        ("/NetworkDriver.Nope", {"Err"}),
        ("/IpamDriver.Nope", {"Err", "Error"}),
        ("/Plugin.Deactivate", {"Err"}),
        ("/", {"Err"}),
    ],
)
async def test_unknown_method_is_404_in_an_envelope(
    client: Client, path: str, key_set: set[str]
) -> None:
    status, reply = await client.post(path, {})
    assert status == 404
    assert set(reply) == key_set
    assert path in reply["Err"]


async def test_get_is_refused(client: Client) -> None:
    async with client.session.get("http://plugin/NetworkDriver.GetCapabilities") as resp:
        assert resp.status == 405
        assert "only POST" in (await resp.json())["Err"]


def with_field(path: str, field: str, value: Any) -> dict[str, Any]:
    return {**first_captured(path), field: value}


def without_field(path: str, field: str) -> dict[str, Any]:
    return {k: v for k, v in first_captured(path).items() if k != field}


BAD_REQUESTS = [
    (
        "/NetworkDriver.CreateEndpoint",
        with_field("/NetworkDriver.CreateEndpoint", "EndpointID", "A" * 64),
        "CreateEndpoint: EndpointID: must be a 64-character lowercase hex Docker id",
    ),
    (
        "/NetworkDriver.CreateNetwork",
        without_field("/NetworkDriver.CreateNetwork", "NetworkID"),
        "CreateNetwork: NetworkID: Field required",
    ),
    (
        "/NetworkDriver.CreateNetwork",
        with_field("/NetworkDriver.CreateNetwork", "IPv4Data", [{"Pool": "10.0.0.0/33"}]),
        "CreateNetwork: IPv4Data.0.Pool: ",
    ),
    (
        "/NetworkDriver.CreateNetwork",
        with_field("/NetworkDriver.CreateNetwork", "Options", {"com.docker.network.generic": 1}),
        "CreateNetwork: Options: com.docker.network.generic must be an object",
    ),
    (
        "/NetworkDriver.Join",
        with_field("/NetworkDriver.Join", "SandboxKey", 7),
        "Join: SandboxKey: Input should be a valid string",
    ),
    (
        "/IpamDriver.RequestAddress",
        with_field("/IpamDriver.RequestAddress", "Address", "10.0.0.300"),
        "RequestAddress: Address: ",
    ),
    (
        "/IpamDriver.ReleasePool",
        with_field("/IpamDriver.ReleasePool", "PoolID", ""),
        "ReleasePool: PoolID: ",
    ),
    (
        "/IpamDriver.RequestPool",
        with_field("/IpamDriver.RequestPool", "Options", ["x"]),
        "RequestPool: Options: Input should be a valid dictionary",
    ),
]


@pytest.mark.parametrize(("path", "body", "message"), BAD_REQUESTS)
async def test_invalid_request_is_400_naming_the_field(
    client: Client, path: str, body: dict[str, Any], message: str
) -> None:
    status, reply = await client.post(path, body)
    assert status == 400
    assert reply["Err"].startswith(message)
    if path.startswith("/IpamDriver."):
        assert reply["Error"] == reply["Err"]
    else:
        assert set(reply) == {"Err"}
    assert client.recorder.calls == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "CreateNetwork: malformed JSON: "),
        (b"\xff\xfe\x00", "CreateNetwork: malformed JSON: "),
        (b"[1, 2]", "CreateNetwork: the body must be a JSON object"),
        (b"", "CreateNetwork: the request has no body"),
        (b'{"NetworkID": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "CreateNetwork: malformed"),
    ],
)
async def test_unparseable_body_is_400(client: Client, body: bytes, message: str) -> None:
    status, reply = await client.post("/NetworkDriver.CreateNetwork", body)
    assert status == 400
    assert reply["Err"].startswith(message)
    assert client.recorder.calls == []


async def test_many_errors_are_condensed_to_one_line(client: Client) -> None:
    body = {"NetworkID": "x", "EndpointID": "y", "Interface": {"Address": "z", "MacAddress": 1}}
    status, reply = await client.post("/NetworkDriver.CreateEndpoint", body)
    assert status == 400
    assert "\n" not in reply["Err"]
    assert reply["Err"].endswith("; and 1 more")


async def test_huge_input_is_not_echoed_back(client: Client) -> None:
    body = with_field("/IpamDriver.RequestAddress", "Address", "9" * 100_000)
    status, reply = await client.post("/IpamDriver.RequestAddress", body)
    assert status == 400
    assert len(reply["Error"]) < 500


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_the_limit_is_413(client: Client, chunked: bool) -> None:
    huge = json.dumps({"NetworkID": NET, "Options": {"x": "a" * server.MAX_BODY}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    data: Any = chunks() if chunked else huge
    async with client.session.post("http://plugin/NetworkDriver.CreateNetwork", data=data) as r:
        assert r.status == 413
        assert "larger than" in (await r.json(content_type=None))["Err"]
    assert client.recorder.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequest("no such subnet option"), 400),
        (errors.NotFound("network gone"), 404),
        (errors.Conflict("address in use"), 409),
        (errors.BackendError("Neutron timed out after 10 s"), 502),
    ],
)
async def test_kuryr_errors_keep_their_status_and_message(
    client: Client, error: errors.KuryrError, status: int
) -> None:
    client.recorder.failures["create_network"] = error
    client.recorder.failures["request_pool"] = error
    net_reply = await client.post("/NetworkDriver.CreateNetwork", {"NetworkID": NET})
    assert net_reply == (status, {"Err": error.message})
    ipam_reply = await client.post("/IpamDriver.RequestPool", {})
    assert ipam_reply == (status, {"Err": error.message, "Error": error.message})


async def test_unexpected_exception_is_500_without_a_trace(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.recorder.failures["leave"] = ZeroDivisionError("division by zero")
    status, reply = await client.post("/NetworkDriver.Leave", {"NetworkID": NET, "EndpointID": EP})
    assert (status, reply) == (500, {"Err": "internal error: ZeroDivisionError: division by zero"})
    assert "Traceback" in caplog.text


async def test_answer_that_cannot_be_encoded_is_500(client: Client) -> None:
    client.recorder.oper_info = {"not json": {1, 2}}
    body = {"NetworkID": NET, "EndpointID": EP}
    status, reply = await client.post("/NetworkDriver.EndpointOperInfo", body)
    assert status == 500
    assert reply["Err"].startswith("internal error: TypeError: ")


async def test_socket_is_owner_only(client: Client) -> None:
    mode = os.stat(client.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


async def test_socket_with_group_is_group_accessible(sock_dir: Path) -> None:
    domain, _ = fake_domain()
    path = sock_dir / "g.sock"
    group = os.getgrouplist("root", 0)[0] if os.getuid() == 0 else os.getgid()
    name = __import__("grp").getgrgid(group).gr_name
    async with server.serving(path, domain, group=name):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == group
    assert not path.exists()


async def test_stale_socket_is_replaced_and_removed_on_exit(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))
    domain, _ = fake_domain()
    async with server.serving(path, domain):
        assert path.exists()
    assert not path.exists()


async def test_live_socket_is_not_stolen(client: Client) -> None:
    domain, _ = fake_domain()
    with pytest.raises(server.StartupError, match="another process is serving"):
        async with server.serving(client.path, domain):
            pass
    assert await client.post("/Plugin.Activate") == (200, CONSTANT_ANSWERS["/Plugin.Activate"])


async def test_regular_file_is_not_removed(sock_dir: Path) -> None:
    path = sock_dir / "precious"
    path.write_text("keep me")
    domain, _ = fake_domain()
    with pytest.raises(server.StartupError, match="not a socket"):
        async with server.serving(path, domain):
            pass
    assert path.read_text() == "keep me"


async def test_unknown_group_is_a_startup_error(sock_dir: Path) -> None:
    domain, _ = fake_domain()
    with pytest.raises(server.StartupError, match="srv-no-such-group"):
        async with server.serving(sock_dir / "x.sock", domain, group="srv-no-such-group"):
            pass
    assert not (sock_dir / "x.sock").exists()


def test_allocate_network_takes_swarmkits_nulls() -> None:
    """What swarmkit sends: no IPv6Data (null) and the spec's options, which may be null."""
    req = p.AllocateNetworkRequest.model_validate(
        {
            "NetworkID": SWARM_NET,
            "Options": None,
            "IPv4Data": [{"AddressSpace": "", "Pool": "10.10.3.0/24", "Gateway": "10.10.3.1/24"}],
            "IPv6Data": None,
        }
    )
    assert (req.options, req.ipv6_data, req.ipv4_data[0].pool) == ({}, [], "10.10.3.0/24")
