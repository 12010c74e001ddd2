"""Plain HTTP to the local noauth Neutron: no auth headers means admin in project
``fake_project_id``. The stack's only Neutron client; the daemon has its own."""

from __future__ import annotations

import ipaddress
import json
import secrets
import urllib.error
import urllib.request
from typing import Any

from kuryr.stack.layout import NEUTRON_URL

V4_POOL = ("kuryr", "10.10.0.0/16", 24)
V6_POOL_NAME = "kuryr6"


def call(method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{NEUTRON_URL}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def answers() -> bool:
    try:
        call("GET", "/v2.0/networks?limit=1", timeout=3)
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


def random_ula() -> str:
    """An RFC 4193 unique local /48: fd00::/8 plus a random 40-bit global id."""
    global_id = secrets.randbits(40)
    return str(ipaddress.IPv6Network(((0xFD << 120) | (global_id << 80), 48)))


def ensure_subnetpool(name: str, prefix: str, default_prefixlen: int) -> dict[str, Any]:
    """The subnetpool called ``name``, created (shared) only if it does not exist yet."""
    found = call("GET", f"/v2.0/subnetpools?name={name}")["subnetpools"]
    if found:
        pool: dict[str, Any] = found[0]
        return pool
    created: dict[str, Any] = call(
        "POST",
        "/v2.0/subnetpools",
        {
            "subnetpool": {
                "name": name,
                "prefixes": [prefix],
                "default_prefixlen": default_prefixlen,
                "shared": True,
            }
        },
    )["subnetpool"]
    return created


def ensure_default_pools() -> list[dict[str, Any]]:
    name, prefix, length = V4_POOL
    return [
        ensure_subnetpool(name, prefix, length),
        ensure_subnetpool(V6_POOL_NAME, random_ula(), 64),
    ]
