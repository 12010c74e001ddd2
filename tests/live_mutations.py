"""Mutations of dockerd's captured requests aimed at live Kuryr networks, for fuzzing.

:func:`live_requests` retargets a captured request at one of two live networks (a Kuryr-IPAM
one with its pool, a Docker-IPAM one, each with one endpoint) and then makes it wrong in a way
that looks right: ids of the other live resources, out-of-range and in-use addresses, IPv6
oddities, bad CIDRs, MACs Neutron refuses, options of the wrong type, huge bodies, or a
CreateNetwork with a fresh id and a drawn option that reaches Neutron when valid.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.e2e.helpers import Neutron
from tests.fuzz_requests import Captured, captured

HUGE = 200_000


@dataclass(frozen=True)
class LiveNetwork:
    docker_id: str
    cidr: ipaddress.IPv4Network
    pool_id: str
    endpoint: str
    address: str

    @property
    def gateway(self) -> str:
        return str(self.cidr.network_address + 1)


@dataclass(frozen=True)
class Live:
    kuryr: LiveNetwork
    docker: LiveNetwork
    # Free /24s for CreateNetwork requests with fresh ids (one each: Docker IPAM subnets
    # come from the default subnetpool, where CIDRs cannot overlap).
    spare: tuple[ipaddress.IPv4Network, ...]

    @property
    def networks(self) -> tuple[LiveNetwork, LiveNetwork]:
        return (self.kuryr, self.docker)


def free_cidrs(neutron: Neutron, count: int) -> list[ipaddress.IPv4Network]:
    """/24s of the default pool that no subnet uses now."""
    used = [ipaddress.IPv4Network(s["cidr"]) for s in neutron.find("subnets", ip_version="4")]
    found: list[ipaddress.IPv4Network] = []
    while len(found) < count:
        candidate = ipaddress.IPv4Network(f"10.10.{secrets.randbelow(200) + 50}.0/24")
        if not any(candidate.overlaps(u) for u in used + found):
            found.append(candidate)
    return found


@dataclass(frozen=True)
class LiveRequest:
    path: str
    body: Any
    mutation: str

    def encoded(self) -> bytes:
        if self.mutation == "huge-body":
            return json.dumps(self.body).encode()[:-1] + b', "Pad": "' + b"x" * HUGE + b'"}'
        return json.dumps(self.body).encode()

    def __repr__(self) -> str:
        return f"LiveRequest({self.path}, {self.mutation}, {json.dumps(self.body)[:300]})"


def retarget(seed: Captured, net: LiveNetwork) -> dict[str, Any]:
    """The seed aimed at a live network: its ids, its subnet and addresses inside it."""
    body = dict(seed.body)
    prefix = net.cidr.prefixlen
    if "NetworkID" in body:
        body["NetworkID"] = net.docker_id
    if "EndpointID" in body:
        body["EndpointID"] = net.endpoint
    if "PoolID" in body:
        body["PoolID"] = net.pool_id or f"no-such-pool/{net.cidr}"
    if isinstance(body.get("Interface"), dict):
        body["Interface"] = {**body["Interface"], "Address": f"{net.address}/{prefix}"}
    if body.get("IPv4Data"):
        space = "no_address_space" if net.pool_id else "LocalDefault"
        gateway = f"{net.gateway}/{prefix}"
        body["IPv4Data"] = [{"AddressSpace": space, "Pool": str(net.cidr), "Gateway": gateway}]
    if seed.path == "/IpamDriver.RequestPool":
        body["Pool"] = str(net.cidr)
        body["AddressSpace"] = "no_address_space"
    if seed.path in ("/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress") and body.get(
        "Address"
    ):
        body["Address"] = str(net.cidr.network_address + 20)
    return body


def _wrong_ids(live: Live, net: LiveNetwork) -> list[Any]:
    other = live.docker if net is live.kuryr else live.kuryr
    return [
        other.docker_id,
        other.endpoint,
        secrets.token_hex(32),
        net.docker_id.upper(),
        net.endpoint[:63],
        net.docker_id + "0",
        f"{net.pool_id}/extra",
        f"{net.pool_id.partition('/')[0]}/{other.cidr}",
        f"{net.pool_id.partition('/')[0]}/10.10.0.0/33",
        f"{net.pool_id.partition('/')[0]}",
        "00000000-0000-0000-0000-000000000000/10.10.0.0/24",
        net.pool_id.replace("/", "//"),
        "/" + net.pool_id,
        0,
        None,
        [net.docker_id],
    ]


def _wrong_addresses(live: Live, net: LiveNetwork) -> list[Any]:
    cidr = net.cidr
    other = live.docker if net is live.kuryr else live.kuryr
    base, last = cidr.network_address, cidr.broadcast_address
    return [
        str(base),
        str(last),
        f"{base}/{cidr.prefixlen}",
        f"{last}/{cidr.prefixlen}",
        net.gateway,
        f"{net.gateway}/{cidr.prefixlen}",
        net.address,
        f"{net.address}/{cidr.prefixlen}",
        other.address,
        f"{other.address}/{cidr.prefixlen}",
        f"{base + 30}/8",
        f"{base + 30}/32",
        f"{base + 30}/0",
        f"{base + 30}/33",
        "10.255.255.254/24",
        "0.0.0.0",
        "0.0.0.0/0",
        "255.255.255.255/32",
        "224.0.0.5/24",
        "127.0.0.1/8",
        "169.254.1.1/16",
        "fe80::1/64",
        "fe80::1%eth0/64",
        "::ffff:" + str(base + 30),
        f"::ffff:{base + 30}/120",
        "2001:db8::1/64",
        "2001:db8::/129",
        "ff02::1/64",
        "::/0",
        "::1/128",
        str(cidr),
        str(cidr.supernet(8)),
        f"{base}/30",
        "10.10.0.0/16",
        "010.010.000.001/24",
        f"{base + 30}",
        int(base + 30),
        "a" * 100,
        "",
        None,
        True,
        [f"{base + 30}/24"],
    ]


_MACS = [
    "ff:ff:ff:ff:ff:ff",
    "01:00:5e:00:00:01",
    "33:33:00:00:00:01",
    "00:00:00:00:00:00",
    "02:42:AC:11:00:02",
    "02-42-ac-11-00-02",
    "0242.ac11.0002",
    "02:42:ac:11:00",
    "02:42:ac:11:00:02:03",
    "",
    42,
]

_OPTION_VALUES: list[Any] = [
    "",
    "0",
    "-1",
    "1e9",
    "abc",
    "68",
    "9000",
    "65536",
    0,
    -1,
    70000,
    True,
    None,
    [],
    {},
    ["x"],
    {"a": {"b": 1}},
    "x" * 300,
    "é\u0000\n",
]

_OPTION_KEYS = [
    "com.docker.network.driver.mtu",
    "com.docker.network.enable_ipv6",
    "com.docker.network.internal",
    "com.docker.network.generic",
    "com.docker.network.endpoint.macaddress",
    "com.docker.network.endpoint.exposedports",
    "com.docker.network.portmap",
    "RequestAddressType",
    "neutron.net.uuid",
    "neutron.net.name",
    "neutron.net.shared",
    "neutron.subnet.uuid",
    "neutron.subnet.name",
    "neutron.subnet.v6.uuid",
    "neutron.subnet.v6.name",
    "neutron.pool.uuid",
    "neutron.pool.name",
    "neutron.pool.v6.uuid",
    "neutron.pool.v6.name",
    "neutron.subnetpool.uuid",
    "neutron.subnetpool.name",
]

_EXPOSED: list[Any] = [
    [{"Proto": 6, "Port": 0}],
    [{"Proto": 6, "Port": 65536}],
    [{"Proto": 6, "Port": -5}],
    [{"Proto": 6, "Port": True}],
    [{"Proto": 6, "Port": "80"}],
    [{"Proto": 1, "Port": 80}],
    [{"Proto": 132, "Port": 80}],
    [{"Proto": 6.0, "Port": 80}],
    [{"Proto": 6, "Port": 80.5}],
    [{"Proto": 6, "Port": 80}] * 300,
    [{"Port": 80}],
    [None],
    {"Proto": 6, "Port": 80},
]


def _paths(body: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    children = (
        body.items()
        if isinstance(body, dict)
        else enumerate(body)
        if isinstance(body, list)
        else []
    )
    for key, value in children:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def _put(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(body) if isinstance(body, dict) else list(body)
    copy[path[0]] = value if len(path) == 1 else _put(copy[path[0]], path[1:], value)
    return copy


def _option_paths(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where options go: the top-level Options and, for CreateNetwork, its generic options."""
    if "Options" not in body and not any(k in body for k in ("NetworkID", "PoolID")):
        return []
    paths: list[tuple[Any, ...]] = [("Options",)]
    generic = (body.get("Options") or {}).get("com.docker.network.generic")
    if isinstance(generic, dict):
        paths.append(("Options", "com.docker.network.generic"))
    return paths


