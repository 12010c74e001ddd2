"""What dockerd says a reconciliation must keep: its Kuryr networks and the endpoints of
running containers on them."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from kuryr.backends import dockerd

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DockerView:
    """dockerd's Kuryr networks and the endpoints of running containers on them."""

    networks: frozenset[str]
    endpoints: dict[str, tuple[str, frozenset[str]]]  # endpoint id -> (network id, IPs)

    def held_addresses(self) -> dict[tuple[str, str], str]:
        """(Docker network id, IP) -> the endpoint holding it."""
        return {
            (network, ip): endpoint
            for endpoint, (network, ips) in self.endpoints.items()
            for ip in ips
        }


async def docker_view(socket: Path = dockerd.SOCKET) -> DockerView | None:
    """What dockerd says, or None when it does not answer (then nothing is judged by it)."""
    try:
        return await asyncio.to_thread(_read, socket)
    except (OSError, dockerd.DockerError, KeyError, ValueError, TypeError) as exc:
        LOG.warning("dockerd at %s does not answer (%s): ports are not judged", socket, exc)
        return None


def _read(socket: Path) -> DockerView:
    # A managed plugin's networks may name it with its tag: none of them may look unused.
    filters = urllib.parse.quote(json.dumps({"driver": list(dockerd.driver_names("kuryr"))}))
    listed = dockerd.get(socket, f"/networks?filters={filters}")
    if listed is None:
        raise dockerd.DockerError("dockerd: GET /networks: not found")
    endpoints: dict[str, tuple[str, frozenset[str]]] = {}
    for net in listed:
        detail = dockerd.get(socket, f"/networks/{net['Id']}")
        if detail is None:
            continue  # removed since the list
        for ep in (detail.get("Containers") or {}).values():
            ips = {
                str(ep[key]).partition("/")[0]
                for key in ("IPv4Address", "IPv6Address")
                if ep.get(key)
            }
            endpoints[str(ep["EndpointID"])] = (str(net["Id"]), frozenset(ips))
    return DockerView(frozenset(str(n["Id"]) for n in listed), endpoints)
