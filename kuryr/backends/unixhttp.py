"""A minimal HTTP client over a unix socket: dockerd's API, the plugin socket, the admin socket."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_JSON = {"Content-Type": "application/json"}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


@dataclass(frozen=True)
class Reply:
    status: int
    # Header names lower-cased (HTTP header names are case-insensitive).
    headers: dict[str, str]
    body: bytes


def exchange(
    path: Path,
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request and its whole reply; raises OSError when nothing answers on the socket,
    or not in HTTP."""
    conn = _UnixConnection(path, timeout)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        resp = conn.getresponse()
        received = {name.lower(): value for name, value in resp.getheaders()}
        return Reply(resp.status, received, resp.read())
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def request(
    path: Path,
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request: the reply's status and body (see :func:`exchange`)."""
    reply = exchange(path, method, url, body, timeout, headers)
    return reply.status, reply.body


def json_call(
    path: Path,
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> Any:
    """One JSON request (the admin socket's, the plugin socket's): the decoded answer. A
    refusal raises RuntimeError with the answer's ``error``; nothing answering, OSError."""
    data = json.dumps(body or {}).encode() if method == "POST" else None
    status, raw = request(path, method, url, data, timeout, _JSON)
    answer = json.loads(raw or b"{}")
    if status >= 400:
        raise RuntimeError(answer.get("error") or f"HTTP {status}")
    return answer
