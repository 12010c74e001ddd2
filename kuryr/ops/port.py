"""``kuryr port CONTAINER``: the Neutron port of each Kuryr network of one container.

dockerd names the container's endpoints (its API on the unix socket); the daemon answers
on its admin socket (:func:`kuryr.ops.admin_reports.describe`) from its local state:
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuryr.backends import dockerd, unixhttp
from kuryr.config import BOOKKEEPING_IMMEDIATE, Config
from kuryr.domain.published import reachable_text
from kuryr.ops import admin_api
from kuryr.ops.admin_api import BOOKKEEPING_DONE

# What the journal writes for a port handed to an endpoint: a PUT of device_id and name, a PUT
# of its tags (kuryr.domain.ports.journal).
BOOKKEEPING_WRITES = 2


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


class PortError(Exception):
    """What the command cannot answer, said in one line."""


@dataclass(frozen=True)
class Attachment:
    """One network of the container, as dockerd says."""

    network: str
    network_id: str
    endpoint_id: str


def main(args: argparse.Namespace, config: Config) -> int:
    try:
        answer = lookup(
            args.container,
            Path(args.docker_socket),
            admin_api.socket_path(config.state_dir),
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
    names = dockerd.driver_names(driver)
    attachments = [a for a in _attachments(info) if _driver_of(docker_socket, a) in names]
    if not attachments:
        raise PortError(
            f"container {container} has no endpoint on a {driver!r} network "
            f"(state {info.get('State', {}).get('Status', '?')})"
        )
    ids = "&".join(f"id={a.endpoint_id}" for a in attachments)
    try:
        known = unixhttp.json_call(admin_socket, "GET", f"{admin_api.ENDPOINTS}?{ids}")
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
        answer: dict[str, Any] | None = dockerd.get(socket, url)
    except OSError as exc:
        raise PortError(f"dockerd at {socket} does not answer: {exc}") from exc
    except dockerd.DockerError as exc:
        raise PortError(str(exc)) from exc
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
    for row in answer["ports"]:
        bookkeeping = (
            "done (device_id, name and tags are in Neutron)"
            if row["bookkeeping"] == BOOKKEEPING_DONE
            else "pending (journaled, not yet in Neutron)"
        )
        lines += [
            f"  network {row['network']} ({row['network_id'][:12]})  "
            f"endpoint {row['endpoint_id'][:12]}",
            f"    port         {row['port_id']}",
            f"    ips          {', '.join(row['ips'])}",
            f"    mac          {row['mac']}",
            f"    vif          {row['host_ifname']} (host) / {row['container_ifname']} "
            "(container end, renamed inside the container)",
            f"    bookkeeping  {bookkeeping}",
            f"    status       {row['status']}",
        ]
        lines += [f"    published    {reachable_text(r)}" for r in row.get("published", [])]
    return lines
