"""Malformed and mutated variants of the requests dockerd really sends, for fuzzing a plugin.

The seeds are the captured dockerd 20.10 requests in ``tests/data``. :func:`requests` is a
hypothesis strategy of :class:`FuzzRequest`; :func:`post` sends one to a plugin's unix socket
with the standard library only, so the same helpers drive the unit-test server and the real
daemon. A mutated request may still be valid (dropping an optional key, adding an unknown
one): callers judge by the answer, e.g. "4xx means nothing was changed".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from kuryr.backends import unixhttp
from kuryr.errors import CAUSE_HEADER

CAPTURE = Path(__file__).parent / "data" / "dockerd-20.10-payloads.jsonl"

NETWORK_METHODS = (
    "CreateNetwork",
    "DeleteNetwork",
    "CreateEndpoint",
    "EndpointOperInfo",
    "DeleteEndpoint",
    "Join",
    "Leave",
    "ProgramExternalConnectivity",
    "RevokeExternalConnectivity",
    "DiscoverNew",
    "DiscoverDelete",
    "AllocateNetwork",
    "FreeNetwork",
)
IPAM_METHODS = ("RequestPool", "ReleasePool", "RequestAddress", "ReleaseAddress")


@dataclass(frozen=True)
class FuzzRequest:
    path: str
    body: bytes
    mutation: str

    def __repr__(self) -> str:
        return f"FuzzRequest({self.path}, {self.mutation}, {self.body[:300]!r})"


@dataclass(frozen=True)
class Captured:
    path: str
    body: dict[str, Any]


@cache
def captured() -> tuple[Captured, ...]:
    """Every captured request that has a JSON body, in capture order."""
    seeds = []
    for line in CAPTURE.read_text().splitlines():
        record = json.loads(line)
        if isinstance(record["req"], dict):
            seeds.append(Captured(record["path"], record["req"]))
    return tuple(seeds)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=10,
    )


# Built once: hypothesis validates a strategy on first use, and a recursive one built afresh
# for every draw cost most of the generation time (the values drawn are the same).
_JSON_VALUES = _json_values()


_BAD_IDS = st.sampled_from(
    [
        "",
        "0",
        "A" * 64,
        "g" * 64,
        "a" * 63,
        "a" * 65,
        " " + "a" * 63,
        "a" * 63 + "\n",
        "../../" + "a" * 58,
        "a" * 32 + "é" * 32,
    ]
)
_BAD_ADDRESSES = st.sampled_from(
    ["", "10.0.0.1/33", "300.1.1.1", "10.0.0.0/8/8", "fe80::1%eth0/64", "localhost", "::/129"]
) | st.text(max_size=40)


def _paths(body: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside ``body`` (dict keys and list indices)."""
    found = []
    children: list[tuple[Any, Any]] = []
    if isinstance(body, dict):
        children = list(body.items())
    elif isinstance(body, list):
        children = list(enumerate(body))
    for key, value in children:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def _replace(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(body) if isinstance(body, dict) else list(body)
    # A one-step path may name a key the seed lacks: the mutation then adds it.
    copy[path[0]] = value if len(path) == 1 else _replace(copy[path[0]], path[1:], value)
    return copy


def _delete(body: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        copy: Any = dict(body) if isinstance(body, dict) else list(body)
        del copy[path[0]]
        return copy
    return _replace(body, path[:1], _delete(body[path[0]], path[1:]))


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()


_ID_FIELDS = ("NetworkID", "EndpointID", "PoolID")
_ADDRESS_FIELDS = ("Address", "AddressIPv6", "Pool", "SubPool", "Gateway", "MacAddress")


@cache
def _seeds_with(fields: tuple[str, ...]) -> st.SearchStrategy[tuple[Captured, list[Any]]]:
    """Each seed with its key paths; with ``fields``, the seeds holding one of them and only
    those paths. Computed once per ``fields`` rather than for every draw."""
    choices = []
    for seed in captured():
        paths = _paths(seed.body)
        if fields:
            paths = [p for p in paths if p[-1] in fields]
            if not paths:
                continue
        choices.append((seed, paths))
    return st.sampled_from(choices)


def _seed_paths(draw: st.DrawFn, fields: tuple[str, ...] = ()) -> tuple[Captured, list[Any]]:
    """A seed and its key paths; with ``fields``, a seed holding one of them and only those."""
    return draw(_seeds_with(fields))


@st.composite
def _mutated(draw: st.DrawFn) -> FuzzRequest:
    kind = draw(
        st.sampled_from(
            ["replace", "delete", "bad-id", "bad-address", "extra-key", "wrong-method", "as-is"]
        )
    )
    fields = {"bad-id": _ID_FIELDS, "bad-address": _ADDRESS_FIELDS}.get(kind, ())
    seed, paths = _seed_paths(draw, fields)
    body: Any = seed.body
    path = seed.path
    if kind in ("replace", "bad-id", "bad-address"):
        values = {"bad-id": _BAD_IDS, "bad-address": _BAD_ADDRESSES}.get(kind, _JSON_VALUES)
        body = _replace(body, draw(st.sampled_from(paths)), draw(values))
    elif kind == "delete":
        body = _delete(body, draw(st.sampled_from(paths)))
    elif kind == "extra-key":
        body = {**body, draw(st.text(min_size=1)): draw(_JSON_VALUES)}
    elif kind == "wrong-method":
        prefix = "/IpamDriver." if path.startswith("/NetworkDriver.") else "/NetworkDriver."
        path = prefix + draw(st.sampled_from(NETWORK_METHODS + IPAM_METHODS))
    return FuzzRequest(path, _encode(body), kind)


@st.composite
def _garbled(draw: st.DrawFn) -> FuzzRequest:
    seed = draw(st.sampled_from(captured()))
    raw = _encode(seed.body)
    kind = draw(st.sampled_from(["truncated", "bytes", "not-object", "deep", "flipped"]))
    if kind == "truncated":
        body = raw[: draw(st.integers(0, len(raw) - 1))]
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "not-object":
        body = _encode(draw(st.lists(_JSON_VALUES, max_size=3) | st.text() | st.integers()))
    elif kind == "deep":
        depth = draw(st.integers(10, 5000))
        body = b'{"NetworkID": ' + b"[" * depth + b"]" * depth + b"}"
    else:
        at = draw(st.integers(0, len(raw) - 1))
        body = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    return FuzzRequest(seed.path, body, kind)


@st.composite
def _unknown(draw: st.DrawFn) -> FuzzRequest:
    prefix = draw(st.sampled_from(["/NetworkDriver.", "/IpamDriver.", "/Plugin.", "/", "/x/"]))
    name = draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30))
    known = {f"/NetworkDriver.{m}" for m in NETWORK_METHODS} | {
        f"/IpamDriver.{m}" for m in IPAM_METHODS
    }
    path = prefix + name.replace("?", "").replace("#", "").replace("%", "")
    if path in known or path in ("/Plugin.Activate", "/NetworkDriver.GetCapabilities"):
        path += "X"
    return FuzzRequest(path, b"{}", "unknown-path")


