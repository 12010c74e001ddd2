"""``kuryr status``: the networks, endpoints and pools the running daemon manages on this host.

The daemon answers ``GET /status`` on its admin socket (:mod:`kuryr.ops.pools_admin`) from its
local state and its in-memory pools, so the report costs Neutron nothing and shows pool ports
being created right now, which the state file alone cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kuryr import config as config_mod
from kuryr.backends.binding.base import container_ifname, host_ifname
from kuryr.backends.model import Network
from kuryr.backends.neutron_api import Resource
from kuryr.backends.state import State
from kuryr.domain.ports.pools import Pools
from kuryr.ops import pools_admin

ROUTE = "/status"


# --- the daemon's side ---------------------------------------------------------------------------


def snapshot(state: State, pools: Pools) -> dict[str, Any]:
    """What this host's daemon manages, as JSON-ready data."""
    by_network: dict[str, list[dict[str, Any]]] = {}
    for endpoint_id, (network_id, port) in sorted(state.endpoints().items()):
        by_network.setdefault(network_id, []).append(_endpoint(endpoint_id, port))
    return {
        "networks": [_network(n, by_network.pop(n.docker_id, [])) for n in state.networks()],
        # Endpoints whose network the state no longer holds (a DeleteNetwork raced them).
        "stray_endpoints": [e for group in by_network.values() for e in group],
        "pool_config": pools_admin.pool_config(pools),
        "pools": pools.show(),
        # Bookkeeping and deletes journaled but not yet in Neutron (kuryr.domain.ports.journal).
        "journal_pending": len(state.journal()),
        "network_removals_pending": state.removals(),
    }


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


def _endpoint(endpoint_id: str, port: Resource) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "port_id": port.get("id"),
        "ips": [ip["ip_address"] for ip in port.get("fixed_ips", [])],
        "mac": port.get("mac_address"),
        "host_ifname": host_ifname(str(port.get("id"))),
        # Docker renames it (dst prefix + index, e.g. eth0) once it is in the container.
        "container_ifname": container_ifname(str(port.get("id"))),
    }


# --- the CLI's side ------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    config_file = getattr(args, "config_file", None)
    config = config_mod.load(Path(config_file) if config_file else None)
    path = pools_admin.socket_path(config.state_dir)
    try:
        answer = pools_admin.call(path, "GET", ROUTE)
    except (OSError, RuntimeError) as exc:
        print(f"kuryr status: {path}: {exc} (is kuryr serve running?)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print("\n".join(render(answer)))
    return 0


def render(answer: dict[str, Any]) -> list[str]:
    """The report as text lines: one block per network, then the pools."""
    lines: list[str] = []
    for net in answer["networks"]:
        lines.append(
            f"network {net['docker_id'][:12]}  neutron {net['neutron_id']}  mtu {net['mtu']}"
        )
        for subnet in net["subnets"]:
            lines.append(
                f"  subnet {subnet['id']}  {subnet['cidr']}  gateway {subnet['gateway_ip']}"
            )
        lines.extend(_endpoint_lines(net["endpoints"]))
    if answer["stray_endpoints"]:
        lines.append("endpoints of networks the state does not hold")
        lines.extend(_endpoint_lines(answer["stray_endpoints"]))
    if not answer["networks"]:
        lines.append("no Kuryr network on this host")
    cfg = answer["pool_config"]
    lines.append(f"pools (min {cfg['min']}, max {cfg['max']}, batch {cfg['batch']})")
    for pool in answer["pools"]:
        lines.append(
            f"  subnet {pool['subnet_id']}  {pool['mode']:5}  free {pool['free']}  "
            f"taken {pool['taken']}  creating {pool['creating']}"
        )
    lines.append(f"Neutron writes journaled, not yet applied: {answer['journal_pending']}")
    for docker_id in answer["network_removals_pending"]:
        lines.append(f"network {docker_id[:12]}: removal from Neutron under way")
    return lines


def _endpoint_lines(endpoints: list[dict[str, Any]]) -> list[str]:
    return [
        f"  endpoint {e['endpoint_id'][:12]}  port {e['port_id']}  {','.join(e['ips'])}  "
        f"{e['mac']}  {e['host_ifname']} -> {e['container_ifname']}"
        for e in endpoints
    ]
