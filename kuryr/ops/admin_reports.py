"""What the daemon reports on its admin socket, read from its local state and its in-memory
pools: nothing asks Neutron, so a report is there at once and shows pool ports being created
right now, which the state file alone cannot.

``snapshot`` answers ``kuryr status``; ``describe`` answers ``kuryr port`` (the ports of the
endpoints dockerd names for a container).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kuryr.backends.binding.base import container_ifname, host_ifname
from kuryr.backends.model import Network
from kuryr.backends.state import State
from kuryr.domain import published
from kuryr.domain.ports.pools import Pools
from kuryr.domain.ports.port import Port
from kuryr.ops.admin_api import BOOKKEEPING_DONE, BOOKKEEPING_PENDING, STATUS_UNKNOWN

# A port's status (ACTIVE, DOWN, ...) as the daemon last knew it, by port id; None: not known.
PortStatus = Callable[[str], str | None]


def pool_config(pools: Pools) -> dict[str, float]:
    """The sizing keys (kuryr.domain.ports.sizing) the daemon runs with."""
    c = pools.config
    return {
        "min": c.min,
        "max": c.max,
        "batch": c.batch,
        "initial": c.initial,
        "window": c.window,
        "idle_after": c.idle_after,
    }


def snapshot(state: State, pools: Pools) -> dict[str, Any]:
    """What this host's daemon manages, as JSON-ready data."""
    by_network: dict[str, list[dict[str, Any]]] = {}
    for endpoint_id, (network_id, port) in sorted(state.endpoints().items()):
        by_network.setdefault(network_id, []).append(
            {
                "endpoint_id": endpoint_id,
                **_vif(Port.from_neutron(port)),
                "published": published.reachable(state.published(endpoint_id)),
            }
        )
    return {
        "networks": [_network(n, by_network.pop(n.docker_id, [])) for n in state.networks()],
        # Endpoints whose network the state no longer holds (a DeleteNetwork raced them).
        "stray_endpoints": [e for group in by_network.values() for e in group],
        "pool_config": pool_config(pools),
        "pools": pools.show(),
        # Bookkeeping and deletes journaled but not yet in Neutron (kuryr.domain.ports.journal).
        "journal_pending": len(state.journal()),
        "network_removals_pending": state.removals(),
    }


def describe(state: State, port_status: PortStatus, endpoint_ids: Iterable[str]) -> dict[str, Any]:
    """The ports of the endpoints the local state holds; the others listed as unknown."""
    found: dict[str, Any] = {}
    unknown: list[str] = []
    for endpoint_id in endpoint_ids:
        stored = state.endpoint(endpoint_id)
        if stored is None:
            unknown.append(endpoint_id)
            continue
        network_id, raw = stored
        port = Port.from_neutron(raw)
        port_id = port.id
        found[endpoint_id] = {
            "endpoint_id": endpoint_id,
            "network_id": network_id,
            **_vif(port),
            # Any journaled write for the port: device_id, name or tags not yet in Neutron.
            "bookkeeping": (
                BOOKKEEPING_PENDING
                if state.journal_entry(port_id) is not None
                else BOOKKEEPING_DONE
            ),
            "status": port_status(port_id) or STATUS_UNKNOWN,
            # Where its -p ports are reachable (Docker cannot show a remote driver's).
            "published": published.reachable(state.published(endpoint_id)),
        }
    return {"endpoints": found, "unknown": unknown}


def _network(network: Network, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "docker_id": network.docker_id,
        "neutron_id": network.neutron_id,
        "mtu": network.mtu,
        "subnets": [
            {
                "id": s.id,
                "cidr": str(s.cidr),
                "gateway_ip": s.gateway_ip,
                "subnetpool_id": s.subnetpool_id,
            }
            for s in network.subnets
        ],
        "endpoints": endpoints,
    }


def _vif(port: Port) -> dict[str, Any]:
    """An endpoint's port: its id, addresses and the names of its VIF's two ends."""
    port_id = port.id
    return {
        "port_id": port_id,
        "ips": port.ips,
        "mac": port.mac_address,
        "host_ifname": host_ifname(port_id),
        # Docker renames it (dst prefix + index, e.g. eth0) once it is in the container.
        "container_ifname": container_ifname(port_id),
    }
