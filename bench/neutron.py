"""The bench's few direct Neutron calls (noauth): subnetpools for the reference driver and
a liveness check. The drivers under test make their own calls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

NEUTRON_URL = "http://127.0.0.1:9696"


def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(NEUTRON_URL + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def answers() -> bool:
    try:
        call("GET", "/v2.0/networks?limit=1")
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


def ensure_subnetpool(name: str, prefix: str, default_prefixlen: int) -> str:
    """The id of the subnetpool called ``name``, created if missing."""
    found = call("GET", f"/v2.0/subnetpools?name={name}")["subnetpools"]
    if found:
        return str(found[0]["id"])
    body = {
        "subnetpool": {"name": name, "prefixes": [prefix], "default_prefixlen": default_prefixlen}
    }
    return str(call("POST", "/v2.0/subnetpools", body)["subnetpool"]["id"])


def version() -> str:
    """The API's current version string, e.g. ``v2.0``."""
    versions = call("GET", "/")["versions"]
    current = [v["id"] for v in versions if v.get("status") == "CURRENT"]
    return current[0] if current else "unknown"


def holds(address: str) -> bool:
    """Whether any Neutron port has ``address`` among its fixed IPs."""
    found = call("GET", f"/v2.0/ports?fixed_ips=ip_address%3D{address}&fields=id")["ports"]
    return bool(found)