_SPACES = ("", "no_address_space", "LocalDefault", "GlobalDefault", "feaslocal")
_ID_KEYS = ("NetworkID", "EndpointID", "PoolID")
_ADDRESS_KEYS = ("Address", "AddressIPv6", "Pool", "SubPool", "Gateway")
_KINDS = (
    "as-is",
    "wrong-id",
    "wrong-address",
    "mac",
    "option",
    "exposed",
    "v6-data",
    "huge-body",
    "delete",
    "type",
    "fresh-network",
)


@st.composite
def live_requests(draw: st.DrawFn, live: Live) -> LiveRequest:
    # Each method as likely as any other: the capture holds many more of some.
    path = draw(st.sampled_from(sorted({seed.path for seed in captured()})))
    seed = draw(st.sampled_from([seed for seed in captured() if seed.path == path]))
    net = draw(st.sampled_from(live.networks))
    body: Any = retarget(seed, net)
    kind = draw(st.sampled_from(_KINDS))
    paths = _paths(body)
    by_key = {
        k: [path for path in paths if path[-1] == k]
        for k in (*_ID_KEYS, *_ADDRESS_KEYS, "MacAddress")
    }
    if kind == "wrong-id" and any(by_key[k] for k in _ID_KEYS):
        where = draw(st.sampled_from([path for k in _ID_KEYS for path in by_key[k]]))
        body = _put(body, where, draw(st.sampled_from(_wrong_ids(live, net))))
    elif kind == "wrong-address" and any(by_key[k] for k in _ADDRESS_KEYS):
        where = draw(st.sampled_from([path for k in _ADDRESS_KEYS for path in by_key[k]]))
        body = _put(body, where, draw(st.sampled_from(_wrong_addresses(live, net))))
    elif kind == "mac" and (by_key["MacAddress"] or _option_paths(body)):
        mac = draw(st.sampled_from(_MACS))
        use_interface = draw(st.booleans())
        if by_key["MacAddress"] and use_interface:
            body = _put(body, by_key["MacAddress"][0], mac)
        else:
            options = dict(body.get("Options") or {})
            body = {**body, "Options": {**options, "com.docker.network.endpoint.macaddress": mac}}
    elif kind == "option" and _option_paths(body):
        where = draw(st.sampled_from(_option_paths(body)))
        key = draw(st.sampled_from(_OPTION_KEYS))
        value = draw(st.sampled_from(_OPTION_VALUES + _wrong_ids(live, net)[:4]))
        current = body
        for step in where:
            current = (current or {}).get(step) if isinstance(current, dict) else None
        body = _put(body, where, {**(current if isinstance(current, dict) else {}), key: value})
    elif kind == "exposed" and "Options" in body:
        key = draw(
            st.sampled_from(
                ["com.docker.network.endpoint.exposedports", "com.docker.network.portmap"]
            )
        )
        body = {
            **body,
            "Options": {**(body.get("Options") or {}), key: draw(st.sampled_from(_EXPOSED))},
        }
    elif kind == "v6-data" and "IPv4Data" in body:
        data = {
            "AddressSpace": draw(st.sampled_from(_SPACES)),
            "Pool": draw(st.sampled_from(_wrong_addresses(live, net))),
            "Gateway": draw(st.sampled_from(_wrong_addresses(live, net))),
        }
        body = {**body, draw(st.sampled_from(["IPv4Data", "IPv6Data"])): [data]}
    elif kind == "delete" and paths:
        body = _drop(body, draw(st.sampled_from(paths)))
    elif kind == "type" and paths:
        where = draw(st.sampled_from(paths))
        body = _put(
            body, where, draw(st.sampled_from([0, 1.5, True, None, "", [], {}, "x" * 1000]))
        )
    elif kind == "fresh-network" and seed.path == "/NetworkDriver.CreateNetwork":
        body = _fresh_network(draw, live)
    elif kind not in ("as-is", "huge-body"):
        kind = "as-is"
    return LiveRequest(seed.path, body, kind)


def _fresh_network(draw: st.DrawFn, live: Live) -> dict[str, Any]:
    """A CreateNetwork that reaches Neutron when valid: a fresh id, a free pool, and an
    option (top-level or generic) of a drawn value."""
    cidr = draw(st.sampled_from(live.spare))
    gateway = f"{cidr.network_address + 1}/{cidr.prefixlen}"
    generic: dict[str, Any] = {}
    options: dict[str, Any] = {"com.docker.network.enable_ipv6": False}
    key = draw(st.sampled_from(_OPTION_KEYS))
    value = draw(st.sampled_from(_OPTION_VALUES))
    (generic if draw(st.booleans()) else options)[key] = value
    return {
        "NetworkID": secrets.token_hex(32),
        "Options": {**options, "com.docker.network.generic": generic},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": str(cidr), "Gateway": gateway}],
        "IPv6Data": [],
    }


def _drop(body: Any, path: tuple[Any, ...]) -> Any:
    if len(path) > 1:
        return _put(body, path[:1], _drop(body[path[0]], path[1:]))
    copy: Any = dict(body) if isinstance(body, dict) else list(body)
    del copy[path[0]]
    return copy
