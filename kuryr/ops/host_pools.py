"""``kuryr status --hosts``: Kuryr's ports on each Neutron network, per host, from Neutron.

Every host keeps pool ports of its own on the networks it uses (kuryr.domain.ports.pools), so
a network several hosts share holds several hosts' pools. One Neutron query counts, per host
and network, the free pool ports, the ports containers use, and whether the host holds an
anchor there (an adopting Docker network, kuryr.domain.sharing).
"""

from __future__ import annotations

import argparse
import json

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, Resource
from kuryr.config import Config
from kuryr.domain.ports.mine import holder
from kuryr.domain.ports.port import Port
from kuryr.ops import neutron_cli

FIELDS = [
    *("network_id", "binding:host_id", "description", "device_owner", "device_id", "name"),
    "tags",
]


def tally(ports: list[Resource]) -> dict[str, dict[str, dict[str, int]]]:
    """host (a chassis name, or ``vm-port:<id>`` for a VM's daemon: kuryr.domain.ports.mine)
    -> Neutron network id -> counts of ``pool``, ``in_use`` and ``anchors``."""
    hosts: dict[str, dict[str, dict[str, int]]] = {}
    for raw in ports:
        port = Port.from_neutron(raw)
        counts = hosts.setdefault(holder(port), {}).setdefault(
            port.network_id, {"pool": 0, "in_use": 0, "anchors": 0}
        )
        if port.is_anchor:
            counts["anchors"] += 1
        elif port.in_pool:
            counts["pool"] += 1
        elif port.device_id:
            counts["in_use"] += 1
    return hosts


async def survey(neutron: NeutronApi) -> dict[str, dict[str, dict[str, int]]]:
    ports = await neutron.query(
        "ports",
        {"device_owner": [naming.DEVICE_OWNER, naming.ANCHOR_OWNER], "fields": FIELDS},
    )
    return tally(ports)


def render(hosts: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    lines: list[str] = []
    for host in sorted(hosts):
        networks = hosts[host]
        pool = sum(c["pool"] for c in networks.values())
        lines.append(f"host {host or '(unbound)'}: {pool} free pool port(s)")
        for network_id, c in sorted(networks.items()):
            anchor = "  anchor" if c["anchors"] else ""
            lines.append(f"  network {network_id}  pool {c['pool']}  in use {c['in_use']}{anchor}")
    return lines or ["no Kuryr port in Neutron"]


def main(args: argparse.Namespace, config: Config) -> int:
    hosts = neutron_cli.run("kuryr status --hosts", config, survey)
    if hosts is None:
        return 1
    print(json.dumps(hosts, indent=2, sort_keys=True) if args.json else "\n".join(render(hosts)))
    return 0