def requests() -> st.SearchStrategy[FuzzRequest]:
    """Mutated captured requests, garbled bodies and unknown methods."""
    # one_of picks its branches evenly: repeating one weights it. Mutations of valid requests
    # reach the deepest validation, so they get most of the budget.
    return st.one_of(_mutated(), _mutated(), _mutated(), _garbled(), _garbled(), _unknown())


def post(socket_path: str | Path, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, Any]:
    """POST ``body`` like dockerd does (no Content-Type); return (status, decoded JSON body)."""
    status, answer, _ = post_reply(socket_path, path, body, timeout)
    return status, answer


def post_reply(
    socket_path: str | Path, path: str, body: bytes, timeout: float = 60.0
) -> tuple[int, Any, str]:
    """As :func:`post`, with the answer's backend failure kind (``X-Kuryr-Cause``, or "")."""
    reply = unixhttp.exchange(Path(socket_path), "POST", path, body, timeout)
    answer = json.loads(reply.body) if reply.body else None
    return reply.status, answer, reply.headers.get(CAUSE_HEADER.lower(), "")


# A 502 for these is Neutron's own trouble; any other cause (above all "neutron-4xx": Neutron
# refused input Kuryr passed on) is a gap in Kuryr's validation.
OUTAGE_CAUSES = frozenset({"neutron-unreachable", "neutron-timeout", "neutron-5xx", "deadline"})
