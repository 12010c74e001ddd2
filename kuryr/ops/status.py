"""``kuryr status``: the networks, endpoints and pools the running daemon manages on this host.

The daemon answers on its admin socket (:func:`kuryr.ops.admin_reports.snapshot`) from its
local state and its in-memory pools, so the report costs Neutron nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kuryr.backends.unixhttp import json_call
from kuryr.config import Config
from kuryr.domain.published import reachable_text
from kuryr.ops import admin_api


def main(args: argparse.Namespace, config: Config) -> int:
    path = admin_api.socket_path(config.state_dir)
    try:
        answer = json_call(path, "GET", admin_api.STATUS)
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
    lines.append(f"pools ({admin_api.config_line(cfg)})")
    for pool in answer["pools"]:
        lines.append(
            f"  subnet {pool['subnet_id']}  {pool['mode']:5}  free {pool['free']}  "
            f"target {pool['target']}  taken {pool['taken']}  creating {pool['creating']}"
        )
    lines.append(f"Neutron writes journaled, not yet applied: {answer['journal_pending']}")
    for docker_id in answer["network_removals_pending"]:
        lines.append(f"network {docker_id[:12]}: removal from Neutron under way")
    return lines


def _endpoint_lines(endpoints: list[dict[str, Any]]) -> list[str]:
    lines = []
    for e in endpoints:
        lines.append(
            f"  endpoint {e['endpoint_id'][:12]}  port {e['port_id']}  {','.join(e['ips'])}  "
            f"{e['mac']}  {e['host_ifname']} -> {e['container_ifname']}"
        )
        lines += [f"    published {reachable_text(r)}" for r in e.get("published", [])]
    return lines
