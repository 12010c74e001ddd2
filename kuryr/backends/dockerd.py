"""dockerd's API, read over its unix socket with the one unix-socket client
(:mod:`kuryr.backends.unixhttp`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kuryr.backends import unixhttp

SOCKET = Path("/var/run/docker.sock")
TIMEOUT = 10.0


def driver_names(name: str) -> tuple[str, str]:
    """What a Docker network may call the driver ``name``: the bare name (the daemon's
    socket ``<name>.sock``, or a managed plugin given by its bare name) and the managed
    plugin's reference with the tag Docker adds (``kuryr:latest``), which ``-d`` and
    ``--ipam-driver`` may have to name it by."""
    return (name, f"{name}:latest")


class DockerError(RuntimeError):
    """dockerd answered, and refused."""


def get(socket: Path, url: str, timeout: float = TIMEOUT) -> Any | None:
    """One GET: the decoded answer, None for a 404. OSError when nothing answers on
    ``socket``, DockerError when dockerd refuses, ValueError when the answer is not JSON."""
    status, raw = unixhttp.request(socket, "GET", url, timeout=timeout)
    if status == 404:
        return None
    if status >= 400:
        try:
            message = json.loads(raw or b"{}").get("message")
        except ValueError:
            message = None
        raise DockerError(f"dockerd: GET {url}: {message or f'HTTP {status}'}")
    return json.loads(raw)
