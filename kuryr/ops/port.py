"""``kuryr port CONTAINER``: the Neutron port of each Kuryr network of one container.

dockerd names the container's endpoints (its API on the unix socket); the daemon answers
``GET /endpoints?id=...`` on its admin socket (:mod:`kuryr.ops.pools_admin`) from its local state:
port id, IPs, MAC, VIF names, whether the port's Neutron bookkeeping (device_id, name, tags;
kuryr.domain.ports.journal) is done or still journaled, and the port's status as the daemon last
knew it.
Nothing asks Neutron, so the answer is there at once, also right after ``docker run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuryr import config as config_mod
from kuryr.backends import unixhttp
from kuryr.backends.binding.base import container_ifname, host_ifname
from kuryr.backends.state import State
from kuryr.config import BOOKKEEPING_IMMEDIATE, Config
from kuryr.ops import pools_admin

ROUTE = "/endpoints"
DOCKER_TIMEOUT = 10.0
BOOKKEEPING_DONE = "done"
BOOKKEEPING_PENDING = "pending"
STATUS_UNKNOWN = "unknown"

# What the journal writes for a port handed to an endpoint: a PUT of device_id and name, a PUT
# of its tags (kuryr.domain.ports.journal).
BOOKKEEPING_WRITES = 2
# A port's status (ACTIVE, DOWN, ...) as the daemon last knew it, by port id; None: not known.
PortStatus = Callable[[str], str | None]


def bookkeeping_bound(config: Config) -> float:
    """Seconds after CreateEndpoint answers by which the port's device_id, name and tags are
    in Neutron: 0 with ``immediate`` bookkeeping; with ``deferred``, the journal's delay, then
    at most ``background_longest`` waiting for a pause in Docker's requests (kuryr.domain.quiet),
    then the writes, each answered within ``[neutron] timeout``. It holds while Neutron
    answers at the first attempt and no more ports than the journal's endpoint workers (4)
    are due at once (deletes and cleanings have slots of their own); a failed write is retried
    every 2 s."""
    pool = config.pool
    if pool.bookkeeping == BOOKKEEPING_IMMEDIATE:
        return 0.0
    writes = BOOKKEEPING_WRITES * config.neutron.timeout
    return pool.bookkeeping_delay + pool.background_longest + writes


# --- the daemon's side ---------------------------------------------------------------------------


def describe(state: State, port_status: PortStatus, endpoint_ids: Iterable[str]) -> dict[str, Any]:
    """The ports of the endpoints the local state holds; the others listed as unknown."""
    found: dict[str, Any] = {}
    unknown: list[str] = []
    for endpoint_id in endpoint_ids:
        stored = state.endpoint(endpoint_id)
        if stored is None:
            unknown.append(endpoint_id)
            continue
        network_id, port = stored
        port_id = str(port["id"])
        found[endpoint_id] = {
            "endpoint_id": endpoint_id,
            "network_id": network_id,
            "port_id": port_id,
            "ips": [ip["ip_address"] for ip in port.get("fixed_ips", [])],
            "mac": port.get("mac_address"),
            "host_ifname": host_ifname(port_id),
            # Docker renames it (dst prefix + index, e.g. eth0) once it is in the container.
            "container_ifname": container_ifname(port_id),
            # Any journaled write for the port: device_id, name or tags not yet in Neutron.
            "bookkeeping": (
                BOOKKEEPING_PENDING
                if state.journal_entry(port_id) is not None
                else BOOKKEEPING_DONE
            ),
            "status": port_status(port_id) or STATUS_UNKNOWN,
        }
    return {"endpoints": found, "unknown": unknown}


# --- the CLI's side ------------------------------------------------------------------------------


class PortError(Exception):
    """What the command cannot answer, said in one line."""


@dataclass(frozen=True)
class Attachment:
    """One network of the container, as dockerd says."""

    network: str
    network_id: str
    endpoint_id: str


def main(args: argparse.Namespace) -> int:
    config_file = getattr(args, "config_file", None)
    config = config_mod.load(Path(config_file) if config_file else None)
    try:
        answer = lookup(
            args.container,
            Path(args.docker_socket),
            pools_admin.socket_path(config.state_dir),
            config.socket.stem,
        )
    except PortError as exc:
        print(f"kuryr port: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print("\n".join(render(answer)))
    return 0


def lookup(container: str, docker_socket: Path, admin_socket: Path, driver: str) -> dict[str, Any]:
    """The container (id, name) and one entry per Kuryr network it is attached to."""
    info = _docker(docker_socket, f"/containers/{urllib.parse.quote(container, safe='')}/json")
    if info is None:
        raise PortError(f"no such container: {container}")
    attachments = [a for a in _attachments(info) if _driver_of(docker_socket, a) == driver]
    if not attachments:
        raise PortError(
            f"container {container} has no endpoint on a {driver!r} network "
            f"(state {info.get('State', {}).get('Status', '?')})"
        )
    ids = "&".join(f"id={a.endpoint_id}" for a in attachments)
    try:
        known = pools_admin.call(admin_socket, "GET", f"{ROUTE}?{ids}")
    except (OSError, RuntimeError) as exc:
        raise PortError(f"{admin_socket}: {exc} (is kuryr serve running?)") from exc
    ports = []
    for attachment in attachments:
        entry = known["endpoints"].get(attachment.endpoint_id)
        if entry is None:
            raise PortError(
                f"the daemon does not know endpoint {attachment.endpoint_id[:12]} of "
                f"{container} on network {attachment.network}"
            )
        ports.append({**entry, "network": attachment.network})
    return {
        "container": {"id": info["Id"], "name": str(info["Name"]).lstrip("/")},
        "ports": ports,
    }


def _docker(socket: Path, url: str) -> dict[str, Any] | None:
    """One GET to dockerd's API; None for a 404."""
    try:
        status, raw = unixhttp.request(socket, "GET", url, timeout=DOCKER_TIMEOUT)
    except OSError as exc:
        raise PortError(f"dockerd at {socket} does not answer: {exc}") from exc
    if status == 404:
        return None
    if status >= 400:
        message = json.loads(raw or b"{}").get("message") or f"HTTP {status}"
        raise PortError(f"dockerd: GET {url}: {message}")
    answer: dict[str, Any] = json.loads(raw)
    return answer


def _attachments(info: dict[str, Any]) -> list[Attachment]:
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    return [
        Attachment(name, str(net["NetworkID"]), str(net["EndpointID"]))
        for name, net in sorted(networks.items())
        if net.get("EndpointID")
    ]


def _driver_of(socket: Path, attachment: Attachment) -> str | None:
    network = _docker(socket, f"/networks/{attachment.network_id}")
    return None if network is None else str(network.get("Driver"))


def render(answer: dict[str, Any]) -> list[str]:
    container = answer["container"]
    lines = [f"container {container['name']} ({container['id'][:12]})"]
    for port in answer["ports"]:
        bookkeeping = (
            "done (device_id, name and tags are in Neutron)"
            if port["bookkeeping"] == BOOKKEEPING_DONE
            else "pending (journaled, not yet in Neutron)"
        )
        lines += [
            f"  network {port['network']} ({port['network_id'][:12]})  "
            f"endpoint {port['endpoint_id'][:12]}",
            f"    port         {port['port_id']}",
            f"    ips          {', '.join(port['ips'])}",
            f"    mac          {port['mac']}",
            f"    vif          {port['host_ifname']} (host) / {port['container_ifname']} "
            "(container end, renamed inside the container)",
            f"    bookkeeping  {bookkeeping}",
            f"    status       {port['status']}",
        ]
    return lines
