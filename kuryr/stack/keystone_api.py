"""Plain HTTP to the stack's Keystone (identity API v3): tokens, and the projects, users, role
grants, services and endpoints the stack needs, each made only when it is missing. The
stack's only Keystone client; the daemon authenticates through keystoneauth."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from kuryr.stack.layout import KEYSTONE_URL

DOMAIN = "default"


def call(
    method: str, path: str, token: str = "", body: dict[str, Any] | None = None, timeout: float = 10
) -> tuple[Any, str]:
    """The decoded answer (None when empty) and its ``X-Subject-Token`` header ("" if none)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{KEYSTONE_URL}/v3{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        subject = resp.headers.get("X-Subject-Token", "")
    return (json.loads(raw) if raw else None), subject


def answers() -> bool:
    try:
        call("GET", "", timeout=3)
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


def password_token(user: str, password: str, project: str) -> str:
    """A token of ``user`` scoped to ``project`` (both in the default domain)."""
    _, token = call(
        "POST",
        "/auth/tokens",
        body={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": user, "domain": {"id": DOMAIN}, "password": password}
                    },
                },
                "scope": {"project": {"name": project, "domain": {"id": DOMAIN}}},
            }
        },
    )
    return token


def find(token: str, kind: str, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    answer, _ = call("GET", f"/{kind}?{query}", token)
    return list(answer[kind])


def ensure(token: str, kind: str, name: str, attrs: dict[str, Any] | None = None) -> str:
    """The id of the ``kind`` (projects, users, roles, services) called ``name``, made with
    ``attrs`` if there is none."""
    found = find(token, kind, name=name)
    if found:
        return str(found[0]["id"])
    singular = kind.removesuffix("s")
    answer, _ = call("POST", f"/{kind}", token, {singular: {"name": name, **(attrs or {})}})
    return str(answer[singular]["id"])


def set_password(token: str, user_id: str, password: str) -> None:
    call("PATCH", f"/users/{user_id}", token, {"user": {"password": password}})


def grant(token: str, project_id: str, user_id: str, role_id: str) -> None:
    call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}", token)


def revoke(token: str, project_id: str, user_id: str, role_id: str) -> None:
    call("DELETE", f"/projects/{project_id}/users/{user_id}/roles/{role_id}", token)


def ensure_endpoint(token: str, service_id: str, interface: str, url: str, region: str) -> None:
    for endpoint in find(token, "endpoints", service_id=service_id, interface=interface):
        if endpoint["url"] == url:
            return
        call("DELETE", f"/endpoints/{endpoint['id']}", token)
    call(
        "POST",
        "/endpoints",
        token,
        {
            "endpoint": {
                "service_id": service_id,
                "interface": interface,
                "url": url,
                "region_id": region,
            }
        },
    )
