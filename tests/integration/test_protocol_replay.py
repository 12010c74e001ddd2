"""dockerd's captured requests and malformed variants, replayed at the real daemon's socket.

Requests that name networks, endpoints or pools the daemon has never seen, and malformed
requests, must get a clear error in their interface's envelope (``Err`` for NetworkDriver,
``Error`` for IpamDriver, a 4xx status) and change nothing in Neutron or OVS. Valid captured
CreateNetwork/RequestPool requests are replayed as round trips that must leave nothing behind.

"Nothing changed" is judged on every Neutron network, subnet, port, subnetpool and security
group and every OVS interface that appeared during the test and carries a trace of what was
sent (an id, or a prefix overlapping a sent CIDR). Other engineers share the stack, so a
resource that appeared for an unrelated reason is not blamed on the daemon.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import StackFacts
from tests.e2e.helpers import PLUGIN_SOCK, Neutron, run, settle
from tests.fuzz_requests import Captured, captured, post

pytestmark = pytest.mark.stack

# moby pkg/plugins: a plugin that cannot be dialled is retried for about 15 s.
DOCKERD_PLUGIN_RETRY = 15.0
# A previous test's final listing serves as the next "before" only this soon after it.
SNAPSHOT_REUSE = 10.0
KINDS = ("networks", "subnets", "ports", "subnetpools", "security-groups")
HEX_ID = re.compile(r"\b[0-9a-f]{64}\b")
CIDR = re.compile(r"[0-9a-fA-F.:]+/\d{1,3}")
# Answers to these may be a plain success for an unknown id: Docker's teardown must not
# get stuck on something already gone.
TEARDOWN = {
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.Leave",
    "/NetworkDriver.RevokeExternalConnectivity",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.ReleaseAddress",
}
# Valid requests that create something; replayed only as round trips.
CREATING = {"/NetworkDriver.CreateNetwork", "/IpamDriver.RequestPool"}


def ovs_interfaces() -> dict[str, str]:
    """Every OVS interface as name -> its external_ids in JSON."""
    out = run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"])
    return {name: json.dumps(ext) for name, ext in json.loads(out.stdout)["data"]}


@dataclass(frozen=True)
class Snapshot:
    """Every Neutron resource id, by kind, at one moment."""

    taken: float
    neutron: dict[str, set[str]]


@dataclass
class Trace:
    """What was sent, and the resources that existed before it was."""

    neutron: Neutron
    fingerprints: set[str] = field(default_factory=set)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    before: dict[str, set[str]] = field(default_factory=dict)
    ovs_before: set[str] = field(default_factory=set)
    # What the last leftovers() listing saw: the next test's "before".
    last: Snapshot | None = None

    def start(self, earlier: Snapshot | None = None) -> None:
        """Take "before" now; Neutron's part may come from ``earlier``, the previous test's
        final listing taken moments ago. Neutron ids are never reused, so an older listing
        only counts more resources as new (never fewer): it can fail a test but never pass
        one. Listing Neutron's networks costs ~0.4 s each time, half of this module's run.
        OVS interface names can come back, and listing them is cheap: always taken now."""
        self.ovs_before = set(ovs_interfaces())
        if earlier is not None:
            self.before = earlier.neutron
            return
        self.before = {kind: {r["id"] for r in self.neutron.find(kind)} for kind in KINDS}

    def note(self, body: bytes) -> None:
        text = body.decode(errors="replace")
        for ident in HEX_ID.findall(text):
            self.fingerprints.update({ident[:8], ident[:12], ident[:32], ident[32:]})
        for cidr in CIDR.findall(text):
            try:
                self.networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                continue

    def _traced(self, kind: str, resource: dict[str, Any], marks: set[str]) -> bool:
        dump = json.dumps(resource)
        if any(mark in dump for mark in marks):
            return True
        # RequestPool carries no Docker id: a pool is traced by its prefixes alone.
        return kind == "subnetpools" and any(
            overlaps(sent, prefix) for prefix in resource["prefixes"] for sent in self.networks
        )

    def leftovers(self) -> list[str]:
        marks = set(self.fingerprints)
        found = []
        listed: dict[str, set[str]] = {}
        # Networks first: their Neutron ids then trace the subnets and ports on them.
        for kind in KINDS:
            resources = self.neutron.find(kind)
            listed[kind] = {r["id"] for r in resources}
            for resource in resources:
                if resource["id"] not in self.before[kind] and self._traced(kind, resource, marks):
                    found.append(f"{kind} {resource['id']} {resource.get('name')}")
                    marks.add(resource["id"])
        for name, ext in ovs_interfaces().items():
            if name not in self.ovs_before and any(m in name + ext for m in marks):
                found.append(f"OVS interface {name} {ext}")
        self.last = Snapshot(time.monotonic(), listed)
        return found


def overlaps(sent: ipaddress.IPv4Network | ipaddress.IPv6Network, prefix: str) -> bool:
    other = ipaddress.ip_network(prefix)
    if isinstance(sent, ipaddress.IPv4Network) and isinstance(other, ipaddress.IPv4Network):
        return sent.overlaps(other)
    if isinstance(sent, ipaddress.IPv6Network) and isinstance(other, ipaddress.IPv6Network):
        return sent.overlaps(other)
    return False


@pytest.fixture(scope="module")
def snapshots() -> list[Snapshot]:
    """The last test's final listing (at most one), kept for the next test's "before"."""
    return []


@pytest.fixture
def trace(stack: StackFacts, snapshots: list[Snapshot]) -> Iterator[Trace]:
    if not stack.kuryr_healthy:
        pytest.fail(f"the Kuryr daemon is not healthy: {stack.kuryr_detail}", pytrace=False)
    recorded = Trace(Neutron())
    fresh = [s for s in snapshots if time.monotonic() - s.taken < SNAPSHOT_REUSE]
    snapshots.clear()
    recorded.start(fresh[0] if fresh else None)
    yield recorded
    # Deletions may complete after the answer; the bound only stops a broken run.
    nothing: list[str] = []
    leftovers = settle(recorded.leftovers, nothing)
    # Its listing includes anything this test left, so the next test does not blame it.
    if recorded.last is not None:
        snapshots.append(recorded.last)
    assert leftovers == [], f"the daemon left resources behind: {leftovers}"


def send(trace: Trace, path: str, body: bytes) -> tuple[int, Any]:
    """POST as dockerd does, including its patience with a plugin it cannot reach: the shared
    daemon may be restarting (other engineers' tests restart it), and dockerd retries a plugin
    whose socket is missing or refuses for ~15 s before it gives up."""
    trace.note(body)
    give_up = time.monotonic() + DOCKERD_PLUGIN_RETRY
    while True:
        try:
            return post(PLUGIN_SOCK, path, body)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def assert_error(path: str, status: int, answer: Any) -> None:
    """A 4xx with a non-empty message in the envelope of the path's interface."""
    assert 400 <= status < 500, f"{path}: status {status} {answer}"
    assert isinstance(answer, dict), f"{path}: answer {answer!r}"
    key = "Error" if path.startswith("/IpamDriver.") else "Err"
    message = (
        answer.get(key)
        if path.startswith(("/NetworkDriver.", "/IpamDriver."))
        else (answer.get("Err") or answer.get("Error"))
    )
    assert isinstance(message, str) and message.strip(), f"{path}: no {key!r} in {answer}"


def fresh_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The body with every Docker id (and pool id) replaced by one nobody has seen."""
    text = json.dumps(body)
    for ident in set(HEX_ID.findall(text)):
        text = text.replace(ident, secrets.token_hex(32))
    fresh: dict[str, Any] = json.loads(text)
    if "PoolID" in fresh:
        fresh["PoolID"] = f"e2e-unknown-pool-{secrets.token_hex(8)}"
    return fresh


def unknown_state_requests() -> list[Captured]:
    """Captured requests that only make sense for state created earlier, once per shape."""
    seen: set[tuple[str, str]] = set()
    picked = []
    for item in captured():
        shape = (item.path, json.dumps(sorted(item.body)))
        if item.path not in CREATING and shape not in seen:
            seen.add(shape)
            picked.append(item)
    return picked


@pytest.mark.parametrize("item", unknown_state_requests(), ids=lambda c: c.path.removeprefix("/"))
def test_request_for_unknown_state_is_refused_cleanly(trace: Trace, item: Captured) -> None:
    path = item.path
    status, answer = send(trace, path, json.dumps(fresh_ids(item.body)).encode())
    if path in TEARDOWN and status == 200:
        assert answer in ({}, None), f"{path}: {answer}"
    else:
        assert_error(path, status, answer)


def _sample(path: str) -> dict[str, Any]:
    return next(c.body for c in captured() if c.path == path)


def malformed() -> Iterator[tuple[str, str, bytes]]:
    """(id, path, body) for each malformed variant: syntax, types, missing fields, bad ids."""
    paths = sorted({c.path for c in captured()})
    for path in paths:
        sample = fresh_ids(_sample(path))
        name = path.removeprefix("/")
        yield f"{name}-truncated", path, json.dumps(sample).encode()[:-3]
        yield f"{name}-not-utf8", path, b"\xff\xfe{\x00"
        yield f"{name}-array", path, b"[]"
        yield f"{name}-string", path, b'"CreateNetwork"'
        for key in sample:
            yield f"{name}-{key}-wrong-type", path, json.dumps({**sample, key: [12345]}).encode()
        for key in ("NetworkID", "EndpointID", "PoolID"):
            if key in sample:
                rest = {k: v for k, v in sample.items() if k != key}
                yield f"{name}-{key}-missing", path, json.dumps(rest).encode()
        for key in ("NetworkID", "EndpointID"):
            if key in sample:
                for bad in ("A" * 64, "../../" + "a" * 58, "", "a" * 63, "a" * 65):
                    body = json.dumps({**sample, key: bad}).encode()
                    yield f"{name}-{key}-bad-id-{len(bad)}-{bad[:2]}", path, body
    huge = json.dumps({**_sample("/NetworkDriver.CreateNetwork"), "Pad": "x" * (4 << 20)})
    yield "CreateNetwork-huge", "/NetworkDriver.CreateNetwork", huge.encode()
    yield "RequestPool-huge", "/IpamDriver.RequestPool", b'{"Pad": "' + b"y" * (4 << 20) + b'"}'
    for path in ("/NetworkDriver.Nope", "/IpamDriver.Nope", "/Plugin.Nope", "/nope"):
        yield f"unknown-method{path.replace('/', '-')}", path, b"{}"


MALFORMED = list(malformed())


@pytest.mark.parametrize(
    ("path", "body"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_request_is_refused_cleanly(trace: Trace, path: str, body: bytes) -> None:
    status, answer = send(trace, path, body)
    if path.endswith(".Nope") or path == "/nope":
        assert status == 404, f"{path}: {status} {answer}"
    assert_error(path, status, answer)


def test_plugin_handshake_answers(trace: Trace) -> None:
    status, answer = send(trace, "/Plugin.Activate", b"")
    assert status == 200 and set(answer["Implements"]) == {"NetworkDriver", "IpamDriver"}
    status, answer = send(trace, "/NetworkDriver.GetCapabilities", b"")
    assert status == 200 and answer["Scope"] == "local"
    status, answer = send(trace, "/IpamDriver.GetCapabilities", b"")
    assert status == 200 and answer["RequiresMACAddress"] is False
    status, answer = send(trace, "/IpamDriver.GetDefaultAddressSpaces", b"")
    assert status == 200 and answer["LocalDefaultAddressSpace"]


def create_network_shapes() -> list[dict[str, Any]]:
    """One captured CreateNetwork per distinct option set (dual stack, internal, -o ...)."""
    shapes: dict[str, dict[str, Any]] = {}
    for item in captured():
        if item.path == "/NetworkDriver.CreateNetwork":
            key = json.dumps([item.body["Options"], len(item.body["IPv6Data"])], sort_keys=True)
            shapes.setdefault(key, item.body)
    return list(shapes.values())


@pytest.mark.parametrize("body", create_network_shapes(), ids=lambda b: b["NetworkID"][:8])
def test_create_network_round_trip_leaves_nothing(trace: Trace, body: dict[str, Any]) -> None:
    request = fresh_ids(body)
    status, answer = send(trace, "/NetworkDriver.CreateNetwork", json.dumps(request).encode())
    assert status == 200 and answer == {}, f"CreateNetwork: {status} {answer}"
    ident = request["NetworkID"]
    tags = f"kuryr.net.uuid.lh:{ident[:32]},kuryr.net.uuid.uh:{ident[32:]}"
    assert len(trace.neutron.find("networks", tags=tags)) == 1
    status, answer = send(
        trace, "/NetworkDriver.DeleteNetwork", json.dumps({"NetworkID": ident}).encode()
    )
    assert status == 200 and answer == {}, f"DeleteNetwork: {status} {answer}"


def request_pool_shapes() -> list[dict[str, Any]]:
    shapes: dict[str, dict[str, Any]] = {}
    for item in captured():
        if item.path == "/IpamDriver.RequestPool":
            shapes.setdefault(json.dumps(sorted(k for k, v in item.body.items() if v)), item.body)
    return list(shapes.values())


@pytest.mark.parametrize("body", request_pool_shapes(), ids=lambda b: b["Pool"] or "any")
def test_request_pool_round_trip_leaves_nothing(trace: Trace, body: dict[str, Any]) -> None:
    request = {**body, "AddressSpace": ""}
    status, answer = send(trace, "/IpamDriver.RequestPool", json.dumps(request).encode())
    assert status == 200 and answer.get("PoolID"), f"RequestPool: {status} {answer}"
    trace.note(json.dumps(answer).encode())
    if body["Pool"]:
        assert answer["Pool"] == body["Pool"]
    release = json.dumps({"PoolID": answer["PoolID"]}).encode()
    status, answer = send(trace, "/IpamDriver.ReleasePool", release)
    assert status == 200 and not answer, f"ReleasePool: {status} {answer}"
